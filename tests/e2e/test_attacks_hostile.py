"""Hostile status answers against REAL drills: a fake status server (tests/e2e/hostile/front.py) in front of
the real reference target mutates what the plugin samples. Each attack once made a drill PASS, leak
``NaN`` into evidence or crash with a traceback; now each must end with no PASS, no traceback, a complete
evidence folder of strict JSON, a reason that names the problem, and no target process left."""
from __future__ import annotations

import gzip
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
import yaml

import drilltexts
from drilltexts import TEST_MODULE
from pytest_chaosdrill.evidence import REQUIRED_FILES

HOSTILE = Path(__file__).resolve().parent / "hostile"
# Drill 5 (book gap) is the shortest real drill; shorter waits so a refused status costs seconds, not minutes.
BOOK_GAP = yaml.safe_dump({**yaml.safe_load(drilltexts.BOOK_GAP), "title": "WS book gap behind a hostile status front",
                           "steady_state": {"timeout_s": 10}, "recovery": {"kind": "reconcile", "timeout_s": 6},
                           "timeout_s": 90}, sort_keys=False)
OFF = "http://203.0.113.7/api/v1/status"
STARTUP = r"did not answer a JSON object within 12(\.0)?s; the last answer was refused: "
MIDWAY = r"status samples failed outside planned downtime; first: sample \d+: "

# mode, arming (env), expected verdict, a regex the reason must match
CASES = [
    ("dup_keys", {}, "NOT PROVEN", STARTUP + re.escape('[PARSE] $.trading_mode: duplicate key "trading_mode" (2 times)')),
    ("dup_keys", {"HOSTILE_AFTER_BLOCKED": "5"}, "FAIL",
     MIDWAY + re.escape('[PARSE] $.trading_mode: duplicate key "trading_mode" (2 times)')),
    ("redirect_from_first", {}, "NOT PROVEN", STARTUP + re.escape(f"HTTP 302 redirect to '{OFF}' refused")),
    ("redirect_off_loopback", {"HOSTILE_AFTER_BLOCKED": "5"}, "FAIL",
     MIDWAY + re.escape(f"HTTP 302 redirect to '{OFF}' refused: the sampler never follows redirects")),
    ("live_midway", {"HOSTILE_AFTER_S": "2"}, "NOT PROVEN",
     r"refusing to go on: the target reported a live environment mid-drill \(sample \d+: the target reports "
     r"deployment_environment='LIVE'.*the fault was released and the target stopped"),
    ("nan", {"HOSTILE_AFTER_BLOCKED": "5"}, "FAIL", MIDWAY + re.escape("[PARSE] $.mm_util: non-finite number NaN")),
    ("infinity", {"HOSTILE_AFTER_BLOCKED": "5"}, "FAIL",
     MIDWAY + re.escape("[PARSE] $.mm_util: non-finite number Infinity")),
    ("array", {"HOSTILE_AFTER_BLOCKED": "5"}, "FAIL", MIDWAY + re.escape("[PARSE] $: status is a JSON array, not an object")),
    ("deep_nesting", {}, "NOT PROVEN", STARTUP + re.escape("[PARSE] $: status body nests deeper than 64 levels")),
    ("huge_body", {}, "NOT PROVEN", STARTUP + re.escape("[PARSE] $: status body larger than 1000000 bytes, the limit")),
]


def _reject_constant(token: str) -> None:
    raise ValueError(f"non-standard JSON constant {token}")


def strict_load(text: str) -> object:
    """``json.loads`` that refuses NaN/Infinity (what every other JSON reader does)."""
    return json.loads(text, parse_constant=_reject_constant)


def assert_strict_json_tree(root: Path) -> int:
    """Every .json, .jsonl and .jsonl.gz file under ``root`` (and inside every IEB archive) is strict JSON."""
    checked = 0

    def check(name: str, data: bytes) -> None:
        text = data.decode("utf-8")
        try:
            if name.endswith(".jsonl"):
                for line in text.splitlines():
                    if line.strip():
                        strict_load(line)
            else:
                strict_load(text)
        except ValueError as exc:
            pytest.fail(f"{name} is not strict JSON: {exc}")

    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".json", ".jsonl"):
            check(str(p), p.read_bytes())
            checked += 1
        elif p.is_file() and p.name.endswith(".jsonl.gz"):  # the compressed timeline
            check(str(p)[:-3], gzip.decompress(p.read_bytes()))
            checked += 1
        elif p.is_file() and p.name.endswith(".tar.gz"):
            with tarfile.open(p) as tar:
                for m in tar.getmembers():
                    if m.isfile() and m.name.endswith((".json", ".jsonl")):
                        check(f"{p}:{m.name}", tar.extractfile(m).read())  # type: ignore[union-attr]
                        checked += 1
                    elif m.isfile() and m.name.endswith(".jsonl.gz"):
                        check(f"{p}:{m.name[:-3]}", gzip.decompress(tar.extractfile(m).read()))  # type: ignore[union-attr]
                        checked += 1
    return checked


def only_folder(root: Path) -> Path:
    runs = list((root / "runs").iterdir())
    assert len(runs) == 1, runs
    folders = [p for p in (runs[0] / "phase2").iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def assert_complete(folder: Path) -> dict:
    for f in REQUIRED_FILES + ("meta.json", "SHA256SUMS", "timeline.jsonl.gz"):
        assert (folder / f).is_file(), f"{f} missing from {folder}"
    ieb = list(folder.parent.glob(f"IEB_*_{folder.name}.tar.gz"))
    assert len(ieb) == 1 and Path(str(ieb[0]) + ".sha256").is_file()
    assert not (folder / "EVIDENCE_ERROR.txt").exists(), (folder / "EVIDENCE_ERROR.txt").read_text()
    return json.loads((folder / "meta.json").read_text())


def pids_of_target(folder: Path, meta: dict) -> list[int]:
    """The front's pid (the backend's record) and the real target's (the front's own log line)."""
    pids = [meta["target"]["pid"]]
    for log in (folder / "logs").glob("target.start*.log"):
        pids += [int(p) for p in re.findall(rb"real target=127\.0\.0\.1:\d+ pid=(\d+)", log.read_bytes())]
    return pids


def assert_gone(pid: int) -> None:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return
    assert state == "Z" or not (b"front.py" in cmdline or b"okx_demo_api" in cmdline), \
        f"target process {pid} is still running: {cmdline!r}"


def run_drill(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, env: dict[str, str],
              *args: str) -> pytest.RunResult:
    monkeypatch.setenv("HOSTILE_MODE", mode)
    for k in ("HOSTILE_AFTER_S", "HOSTILE_AFTER_BLOCKED"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    drills = pytester.path / "mydrills"
    drills.mkdir(exist_ok=True)
    (drills / "gap.yaml").write_text(BOOK_GAP, encoding="utf-8")
    pytester.makepyfile(test_drills=TEST_MODULE)
    return pytester.runpytest_subprocess("--chaosdrill-drills", str(drills), "-p", "no:cacheprovider",
                                         f"--chaosdrill-target={HOSTILE / 'hostile.yaml'}", *args, timeout=170)


@pytest.mark.parametrize(("mode", "env", "verdict", "reason"), CASES,
                         ids=[c[0] + ("_midway" if "HOSTILE_AFTER_BLOCKED" in c[1] else "") for c in CASES])
def test_hostile_status_never_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str,
                                     env: dict[str, str], verdict: str, reason: str) -> None:
    result = run_drill(pytester, monkeypatch, mode, env)
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-4000:]
    result.assert_outcomes(failed=1)
    folder = only_folder(pytester.path / "evidence")
    meta = assert_complete(folder)
    assert meta["verdict"] == verdict, meta["reason"]
    assert re.search(reason, meta["reason"]), f"reason does not name the problem: {meta['reason']}"
    # The same reason reaches the terminal (first line of the failure, and the drill table).
    assert "drill_5_ws_book_gap" in out and verdict in out
    assert re.search(reason, out.replace("\n", " ")) or re.search(reason, out), out[-3000:]
    assert assert_strict_json_tree(pytester.path / "evidence") >= 5
    for pid in pids_of_target(folder, meta):
        assert_gone(pid)
    labels = [m["label"] for m in strict_load((folder / "marks.json").read_text())]  # type: ignore[union-attr]
    if mode == "live_midway":  # refused at once: the fault released, the target stopped by the drill itself
        assert meta["outcome"] == "refused", meta["outcome"]
        assert "target_stopped" in labels and "assert" not in labels, labels
        if "trigger" in labels:
            assert "release" in labels, labels
    if verdict == "FAIL" and "redirect" not in mode:  # refused bodies are kept, escaped, for whoever reads the evidence
        raw = (folder / "raw_samples.jsonl").read_text().splitlines()
        assert raw and all("escaped" in strict_load(line) for line in raw[:5])  # type: ignore[operator]


def test_control_passthrough_front_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The front itself is harmless: with no attack the same drill PASSES, so every failure above is the attack's."""
    result = run_drill(pytester, monkeypatch, "passthrough", {})
    result.assert_outcomes(passed=1)
    meta = assert_complete(only_folder(pytester.path / "evidence"))
    assert meta["verdict"] == "PASS"
    assert_strict_json_tree(pytester.path / "evidence")


# --- the evidence folder: refused before anything starts ---------------------------------------------------

SENTINEL_TARGET = """
name: sentinel
command: ["{python}", "-c", "import pathlib; pathlib.Path(r'{target_dir}/STARTED').write_text('started')"]
status_url: "http://{host}:{status_port}/api/v1/status"
"""


def _unshare_ro() -> str | None:
    """Why a read-only bind mount in a private mount namespace cannot be made here (None when it can)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "d=$(mktemp -d) && mount --bind $d $d && "
                            "mount -o remount,bind,ro $d && ! touch $d/x 2>/dev/null"], capture_output=True)
    return None if probe.returncode == 0 else f"cannot make a read-only bind mount: {probe.stderr.decode()[:200]}"


def _evidence_case(pytester: pytest.Pytester, case: str) -> tuple[list[str], str, Path]:
    """(argv prefix, the option value, the path that must stay untouched) for one bad evidence location."""
    base = pytester.path
    if case == "file":
        (base / "afile").write_text("not a folder")
        return [], "afile", base / "afile"
    if case == "parent_is_file":
        (base / "afile").write_text("not a folder")
        return [], "afile/evidence", base / "afile"
    if case == "proc":
        return [], "/proc/chaosdrill-evidence", Path("/proc/chaosdrill-evidence")
    if case == "symlink_into_proc":
        (base / "plink").symlink_to("/proc")
        return [], "plink/chaosdrill-evidence", Path("/proc/chaosdrill-evidence")
    if case == "unwritable":
        ro = base / "readonly"
        ro.mkdir()
        if os.geteuid() != 0:
            ro.chmod(0o555)
            return [], str(ro / "evidence"), ro
        why = _unshare_ro()
        if why:
            pytest.skip(f"root writes anywhere, and {why}")
        # Root: a read-only bind mount that exists only in the pytest process's own mount namespace.
        return ["unshare", "-m", "sh", "-c", f'mount --bind "{ro}" "{ro}" && mount -o remount,bind,ro "{ro}" && '
                'exec "$@"', "sh"], str(ro / "evidence"), ro
    raise AssertionError(case)


@pytest.mark.parametrize("how", ["option", "ini"])
@pytest.mark.parametrize("case", ["file", "parent_is_file", "proc", "symlink_into_proc", "unwritable"])
def test_bad_evidence_dir_is_a_usage_error_before_anything_starts(pytester: pytest.Pytester, case: str,
                                                                  how: str) -> None:
    import subprocess
    import sys

    prefix, value, untouched = _evidence_case(pytester, case)
    before = sorted(untouched.iterdir()) if untouched.is_dir() else None
    drills = pytester.path / "mydrills"
    drills.mkdir()
    (drills / "gap.yaml").write_text(BOOK_GAP, encoding="utf-8")
    (pytester.path / "sentinel.yaml").write_text(SENTINEL_TARGET, encoding="utf-8")
    pytester.makepyfile(test_drills=TEST_MODULE)
    opt = [f"--chaosdrill-evidence-dir={value}"] if how == "option" else ["-o", f"chaosdrill_evidence_dir={value}"]
    cmd = prefix + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--chaosdrill-drills", str(drills),
                    f"--chaosdrill-target={pytester.path / 'sentinel.yaml'}", *opt]
    proc = subprocess.run(cmd, cwd=pytester.path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: --chaosdrill-evidence-dir"), proc.stderr
    assert "cannot write evidence: " in lines[0] and "Point it at a writable folder." in lines[0]
    expected = {"file": "is a file, not a folder", "parent_is_file": "(a parent of", "proc": "kernel pseudo file system",
                "symlink_into_proc": "(resolved: /proc/chaosdrill-evidence) is inside a kernel pseudo file system",
                "unwritable": "not writable"}[case]
    assert expected in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr and "INTERNALERROR" not in proc.stdout + proc.stderr
    assert not (pytester.path / "STARTED").exists(), "the target was started"
    assert not (pytester.path / "evidence").exists()
    assert (sorted(untouched.iterdir()) if untouched.is_dir() else None) == before


def test_default_evidence_location_that_is_a_file_stops_collection_with_one_line(pytester: pytest.Pytester) -> None:
    """Without the option, ./evidence is only checked once drills are collected (a project without drills
    must not care about a file named evidence): a collection error naming it, before any target starts."""
    (pytester.path / "evidence").write_text("not a folder")
    drills = pytester.path / "mydrills"
    drills.mkdir()
    (drills / "gap.yaml").write_text(BOOK_GAP, encoding="utf-8")
    (pytester.path / "sentinel.yaml").write_text(SENTINEL_TARGET, encoding="utf-8")
    pytester.makepyfile(test_drills=TEST_MODULE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaosdrill-drills", str(drills),
                                           f"--chaosdrill-target={pytester.path / 'sentinel.yaml'}", timeout=60)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's code for "errors during collection"
    result.stdout.fnmatch_lines([f"cannot write evidence: {pytester.path / 'evidence'} is a file, not a folder; "
                                 "pass --chaosdrill-evidence-dir=A_WRITABLE_FOLDER"])
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert not (pytester.path / "STARTED").exists()
    assert (pytester.path / "evidence").read_text() == "not a folder"


def test_evidence_dir_check_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: os.access refusing, a write probe failing, component-wise pseudo file systems."""
    import tempfile

    from pytest_chaosdrill.settings import evidence_dir_problem

    assert evidence_dir_problem(tmp_path / "new" / "evidence") is None
    assert list(tmp_path.iterdir()) == []  # the write probe leaves nothing behind
    with monkeypatch.context() as m:
        m.setattr(os, "access", lambda *a, **k: False)
        assert evidence_dir_problem(tmp_path / "ev") == f"{tmp_path} is not writable by this user"

    def refuse(*a: object, **k: object) -> str:
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:  # os.access says yes (root), the file system says no
        m.setattr(tempfile, "mkdtemp", refuse)
        assert evidence_dir_problem(tmp_path / "ev") == f"{tmp_path} is not writable: Permission denied"
    assert "pseudo" in (evidence_dir_problem(Path("/sys/fs/evidence")) or "")
    assert "pseudo" in (evidence_dir_problem(Path("/dev/evidence")) or "")
    fake = tmp_path / "procedures"  # a name starting with "proc" is not /proc
    assert evidence_dir_problem(fake) is None
    link = tmp_path / "into_sys"
    link.symlink_to("/sys")
    assert "(resolved: /sys/ev)" in (evidence_dir_problem(link / "ev") or "")
