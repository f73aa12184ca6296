"""The generic core: drills validated before anything starts, the plugin invisible in other projects,
the bundled drills in a project without a drill module, verdicts re-derived from stored evidence."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from drilltexts import BOOK_GAP, TEST_MODULE

from pytest_chaosdrill.expect import Expectation

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "targets" / "okx_demo_api.yaml"



def drills_dir(pytester: pytest.Pytester, text: str, name: str = "d.yaml") -> Path:
    d = pytester.path / "mydrills"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text, encoding="utf-8")
    return d


def collect(pytester: pytest.Pytester, text: str, *args: str) -> pytest.RunResult:
    d = drills_dir(pytester, text)
    pytester.makepyfile(test_drills=TEST_MODULE)
    return pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", "--collect-only", "-p", "no:cacheprovider",
                                         *args, timeout=60)


# --- validated before anything starts ---------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "field", "says"), [
    ("kind: venue.book_gap", "kind: venue.book_gapp", "trigger.kind", "unknown trigger kind 'venue.book_gapp'"),
    ("params: {inst_id: BTC-USDT-SWAP, skip: 3}", "params: {inst_id: BTC-USDT-SWAP, skipp: 3}", "trigger.params",
     "skipp"),
    ("  - no_open_dispatch_while_blocked", "  - no_open_dispatch_while_blockd", "checks[1]",
     "unknown check 'no_open_dispatch_while_blockd'"),
    ("params: {code: WS_BOOK_GAP_RECONCILE_REQUIRED}", "params: {cod: WS_BOOK_GAP_RECONCILE_REQUIRED}",
     "checks[0].params", "cod"),
    ("fixture: ws_book_gap.json", "fixture: no_such_fixture.json", "expected", "no_such_fixture.json"),
])
def test_every_broken_drill_kind_is_a_collection_error_naming_file_and_field(
        pytester: pytest.Pytester, old: str, new: str, field: str, says: str) -> None:
    assert old in BOOK_GAP
    result = collect(pytester, BOOK_GAP.replace(old, new))
    result.assert_outcomes(errors=1)
    escaped = field.replace("[", "[[]")  # fnmatch: brackets are a character class
    result.stdout.fnmatch_lines([f"*d.yaml: field '{escaped}'*{says}*"])
    assert "Traceback" not in result.stdout.str()


def test_recovery_observe_s_is_allowed_by_the_schema(pytester: pytest.Pytester) -> None:
    result = collect(pytester, BOOK_GAP.replace("recovery: {kind: reconcile, timeout_s: 20}",
                                                "recovery: {kind: restart_required, timeout_s: 20, observe_s: 0.5}"))
    result.stdout.fnmatch_lines(["*1 test collected*"])


def test_broken_target_file_is_a_collection_error_naming_file_and_field(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "svc.yaml"
    bad.write_text("name: svc\ncommand: python -m svc\nstatus_url: http://127.0.0.1:1/s\n")
    result = collect(pytester, BOOK_GAP, f"--chaosdrill-target={bad}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*svc.yaml: field 'command': must be a list of strings*"])


def test_a_drill_the_backend_cannot_run_is_skipped_at_collection(pytester: pytest.Pytester) -> None:
    crash = (ROOT / "drills" / "drill_4_crash_restart.yaml").read_text()
    d = drills_dir(pytester, crash)
    pytester.makepyfile(test_drills=TEST_MODULE)
    result = pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", "--chaosdrill-backend=external", "-rs",
                                           "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*external backend cannot kill, start*process.kill_restart*"])


def test_a_check_reading_an_undeclared_file_is_not_proven_before_the_service_starts(pytester: pytest.Pytester) -> None:
    target = pytester.path / "nofp.yaml"
    target.write_text(TARGET.read_text().replace('  fingerprint: "{data_dir}/execution_fingerprint.json"\n', "")
                      .replace('command: ["{python}"', 'command: ["' + sys.executable.replace("\\", "/") + '"'))
    text = BOOK_GAP.replace("  - latch_clears_only_after_reconcile", "  - fingerprint_error_gate")
    d = drills_dir(pytester, text)
    pytester.makepyfile(test_drills=TEST_MODULE)
    result = pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", f"--chaosdrill-target={target}",
                                           "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NOT PROVEN: the target file*declares no files.fingerprint*"])
    meta = next((pytester.path / "evidence" / "runs").rglob("meta.json"))
    assert json.loads(meta.read_text())["verdict"] == "NOT PROVEN"


# --- invisible until used -----------------------------------------------------------------------------------------


def test_an_unrelated_project_sees_nothing_of_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest

@pytest.fixture
def venue():
    return "their own venue"
""")
    pytester.makepyfile(test_theirs="""
import pytest

@pytest.mark.parametrize("drill", [1, 2, 3])
def test_drill_numbers(drill, venue):
    assert venue == "their own venue" and drill > 0
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=60)
    result.assert_outcomes(passed=3)
    # pytest's own "plugins:" line lists every installed plugin; nothing else may name the plugin.
    lines = [ln for ln in (result.stdout.lines + result.stderr.lines)
             if not ln.startswith(("plugins:", "metadata:"))]   # pytest's / pytest-metadata's plugin listings
    assert not [ln for ln in lines if "chaosdrill" in ln.lower()]
    assert not (pytester.path / "evidence").exists()
    pytester_own = ("runpytest", "stdout", "stderr")  # pytester's capture files and basetemp
    assert sorted(p.name for p in pytester.path.iterdir() if not p.name.startswith(pytester_own)) == \
        ["conftest.py", "test_theirs.py"]


def test_no_heavy_imports_in_an_unrelated_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_light="""
import sys

def test_modules():
    heavy = [m for m in ("requests", "deepdiff", "jsonschema", "yaml", "aiohttp", "hypothesis",
                         "pytest_chaosdrill.runner", "pytest_chaosdrill.session", "pytest_chaosdrill.contract")
             if m in sys.modules]
    print("HEAVY", heavy)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-p", "no:hypothesispytest",
                                           "-p", "no:docker", timeout=60)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HEAVY []*"])


# --- use in one's own repository ------------------------------------------------------------------------------------


def test_a_repository_without_a_drill_module_runs_the_bundled_drills(pytester: pytest.Pytester) -> None:
    """Space-separated option values (which pytest also sees as paths for its rootdir) resolve the same."""
    d = drills_dir(pytester, BOOK_GAP)
    pytester.makepyfile(test_unrelated="def test_unrelated():\n    pass\n")
    result = pytester.runpytest_subprocess("-m", "phase2", "--chaosdrill-target", str(TARGET), "--chaosdrill-drills",
                                           str(d), "-p", "no:cacheprovider", timeout=150)
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*running the bundled drills*", "*drill_5_ws_book_gap*PASS*"])
    assert (pytester.path / "evidence" / "phase2" / "drill_5_ws_book_gap" / "meta.json").is_file()


def test_phase2_without_drills_is_never_a_silent_exit_5(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated="def test_unrelated():\n    pass\n")
    result = pytester.runpytest_subprocess("-m", "phase2", "-p", "no:cacheprovider", timeout=60)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*chaosdrill: no drills were collected*--chaosdrill-target*"])


# --- verdicts re-derived from stored evidence ------------------------------------------------------------------------


def recheck(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "recheck", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def test_recheck_agrees_and_catches_a_tampered_sample(pytester: pytest.Pytester) -> None:
    d = drills_dir(pytester, BOOK_GAP)
    pytester.makepyfile(test_drills=TEST_MODULE)
    result = pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", "-p", "no:cacheprovider", timeout=150)
    result.assert_outcomes(passed=1)
    evidence = pytester.path / "evidence"
    ok = recheck(evidence)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "same      drill_5_ws_book_gap: PASS" in ok.stdout and "1 agree, 0 differ" in ok.stdout
    # Tamper: one latched sample now claims Active (the latch still set): Decision A is violated.
    folder = next(evidence.joinpath("runs").glob("*/phase2/drill_5_ws_book_gap"))
    lines = gzip.decompress((folder / "timeline.jsonl.gz").read_bytes()).decode().splitlines()
    for n, line in enumerate(lines):
        sample = json.loads(line)
        if isinstance(sample.get("status"), dict) and sample["status"].get("open_permission_blocked_latch") is True:
            sample["status"]["trading_mode"] = "Active"
            sample["status"]["mode_reasons"] = []
            lines[n] = json.dumps(sample)
            break
    else:
        pytest.fail("no latched sample to tamper with")
    (folder / "timeline.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    bad = recheck(evidence)
    assert bad.returncode == 1, bad.stdout
    assert "DIFFERENT drill_5_ws_book_gap: stored PASS, re-derived FAIL" in bad.stdout
    assert "DECISION-A" in bad.stdout and "hashes: 1 mismatch" in bad.stdout


def test_recheck_unreadable_evidence_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "drill_x"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"verdict": "PASS"}))
    out = recheck(tmp_path)
    assert out.returncode == 2 and "no record.json" in out.stdout
    assert recheck(tmp_path / "missing").returncode == 2


# --- expected status: a truthful superset of reasons ------------------------------------------------------------------


def test_expected_reasons_allow_a_truthful_superset_in_order() -> None:
    exp = Expectation({"mode_reasons": ["A", "C"]}, ("mode_reasons",))
    assert exp.compare({"mode_reasons": ["A", "B", "C"]}).matched
    assert not exp.compare({"mode_reasons": ["C", "A"]}).matched          # out of order
    assert not exp.compare({"mode_reasons": ["A"]}).matched               # one missing
    strict = Expectation({"mode_reasons": ["A", "C"]}, ("mode_reasons",), exact=("mode_reasons",))
    assert not strict.compare({"mode_reasons": ["A", "B", "C"]}).matched
