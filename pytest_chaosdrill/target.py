"""Target configuration: how to start a service, wire it to the venue and read its files.

A target file (YAML) describes a service without any code; ``{placeholders}`` in its strings are
filled from the drill's environment (venue URLs, control and data folders, ports). See
``docs/targets.md``.
"""
from __future__ import annotations

import json
import re
import string
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from .guard import LiveEnvironmentRefused, is_local_url, refuse_live  # noqa: F401  (their home is guard.py)
from .schema_errors import describe_all
from .errors import TargetConfigError
from .redaction import name_looks_secret
from .venue.auth import ApiKey



@dataclass(frozen=True)
class HookSpec:
    """A documented target-side fault hook: a control file whose presence makes the service cause a
    physical condition (its removal releases it)."""

    file: str
    content: str = ""


@dataclass(frozen=True)
class Budget:
    """A drill's time-to-safe budget for one target, and where it came from."""

    ms: float
    source: str  # "drill" (the bundled default) | "target file" (budgets:, or a timing: fact)
    why: str     # one line: the number's origin


@dataclass
class TargetConfig:
    """What the plugin needs to start, drive and observe one target service."""

    name: str
    command: list[str]
    env: dict[str, str]
    status_url: str
    health_url: str
    files: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, HookSpec] = field(default_factory=dict)
    hooks_log: str | None = None
    environment: str = "PAPER"
    startup_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0
    docker: dict[str, Any] = field(default_factory=dict)
    external: dict[str, Any] = field(default_factory=dict)
    venue: dict[str, Any] = field(default_factory=dict)
    kubernetes: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    budgets: dict[str, float] = field(default_factory=dict)  # drill id -> time-to-safe budget (ms)
    timing: dict[str, float] = field(default_factory=dict)   # request_timeout_s, reconnect_backoff_s
    venue_key: ApiKey | None = None  # fixed demo keys the service has built in (the ``venue:`` section)
    source: Path | None = None

    def drill_key(self) -> ApiKey:
        """The demo key the venue accepts for one drill: the target file's ``venue:`` key, else a fresh one."""
        return self.venue_key if self.venue_key is not None else ApiKey.generate()

    def budget(self, drill_id: str, default_ms: float, timing_allowance: Mapping[str, float]) -> Budget:
        """The time-to-safe budget of drill ``drill_id`` for this service: its ``budgets:`` entry, else
        the drill's default raised to cover the service's declared timing facts (fact + the drill's
        allowance), else the drill's default."""
        if drill_id in self.budgets:
            ms = self.budgets[drill_id]
            return Budget(ms, "target file", f"budgets.time_to_safe_ms.{drill_id} = {ms:g} ms in {self.source}")
        raised = [(self.timing[k] * 1000 + a, k, a) for k, a in timing_allowance.items() if k in self.timing]
        if raised:
            ms, fact, allowance = max(raised)
            if ms > default_ms:
                return Budget(ms, "target file", f"timing.{fact} = {self.timing[fact]:g} s in {self.source} "
                              f"+ {allowance:g} ms (the drill's default {default_ms:g} ms is less)")
        return Budget(default_ms, "drill", f"the drill's default time_to_safe_budget_ms ({default_ms:g} ms)")

    @property
    def tls(self) -> bool:
        """Whether the target reaches the venue over TLS (``venue: {tls: true}``)."""
        return bool(self.venue.get("tls", False))

    @property
    def folder(self) -> Path:
        """The target file's folder: the service's working directory, where relative paths resolve."""
        return self.source.resolve().parent if self.source is not None else Path.cwd()

    def render(self, values: Mapping[str, Any]) -> "RenderedTarget":
        """Fill every placeholder; unknown placeholders are an error naming the field."""
        ctx = dict(values)
        ctx.setdefault("python", sys.executable)

        def fill(where: str, text: str) -> str:
            try:
                return string.Formatter().vformat(text, (), ctx)
            except KeyError as exc:
                hint = " (it needs 'venue: {tls: true}')" if exc.args[0] == "venue_ca_file" else ""
                raise TargetConfigError(
                    f"{self.source or self.name}: field '{where}': unknown placeholder {{{exc.args[0]}}}{hint}; "
                    f"known: {', '.join(sorted(ctx))}"
                ) from None

        return RenderedTarget(
            config=self,
            command=[fill(f"command[{i}]", c) for i, c in enumerate(self.command)],
            env={k: fill(f"env.{k}", v) for k, v in self.env.items()},
            status_url=fill("status_url", self.status_url),
            health_url=fill("health_url", self.health_url),
            files={k: fill(f"files.{k}", v) for k, v in self.files.items()},
            hooks={k: HookSpec(fill(f"hooks.{k}.file", h.file), h.content) for k, h in self.hooks.items()},
            hooks_log=fill("hooks_log", self.hooks_log) if self.hooks_log else None,
            extra_secrets=[fill(f"secrets[{i}]", v) for i, v in enumerate(self.secrets)]
            # the venue key's secrets, whatever name the service gives them (never in evidence)
            + [str(ctx[k]) for k in ("venue_secret_key", "venue_passphrase") if ctx.get(k)]
            + ([self.venue_key.secret_key, self.venue_key.passphrase] if self.venue_key is not None else []),
        )


@dataclass
class RenderedTarget:
    """A target config with every placeholder filled in for one drill."""

    config: TargetConfig
    command: list[str]
    env: dict[str, str]
    status_url: str
    health_url: str
    files: dict[str, str]
    hooks: dict[str, HookSpec]
    hooks_log: str | None
    extra_secrets: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        """Values that must never appear in evidence: env values under secret-looking names and the
        target file's ``secrets``."""
        return [v for k, v in self.env.items() if name_looks_secret(k) and len(v) >= 3] + \
            [v for v in self.extra_secrets if v]


#: Every placeholder a backend fills (docs/targets.md lists them); ``venue_ca_file`` only with TLS on.
PLACEHOLDERS = frozenset({
    "venue_rest_url", "venue_ws_public_url", "venue_ws_private_url", "venue_api_key", "venue_secret_key",
    "venue_passphrase", "control_dir", "data_dir", "host", "status_port", "drill_id", "python", "target_dir"})


def _strings(data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field, value) of every string of a target file that placeholders are filled into."""
    for key in ("status_url", "health_url", "hooks_log"):
        if key in data:
            yield key, data[key]
    for section, prefix in ((data, ""), (data.get("docker") or {}, "docker.")):
        if not isinstance(section, dict):
            continue
        for i, c in enumerate(section.get("command") or [] if isinstance(section.get("command"), list) else []):
            yield f"{prefix}command[{i}]", c
        for k, v in (section.get("env") or {}).items() if isinstance(section.get("env"), dict) else ():
            yield f"{prefix}env.{k}", v
    for k, v in (data.get("files") or {}).items() if isinstance(data.get("files"), dict) else ():
        yield f"files.{k}", v
    for k, v in (data.get("hooks") or {}).items() if isinstance(data.get("hooks"), dict) else ():
        yield f"hooks.{k}.file", v if isinstance(v, str) else (v or {}).get("file", "")
    for i, v in enumerate(data.get("secrets") or [] if isinstance(data.get("secrets"), list) else []):
        yield f"secrets[{i}]", v


def placeholder_problems(data: Mapping[str, Any]) -> list[str]:
    """One line per unknown or malformed ``{placeholder}`` of a target file: checked when the file is
    loaded (at collection), not when the first drill renders it."""
    known = PLACEHOLDERS | ({"venue_ca_file"} if (data.get("venue") or {}).get("tls") else set())
    out = []
    for where, value in _strings(data):
        if not isinstance(value, str):
            continue
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            out.append(f"field '{where}': {exc} (write a literal brace as '{{{{' or '}}}}')")
            continue
        for name in names:
            base = re.split(r"[.\[]", name, maxsplit=1)[0]
            if base not in known:
                hint = " (it needs 'venue: {tls: true}')" if base == "venue_ca_file" else ""
                out.append(f"field '{where}': unknown placeholder {{{name}}}{hint}; known: {', '.join(sorted(known))}")
    return out


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    from .resources import specs_dir

    return Draft202012Validator(json.loads((specs_dir() / "target.schema.json").read_text(encoding="utf-8")))


def load_target(path: str | Path) -> TargetConfig:
    """Load and validate a target file (YAML) against ``specs/target.schema.json``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetConfigError(f"{path}: cannot read target file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise TargetConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TargetConfigError(f"{path}: a target file must hold one mapping")
    lines = describe_all(_validator().iter_errors(data))
    if lines:
        raise TargetConfigError("\n".join(f"{path}: {line}" for line in lines))  # one line per problem
    problems = placeholder_problems(data)
    if problems:
        raise TargetConfigError("\n".join(f"{path}: {line}" for line in problems))  # one line per problem
    hooks = {}
    for name, spec in (data.get("hooks") or {}).items():
        if isinstance(spec, str):
            spec = {"file": spec}
        hooks[name] = HookSpec(str(spec["file"]), str(spec.get("content", "")))
    status_url = str(data["status_url"])
    return TargetConfig(
        name=str(data["name"]),
        command=list(data["command"]),
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        status_url=status_url,
        health_url=str(data.get("health_url", status_url)),
        files={str(k): str(v) for k, v in (data.get("files") or {}).items()},
        hooks=hooks,
        hooks_log=data.get("hooks_log"),
        environment=str(data.get("environment", "PAPER")),
        startup_timeout_s=float(data.get("startup_timeout_s", 30.0)),
        stop_timeout_s=float(data.get("stop_timeout_s", 10.0)),
        docker=dict(data.get("docker") or {}),
        external=dict(data.get("external") or {}),
        # the key lives in venue_key (its repr hides the secrets); venue keeps the rest (tls)
        venue={k: v for k, v in (data.get("venue") or {}).items() if k != "key"},
        kubernetes=dict(data.get("kubernetes") or {}),
        secrets=[str(v) for v in data.get("secrets") or []],
        budgets={str(k): float(v) for k, v in ((data.get("budgets") or {}).get("time_to_safe_ms") or {}).items()},
        timing={str(k): float(v) for k, v in (data.get("timing") or {}).items()},
        venue_key=(ApiKey(**{k: str(v) for k, v in data["venue"]["key"].items()})
                   if (data.get("venue") or {}).get("key") else None),
        source=path,
    )
