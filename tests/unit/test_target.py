"""Unit tests of pytest_chaosdrill.target: placeholders, file errors and the live-environment refusal."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_chaosdrill.target import LiveEnvironmentRefused, TargetConfigError, load_target, refuse_live


# --- target files and the live-environment refusal -------------------------------------------------------


def _target(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return p


def test_target_placeholders_are_filled_and_unknown_ones_named(tmp_path: Path) -> None:
    t = load_target(_target(tmp_path, 'name: s\ncommand: ["{python}", "-m", "svc"]\n'
                                      'env: {URL: "{venue_rest_url}", KEY: "abc-{drill_id}"}\n'
                                      'status_url: "http://127.0.0.1:{status_port}/s"\n'))
    r = t.render({"venue_rest_url": "http://127.0.0.1:9", "status_port": 5, "drill_id": "d"})
    assert r.env == {"URL": "http://127.0.0.1:9", "KEY": "abc-d"} and r.status_url.endswith(":5/s")
    assert r.secrets() == ["abc-d"]
    with pytest.raises(TargetConfigError, match=r"field 'env.URL': unknown placeholder \{venue_rest_url\}"):
        t.render({})  # a value the backend does not give: named when rendered


def test_unknown_and_malformed_placeholders_are_named_when_the_file_is_loaded(tmp_path: Path) -> None:
    """Issue 23 (4): at collection, one line each, all of them; not one traceback per drill."""
    with pytest.raises(TargetConfigError) as exc:
        load_target(_target(tmp_path, 'name: s\ncommand: ["x", "{pyton}"]\nenv: {A: "{venue_url}", B: "{bad"}\n'
                                      'status_url: "http://127.0.0.1/"\nfiles: {log: "{venue_ca_file}"}\n'))
    lines = str(exc.value).splitlines()
    assert [line.split(": ", 1)[1].split(";")[0].split(" (")[0] for line in lines] == [
        "field 'command[1]': unknown placeholder {pyton}", "field 'env.A': unknown placeholder {venue_url}",
        "field 'env.B': expected '}' before end of string", "field 'files.log': unknown placeholder {venue_ca_file}"]
    assert all(line.startswith(str(tmp_path)) for line in lines)
    assert "it needs 'venue: {tls: true}'" in lines[3]


def test_target_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError, match="field 'command' is required"):
        load_target(_target(tmp_path, "name: s\nstatus_url: u\n"))
    with pytest.raises(TargetConfigError, match="list of strings"):
        load_target(_target(tmp_path, "name: s\ncommand: run me\nstatus_url: u\n"))
    with pytest.raises(TargetConfigError, match="cannot read"):
        load_target(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("env", "environment", "status", "refused"), [
    ({"URL": "http://127.0.0.1:1"}, "PAPER", {}, False),
    ({"URL": "https://www.okx.com"}, "PAPER", {}, True),
    ({"URL": "wss://10.1.2.3:8443/ws"}, "PAPER", {}, True),
    ({"URL": "http://localhost:1"}, "LIVE", {}, True),
    ({"URL": "http://[::1]:1"}, "PAPER", {"deployment_environment": "LIVE"}, True),
])
def test_refuse_live(tmp_path: Path, env: dict, environment: str, status: dict, refused: bool) -> None:
    env_yaml = json.dumps(env)
    t = load_target(_target(tmp_path, f'name: s\nenvironment: {environment}\ncommand: ["x"]\nenv: {env_yaml}\n'
                                      'status_url: "http://127.0.0.1:1/s"\n')).render({})
    if refused:
        with pytest.raises(LiveEnvironmentRefused, match="--chaosdrill-allow-live"):
            refuse_live(t, allow_live=False, status=status)
        refuse_live(t, allow_live=True, status=status)  # the explicit override
    else:
        refuse_live(t, allow_live=False, status=status)


# --- budgets and timing facts ------------------------------------------------------------------------


BASE = 'name: s\ncommand: ["x"]\nstatus_url: "http://127.0.0.1/"\n'


def test_budget_comes_from_the_drill_unless_the_target_file_sets_one(tmp_path: Path) -> None:
    plain = load_target(_target(tmp_path, BASE))
    b = plain.budget("ops_c2_5_timeouts", 3000, {"request_timeout_s": 500})
    assert (b.ms, b.source) == (3000, "drill")
    t = load_target(_target(tmp_path, BASE + "budgets: {time_to_safe_ms: {drill_5_ws_book_gap: 450}}\n"
                                               "timing: {request_timeout_s: 3.0}\n"))
    b = t.budget("drill_5_ws_book_gap", 300, {})
    assert (b.ms, b.source) == (450, "target file") and "budgets.time_to_safe_ms.drill_5_ws_book_gap" in b.why
    # C2.5: a declared 3.0 s request timeout gets 3.0 s + the drill's 500 ms allowance, not the 3000 ms default
    b = t.budget("ops_c2_5_timeouts", 3000, {"request_timeout_s": 500})
    assert (b.ms, b.source) == (3500, "target file") and "timing.request_timeout_s = 3 s" in b.why
    # a fact the drill does not depend on, or one below the default, leaves the default
    assert t.budget("drill_2_market_data_stale", 1800, {}).source == "drill"
    fast = load_target(_target(tmp_path, BASE + "timing: {request_timeout_s: 1.0}\n"))
    assert fast.budget("ops_c2_5_timeouts", 3000, {"request_timeout_s": 500}).ms == 3000


@pytest.mark.parametrize("section, field", [
    ("budgets: {time_to_safe_ms: {drill_1: -5}}", "budgets.time_to_safe_ms.drill_1"),
    ("budgets: {time_to_safe: {drill_1: 5}}", "budgets"),
    ("timing: {request_timeout: 3}", "timing"),
    ("timing: {request_timeout_s: fast}", "timing.request_timeout_s"),
])
def test_bad_budgets_name_the_field(tmp_path: Path, section: str, field: str) -> None:
    with pytest.raises(TargetConfigError, match=field.replace(".", r"\.")):
        load_target(_target(tmp_path, BASE + section + "\n"))
