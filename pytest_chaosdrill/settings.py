"""The plugin's settings: one help text per setting, shared by the command-line option and its ini key.

Imported at pytest start-up in every project that has the plugin installed: keep it free of heavy
imports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# name -> (help, ini default, kind). kind: str, bool, list (repeatable option / ini "paths"), path.
SETTINGS: dict[str, tuple[str, Any, str]] = {
    "backend": ("where the target runs: process (default), docker, external, or a plugin's backend; "
                "several comma-separated", "process", "str"),
    "evidence_dir": ("folder for evidence (default: evidence/ in the directory pytest runs from); every run gets "
                     "runs/<run id>/ and <group>/<drill> links to the latest", None, "path"),
    "target": ("target file (YAML) saying how to start and configure the service under drill; "
               "default: the bundled reference target's file", None, "path"),
    "schema": ("status JSON Schema used for every sample (default: the bundled min schema)", None, "path"),
    "manifest": ("reason-code registry manifest (default: the bundled manifest)", None, "path"),
    "drills": ("drill files or folders to run (default: the bundled drills)", None, "list"),
    "fixtures": ("extra folders searched first for golden fixtures", None, "list"),
    "sample_interval_ms": ("time between /status samples in ms (at most 10)", "5", "float"),
    "venue_seed": ("seed of the venue simulator's deterministic prices and fills", "7", "int"),
    "explore_budget_s": ("wall-time budget in seconds of an exploring drill (schedule.explore): drawing, running "
                         "and shrinking fault schedules", "60", "float"),
    "explore_seed": ("seed of an exploring drill's schedule generator (the same seed draws the same schedules)",
                     "0", "int"),
    "evidence_retention_count": ("keep the evidence of the last N runs (runs/<run id>/, like pytest's "
                                 "tmp_path_retention_count); older runs are removed when a run starts; 0 keeps all",
                                 "0", "int"),
    "evidence_retention_policy": ("which earlier runs' evidence to keep when a run starts (like pytest's "
                                  "tmp_path_retention_policy): all, failed (runs where a drill did not PASS) or none; "
                                  "the latest full sign-off's run is always kept", "all", "str"),
    "keep": ("leave each drill's service, venue simulator and fault proxy running after it (process and docker backends), their "
             "URLs printed and in the run folder's kept.json; stopped by `chaosdrill keep-reap` or the next drill "
             "session", False, "bool"),
    "allow_live": ("allow drills against a target that looks live (real money). Never in CI", False, "bool"),
}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosdrill", "chaos drills (pytest-chaosdrill)")
    for name, (help_text, default, kind) in SETTINGS.items():
        flag, dest, ini = "--chaosdrill-" + name.replace("_", "-"), f"chaosdrill_{name}", f"chaosdrill_{name}"
        if kind == "bool":
            group.addoption(flag, action="store_true", default=None, dest=dest, help=help_text)
            parser.addini(ini, help_text, type="bool", default=False)
        elif kind == "list":
            group.addoption(flag, action="append", default=None, dest=dest, help=help_text + " (repeatable)")
            parser.addini(ini, help_text, type="paths", default=[])
        else:
            group.addoption(flag, default=None, dest=dest, help=help_text)
            parser.addini(ini, help_text, default=default)


def setting(config: pytest.Config, name: str) -> Any:
    """A setting's value: the command line wins over the ini file."""
    value = config.getoption(f"chaosdrill_{name}")
    if value is None:
        value = config.getini(f"chaosdrill_{name}")
    return value


def setting_path(config: pytest.Config, name: str) -> Path | None:
    """A path setting, resolved the same way whatever the spelling: a command-line value against the
    directory pytest was invoked from, an ini value against the ini file's folder."""
    cli = config.getoption(f"chaosdrill_{name}")
    if cli is not None:
        return _resolve(cli, config.invocation_params.dir)
    value = config.getini(f"chaosdrill_{name}")
    if not value:
        return None
    base = config.inipath.parent if config.inipath is not None else config.invocation_params.dir
    return _resolve(value, base)


def setting_paths(config: pytest.Config, name: str) -> list[Path]:
    cli = config.getoption(f"chaosdrill_{name}")
    if cli:
        return [_resolve(p, config.invocation_params.dir) for p in cli]
    return [Path(p) for p in config.getini(f"chaosdrill_{name}")]  # "paths" ini values are already resolved


def _resolve(value: Any, base: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (Path(base) / p)


def check_values(config: pytest.Config) -> None:
    """Usage errors for malformed values, before collection."""
    for name, kind in (("sample_interval_ms", float), ("venue_seed", int), ("explore_budget_s", float),
                       ("explore_seed", int), ("evidence_retention_count", int)):
        try:
            kind(setting(config, name))
        except (TypeError, ValueError):
            raise pytest.UsageError(f"--chaosdrill-{name.replace('_', '-')} (ini chaosdrill_{name}) must be "
                                    f"{_KIND_WORDS[kind]}, got {setting(config, name)!r}") from None
    policy = str(setting(config, "evidence_retention_policy"))
    if policy not in RETENTION_POLICIES:
        raise pytest.UsageError(f"--chaosdrill-evidence-retention-policy (ini chaosdrill_evidence_retention_policy) "
                                f"must be all, failed or none, got {policy!r}")
    for name, (low, high) in _RANGES.items():
        value = float(setting(config, name))
        if not low < value <= high:
            raise pytest.UsageError(f"--chaosdrill-{name.replace('_', '-')} (ini chaosdrill_{name}) must be more "
                                    f"than {low:g} and at most {high:g}, got {value:g}")


#: Values of ``chaosdrill_evidence_retention_policy`` (their meaning: ``evidence.prune_runs``).
RETENTION_POLICIES = ("all", "failed", "none")
_KIND_WORDS = {int: "an integer", float: "a number"}
#: Open-closed ranges (low excluded, high included). 0 ms would busy-loop a core; above 10 ms a 5 ms
#: decision could fall between two samples.
_RANGES = {"sample_interval_ms": (0.0, 10.0), "explore_budget_s": (0.0, 86400.0),
           "evidence_retention_count": (-1.0, 1e9)}


def backend_names(config: pytest.Config) -> list[str]:
    return [b.strip() for b in str(setting(config, "backend")).split(",") if b.strip()]


def evidence_dir_problem(path: Path) -> str | None:
    """Why evidence cannot be written under ``path`` (None when it can): checked before anything starts.

    Symlinks are resolved first (a link into ``/proc`` is ``/proc``), pseudo file systems are matched by
    path component (``/procedures`` is fine), and the nearest existing folder gets a real write probe (a
    folder made and removed at once): ``os.access`` says yes to root on a folder root cannot write.
    """
    import os
    import tempfile

    resolved = Path(os.path.realpath(path))
    for pseudo in ("/proc", "/sys", "/dev"):
        if (resolved == Path(pseudo) or Path(pseudo) in resolved.parents) and \
                not (resolved == Path("/dev/shm") or Path("/dev/shm") in resolved.parents):
            shown = f"{path} (resolved: {resolved})" if str(resolved) != os.path.abspath(path) else str(resolved)
            return f"{shown} is inside a kernel pseudo file system"
    probe = resolved
    while not probe.exists():
        if probe.parent == probe:
            return f"no existing parent folder of {resolved}"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder" if probe == resolved else f"{probe} (a parent of {resolved}) is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".chaosdrill-write-probe-", dir=probe))
    except OSError as exc:
        return f"{probe} is not writable: {exc.strerror or exc}"
    return None


def check_evidence_dir(config: pytest.Config) -> None:
    """A usage error, before collection, for an evidence folder that cannot be written."""
    path = setting_path(config, "evidence_dir")
    if path is None:
        return
    why = evidence_dir_problem(path)
    if why:
        raise pytest.UsageError(f"--chaosdrill-evidence-dir (ini chaosdrill_evidence_dir): cannot write evidence: "
                                f"{why}. Point it at a writable folder.")
