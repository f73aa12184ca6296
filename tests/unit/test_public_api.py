"""The curated public API (pytest_chaosdrill.__all__, docs/drills.md "The public API") is pinned: a name
added or removed is a decision, made here and in the docs together."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest_chaosdrill

PUBLIC = {
    "ALL_CAPABILITIES", "Backend", "BackendSettings", "BackendUnavailable", "CannotOnThisBackend", "Check",
    "CheckResult", "DockerError", "Drill", "DrillContext", "DrillDefinitionError", "DrillFailed", "DrillInterrupted",
    "DrillNotProven", "DrillRecord", "DrillRun", "DrillSite", "DrillTimeout", "Evaluation", "ExpectationError",
    "FaultNotLanded", "LiveEnvironmentRefused", "Registry", "RenderedTarget", "SamplerRefused", "StartupFailed",
    "StepRecord", "Target", "TargetConfig", "TargetConfigError", "Trigger", "TriggerFactory", "Verdict",
    "__version__", "builtin_checks", "builtin_triggers", "evaluate", "load_drill", "load_drills", "load_target",
    "needs", "START", "KILL", "PAUSE", "NETWORK_CUT", "EXIT",
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "drills.md"


def test_all_is_pinned() -> None:
    assert set(pytest_chaosdrill.__all__) == PUBLIC


def test_every_public_name_resolves_to_its_defining_object() -> None:
    for name in sorted(PUBLIC - {"__version__"}):
        value = getattr(pytest_chaosdrill, name)
        module = importlib.import_module(f"pytest_chaosdrill.{pytest_chaosdrill._EXPORTS[name]}")
        assert getattr(module, name) is value, name


def test_the_errors_are_the_ones_the_modules_raise() -> None:
    from pytest_chaosdrill import errors, faults, guard, runner, target

    assert faults.FaultNotLanded is errors.FaultNotLanded is pytest_chaosdrill.FaultNotLanded
    assert runner.DrillNotProven is errors.DrillNotProven
    assert target.TargetConfigError is errors.TargetConfigError
    assert guard.LiveEnvironmentRefused is target.LiveEnvironmentRefused is errors.LiveEnvironmentRefused


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        pytest_chaosdrill.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_a_submodule_loads_no_public_name() -> None:
    """The names load lazily: ``chaosdrill validate-status`` (statusread) does not pay for the runner."""
    code = "import sys, pytest_chaosdrill.statusread; print('pytest_chaosdrill.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_the_docs_list_every_public_name() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## The public API"):]
    missing = [n for n in PUBLIC - {"__version__"} if not re.search(rf"`{re.escape(n)}`", section)]
    assert not missing, f"docs/drills.md 'The public API' does not name: {missing}"
