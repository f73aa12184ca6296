"""The plugin end to end in a separate pytest process (pytester): collection, verdicts, evidence for
every outcome, reports. The real reference target, venue and proxy run underneath."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from drilltexts import BOOK_GAP, TEST_MODULE

from junit_rules import junit10_problems
from pytest_chaosdrill.evidence import REQUIRED_FILES
from pytest_chaosdrill.resources import default_manifest




def make_drill(pytester: pytest.Pytester, name: str, text: str) -> None:
    d = pytester.path / "mydrills"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text, encoding="utf-8")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_drills=TEST_MODULE)
    return pytester.runpytest_subprocess("--chaosdrill-drills", str(pytester.path / "mydrills"), "-p",
                                         "no:cacheprovider", *args, timeout=150)


def only_folder(pytester: pytest.Pytester, group: str = "phase2") -> Path:
    runs = list((pytester.path / "evidence" / "runs").iterdir())
    assert len(runs) == 1, runs
    folders = [p for p in (runs[0] / group).iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def assert_complete(folder: Path) -> dict:
    for f in REQUIRED_FILES + ("meta.json", "SHA256SUMS"):
        assert (folder / f).is_file(), f"{f} missing from {folder}"
    ieb = list(folder.parent.glob(f"IEB_*_{folder.name}.tar.gz"))
    assert len(ieb) == 1 and Path(str(ieb[0]) + ".sha256").is_file()
    return json.loads((folder / "meta.json").read_text())


def assert_pid_gone(meta: dict) -> None:
    pid = meta["target"].get("pid")
    if pid is None:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return
    assert b"okx_demo_api" not in cmdline, f"target process {pid} is still running"


def test_broken_drill_file_is_a_collection_error_naming_file_and_field(pytester: pytest.Pytester) -> None:
    make_drill(pytester, "broken.yaml", BOOK_GAP.replace("kind: venue.book_gap", "kind: 42"))
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*broken.yaml: field 'trigger.kind'*"])  # one line: file and field


def test_yaml_syntax_error_names_the_file(pytester: pytest.Pytester) -> None:
    make_drill(pytester, "bad.yaml", "id: [unclosed\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.yaml*not valid YAML*"])


def test_passing_drill_writes_evidence_junit_and_signoff(pytester: pytest.Pytester) -> None:
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    junit = pytester.path / "junit.xml"
    result = run(pytester, f"--junitxml={junit}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*chaos drills*", "*drill_5_ws_book_gap*process*PASS*"])
    folder = only_folder(pytester)
    meta = assert_complete(folder)
    assert meta["verdict"] == "PASS"
    assert_pid_gone(meta)
    # the latest-run link
    link = pytester.path / "evidence" / "phase2" / "drill_5_ws_book_gap"
    assert link.is_symlink() and link.resolve() == folder.resolve()
    # JUnit: per-test and per-suite properties
    # JUnit (xunit2, pytest's default): valid under junit-10's rules, per-drill facts as suite properties
    root = ET.parse(junit).getroot()
    assert junit10_problems(root) == []
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    key = "chaosdrill[drill_5_ws_book_gap-process]."
    assert props[key + "drill_id"] == "drill_5_ws_book_gap" and props[key + "verdict"] == "PASS"
    assert float(props[key + "time_to_safe_ms"]) >= 0 and props[key + "evidence_folder"] == str(folder)
    assert len(props[key + "ieb_sha256"]) == 64 and props["chaosdrill_run_id"].startswith("run_")
    # xunit1 keeps them on the testcase itself
    legacy = pytester.path / "junit1.xml"
    run(pytester, f"--junitxml={legacy}", "-o", "junit_family=xunit1").assert_outcomes(passed=1)
    case = next(ET.parse(legacy).getroot().iter("testcase"))
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["verdict"] == "PASS"
    signoff = (folder.parent.parent / "SIGNOFF.md").read_text()
    assert "- [ ] All 8 drills executed" in signoff and "1 of 8" in signoff
    assert "- [x] Each drill has evidence folder with all required files" in signoff
    assert "- [ ] Owner dashboard passes 5-second rule" in signoff  # a person must read it
    assert signoff.startswith("# NOT READY") and "Signed:" not in signoff   # 1 of 8 drills: never a statement
    # hashes verify, and a tampered file is caught
    cli = [sys.executable, "-m", "pytest_chaosdrill.cli", "verify-evidence"]
    assert subprocess.run(cli + [str(pytester.path / "evidence")], capture_output=True).returncode == 0
    (folder / "observed_status.json").write_text('{"trading_mode": "Active"}')
    bad = subprocess.run(cli + [str(folder)], capture_output=True, text=True)
    assert bad.returncode == 1 and "observed_status.json" in bad.stdout


def test_second_run_never_overwrites_the_first(pytester: pytest.Pytester) -> None:
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    run(pytester).assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)
    runs = sorted((pytester.path / "evidence" / "runs").iterdir())
    assert len(runs) == 2
    newest = max(runs, key=lambda p: p.stat().st_mtime_ns)
    link = pytester.path / "evidence" / "phase2" / "drill_5_ws_book_gap"
    assert json.loads((link / "meta.json").read_text())["run_id"] == newest.name
    for r in runs:
        assert (r / "phase2" / "drill_5_ws_book_gap" / "notes.md").is_file()


def test_fault_that_never_lands_is_not_proven(pytester: pytest.Pytester) -> None:
    # toxicity 0: the toxic is installed but never acts on a connection, so nothing proves the fault.
    make_drill(pytester, "never.yaml", BOOK_GAP.replace(
        "trigger: {kind: venue.book_gap, params: {inst_id: BTC-USDT-SWAP, skip: 3}}",
        "trigger: {kind: proxy.toxic, params: {type: reset_peer, toxicity: 0.0, timeout: 0}, land_timeout_s: 1.5}"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NOT PROVEN*never acted on traffic*", "*drill_5_ws_book_gap*NOT PROVEN*"])
    meta = assert_complete(only_folder(pytester))
    assert meta["verdict"] == "NOT PROVEN"
    assert_pid_gone(meta)


def test_steady_state_without_traffic_is_not_proven(pytester: pytest.Pytester) -> None:
    make_drill(pytester, "busy.yaml", BOOK_GAP.replace(
        "markers: [phase2]", "markers: [phase2]\nsteady_state: {min_orders_per_s: 500, window_s: 1, timeout_s: 3}"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NOT PROVEN: steady state not reached*orders*"])
    notes = (only_folder(pytester) / "notes.md").read_text()
    assert "NOT PROVEN" in notes and "The trigger was not fired" in (only_folder(pytester) / "trigger.md").read_text()


def test_timeout_still_writes_evidence_and_stops_the_target(pytester: pytest.Pytester) -> None:
    make_drill(pytester, "slow.yaml", BOOK_GAP.replace(
        "trigger: {kind: venue.book_gap, params: {inst_id: BTC-USDT-SWAP, skip: 3}}",
        "trigger: {kind: venue.freeze, params: {channels: [books]}, hold_s: 60}").replace("timeout_s: 60", "timeout_s: 12"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    meta = assert_complete(only_folder(pytester))
    assert meta["verdict"] == "TIMEOUT"
    assert_pid_gone(meta)


def test_keyboard_interrupt_still_writes_evidence_and_stops_the_target(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
from pytest_chaosdrill.faults import Trigger

class Interrupt(Trigger):
    kind = "test.interrupt"
    def fire(self):
        raise KeyboardInterrupt

def pytest_chaosdrill_add_triggers(triggers):
    triggers["test.interrupt"] = Interrupt
""")
    make_drill(pytester, "ctrlc.yaml", BOOK_GAP.replace(
        "trigger: {kind: venue.book_gap, params: {inst_id: BTC-USDT-SWAP, skip: 3}}", "trigger: {kind: test.interrupt}"))
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    meta = assert_complete(only_folder(pytester))
    assert meta["verdict"] == "INTERRUPTED"
    assert_pid_gone(meta)


def test_user_check_from_a_hook_can_fail_a_drill(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
from pytest_chaosdrill.checks import CheckResult

def always_red(run, reason="user said no"):
    return CheckResult("always_red", False, reason)

def pytest_chaosdrill_add_checks(checks):
    checks["always_red"] = always_red
""")
    make_drill(pytester, "gap.yaml", BOOK_GAP.replace("  - no_open_dispatch_while_blocked",
                                                        "  - no_open_dispatch_while_blocked\n  - always_red"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAIL: always_red: user said no", "*FAILED*test_drill*FAIL*"])
    assert json.loads((only_folder(pytester) / "meta.json").read_text())["verdict"] == "FAIL"


def test_live_environment_is_refused(pytester: pytest.Pytester) -> None:
    target = (Path(__file__).resolve().parents[2] / "targets" / "okx_demo_api.yaml").read_text()
    (pytester.path / "live.yaml").write_text(target.replace("environment: PAPER", "environment: LIVE"))
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    result = run(pytester, "--chaosdrill-target", str(pytester.path / "live.yaml"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refusing to drill a possibly live*LIVE*"])


def test_a_bot_configured_for_real_money_is_refused_from_the_wire(pytester: pytest.Pytester) -> None:
    """The status says PAPER, but the bot's private requests carry no x-simulated-trading header: the
    venue answers 50101 (as OKX does for a demo key used live) and the drill is refused from the
    witness's own view, NOT PROVEN with the refusal as the reason."""
    repo = Path(__file__).resolve().parents[2]
    # a copy elsewhere: the manifest path, relative to the target file's folder, made absolute
    target = (repo / "targets" / "okx_demo_api.yaml").read_text().replace('"../specs/', f'"{repo}/specs/')
    (pytester.path / "live_wire.yaml").write_text(target.replace('TARGET_ENVIRONMENT: "PAPER"',
                                                                 'TARGET_ENVIRONMENT: "PAPER"\n  OKX_DEMO_TRADING: "0"'))
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    result = run(pytester, "--chaosdrill-target", str(pytester.path / "live_wire.yaml"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NOT PROVEN*refus*without the demo-trading header x-simulated-trading: 1*50101*"])
    meta = json.loads((only_folder(pytester) / "meta.json").read_text())
    assert meta["verdict"] == "NOT PROVEN"
    ledger = [json.loads(x) for x in (only_folder(pytester) / "witness_ledger.jsonl").read_text().splitlines()]
    live = [e for e in ledger if e["type"] == "request" and e.get("simulated") is False]
    assert live and {e["auth"] for e in live} == {"50101"} and {e["status"] for e in live} == {401}


def test_docker_backend_without_an_engine_is_a_usage_error_with_one_reason(pytester: pytest.Pytester,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for and unavailable: exit 4 before any drill, never a green run of skips (issue 23)."""
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    monkeypatch.setenv("CHAOSDRILL_DOCKER", "no-such-docker-cli")
    monkeypatch.delenv("CHAOSDRILL_REQUIRE_DOCKER", raising=False)
    result = run(pytester, "--chaosdrill-backend", "docker", "-rs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --chaosdrill-backend docker: docker backend: docker CLI not found*"])
    assert "SKIPPED" not in result.stdout.str()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_external_backend_drills_an_already_running_service(pytester: pytest.Pytester) -> None:
    """A service started by someone else, pointed at fixed ports where the drill puts its proxy."""
    venue_port, proxy_port, status_port = _free_port(), _free_port(), _free_port()
    control, data = pytester.path / "control", pytester.path / "data"
    env = dict(os.environ, OKX_REST_URL=f"http://127.0.0.1:{proxy_port}", TARGET_PORT=str(status_port),
               OKX_WS_PUBLIC_URL=f"ws://127.0.0.1:{proxy_port}/ws/v5/public",
               OKX_WS_PRIVATE_URL=f"ws://127.0.0.1:{proxy_port}/ws/v5/private",
               TARGET_CONTROL_DIR=str(control), TARGET_DATA_DIR=str(data),
               TARGET_REASON_MANIFEST=str(default_manifest()),
               # keys baked into the service's configuration: the target file declares them (venue.key)
               OKX_API_KEY="baked-key", OKX_API_SECRET="baked-secret-0123", OKX_API_PASSPHRASE="baked-pass")
    service = subprocess.Popen([sys.executable, "-m", "okx_demo_api"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (pytester.path / "svc.yaml").write_text(f"""
name: already_running
command: ["unused"]
status_url: "http://127.0.0.1:{status_port}/api/v1/status"
files: {{fingerprint: "{data}/execution_fingerprint.json"}}
external: {{venue_port: {venue_port}, proxy_port: {proxy_port}, status_port: {status_port}}}
venue: {{key: {{api_key: baked-key, secret_key: baked-secret-0123, passphrase: baked-pass}}}}
""")
        # The latch-clearing order is provable here only from the service's own clear time, which the
        # external backend does not trust (the service's clock may not be this machine's).
        make_drill(pytester, "gap.yaml", BOOK_GAP.replace("  - latch_clears_only_after_reconcile\n", ""))
        make_drill(pytester, "crash.yaml", (Path(__file__).resolve().parents[2] / "drills"
                                            / "drill_4_crash_restart.yaml").read_text())
        # The gap drill passes; the crash drill needs to kill a process the plugin does not own: skipped
        # at collection with the reason, never run half-way.
        result = run(pytester, "--chaosdrill-backend", "external", "--chaosdrill-target", str(pytester.path / "svc.yaml"),
                     "-rs")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(["*SKIPPED*the external backend cannot kill, start*process.kill_restart*"])
        assert service.poll() is None  # the plugin never stops a service it did not start
    finally:
        service.kill()
        service.wait(10)


@pytest.mark.parametrize(("args", "message"), [
    (["--chaosdrill-backend", "k8s"], "*unknown backend 'k8s'*built in: process, docker, external*"),
    (["--chaosdrill-sample-interval-ms", "fast"], "*must be a number, got 'fast'*"),
])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
