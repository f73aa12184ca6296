"""``chaosdrill doctor`` against real services: the reference target, the example service, and the
example service with a target file lacking every optional extra (files, hooks, hooks log)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "chaosdrill"
CHAOSDRILL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pytest_chaosdrill.cli"]
#: what the process backend cannot run: the network cut and the DNS stub (docker), the cluster drills (kubernetes)
ALL_READY_BUT_C2_2 = {"ops_c2_2_network_disconnect": "SKIPPED", "ops_c2_7_dns_failure": "SKIPPED",
                      "cluster_1_pod_rescheduled": "SKIPPED", "cluster_2_node_loss": "SKIPPED",
                      "cluster_3_oom_crash_loop": "SKIPPED"}


def doctor(target: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([*CHAOSDRILL, "doctor", str(target), "--json", "--observe-s=3", *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=90)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def optional(report: dict[str, Any], drill: str) -> list[str]:
    return next(r["optional"] for r in report["drills"] if r["drill"] == drill)


def not_ready(report: dict[str, Any]) -> dict[str, str]:
    return {r["drill"]: r["verdict"] for r in report["drills"] if r["verdict"] != "READY"}


def test_reference_target_is_ready_for_every_drill_its_backend_can_run() -> None:
    code, report = doctor(ROOT / "targets" / "okx_demo_api.yaml")
    assert not_ready(report) == ALL_READY_BUT_C2_2, report
    assert code == 0
    assert report["observed_s"] < 40   # "well under a minute", start-up included
    # drill 3's optional occasion hook: the reference target file declares it
    assert any(o.startswith("hooks.reduce_exposure") and o.endswith("(present)") for o in optional(report, "drill_3_wal_backpressure"))


def test_example_service_is_ready_too() -> None:
    code, report = doctor(ROOT / "examples" / "threaded_service" / "target.yaml")
    assert not_ready(report) == ALL_READY_BUT_C2_2, report
    assert code == 0


def test_service_without_extras_is_told_what_to_add(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "examples" / "threaded_service" / "target.yaml").read_text())
    for extra in ("files", "hooks", "hooks_log", "docker"):
        data.pop(extra)
    data["env"]["PYTHONPATH"] = str(ROOT / "examples")
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(data))
    code, report = doctor(bare)
    assert code == 1
    seen = not_ready(report)
    # drill 1 needs a two-leg batch within the short observation: the example's strategy sends one only
    # now and then, so a NOT PROVEN there must name exactly that, and is otherwise not this test's point
    said_1 = " ".join(next(r["missing"] for r in report["drills"] if r["drill"] == "drill_1_partial_fill"))
    if seen.pop("drill_1_partial_fill", None) is not None:
        assert "two-leg POST /api/v5/trade/batch-orders" in said_1, said_1
    assert seen == {
        "drill_3_wal_backpressure": "NOT PROVEN", "drill_6_ws_trades_gap": "NOT PROVEN",
        "drill_8_unknown_token": "NOT PROVEN", "ops_c2_1_stop": "NOT PROVEN",
        "ops_c2_3_degradation": "NOT PROVEN", "ops_c2_5_timeouts": "NOT PROVEN", "ops_c2_6_clock_skew": "NOT PROVEN",
        **ALL_READY_BUT_C2_2}, report
    said = {r["drill"]: " ".join(r["missing"]) for r in report["drills"]}
    assert "hooks.wal_stall" in said["drill_3_wal_backpressure"] and "hooks_log" in said["drill_3_wal_backpressure"]
    # the occasion hook is optional: said absent, with what to add, and never among the missing
    assert any(o.startswith("hooks.reduce_exposure") and "(absent; add hooks:" in o
               for o in optional(report, "drill_3_wal_backpressure"))
    assert "reduce_exposure" not in said["drill_3_wal_backpressure"]
    assert "files.fingerprint" in said["drill_6_ws_trades_gap"]
    assert "hooks.emit_reason_token" in said["drill_8_unknown_token"]
    assert "files.stop" in said["ops_c2_1_stop"] and "files.run_manifest" in said["ops_c2_1_stop"]


def test_bad_target_file_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncommand: 5\nstatus_url: http://127.0.0.1:1/\n")
    proc = subprocess.run([*CHAOSDRILL, "doctor", str(bad)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "command" in proc.stderr


def test_service_that_dies_is_shown_with_its_last_output_and_no_secret(tmp_path: Path) -> None:
    dies = tmp_path / "dies.yaml"
    dies.write_text(yaml.safe_dump({
        "name": "dies", "status_url": "http://{host}:{status_port}/api/v1/status", "startup_timeout_s": 5,
        "env": {"API_SECRET": "{venue_secret_key}"},
        "command": ["{python}", "-c", "import os, sys; print('secret is', os.environ['API_SECRET']); sys.exit(3)"]}))
    code, report = doctor(dies)
    assert code == 1
    assert {r["verdict"] for r in report["drills"]} == {"NOT PROVEN", "SKIPPED"}
    assert any("exited (code 3)" in m for r in report["drills"] for m in r["missing"])
    assert report["log_tail"] == ["secret is ***REDACTED***"]
