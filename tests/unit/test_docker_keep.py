"""backends/docker_keep: kept resources are told apart from a session's, and removing them takes only their
own label (the engine itself is exercised in tests/e2e/test_keep.py)."""
from __future__ import annotations

import pytest

from pytest_chaosdrill.backends import docker_keep
from pytest_chaosdrill.backends.docker_engine import KEPT_KEY, KEPT_RUN_ID_KEY, MANAGED_KEY, RUN_ID_KEY


def test_a_kept_engine_labels_as_kept_never_as_managed_and_is_not_torn_down_at_exit() -> None:
    engine = docker_keep.KeptEngine("run_x-drill_5", "run_x", docker="docker")
    assert engine.labels == {KEPT_KEY: "run_x-drill_5", KEPT_RUN_ID_KEY: "run_x"}
    assert MANAGED_KEY not in engine.labels and RUN_ID_KEY not in engine.labels
    assert engine.run_label == f"{KEPT_KEY}=run_x-drill_5"
    assert engine.teardown() == [] and engine._closed  # the exit/signal sweep of engines leaves it alone


@pytest.mark.parametrize("label", ["io.chaosdrill.managed=true", f"{KEPT_KEY}=", KEPT_KEY,
                                   f"{RUN_ID_KEY}=run_x", ""])
def test_remove_refuses_any_label_but_one_kept_environment(label: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_keep, "reap", lambda *a, **k: pytest.fail("reap called"))
    with pytest.raises(ValueError, match="not a kept environment's label"):
        docker_keep.remove(label)


def test_remove_reaps_exactly_the_kept_label(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(docker_keep, "reap", lambda label, docker=None: calls.append((label, docker)) or ["container:a"])
    assert docker_keep.remove(f"{KEPT_KEY}=run_x-drill_5", "docker") == ["container:a"]
    assert calls == [(f"{KEPT_KEY}=run_x-drill_5", "docker")]
