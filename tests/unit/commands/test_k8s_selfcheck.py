"""``chaosdrill k8s-selfcheck``'s NetworkPolicy line and exit code, the cluster and the probe mocked:
one line per outcome with the probe's time, and an inconclusive probe never makes the exit non-zero."""
from __future__ import annotations

import argparse
from typing import Any

import pytest

from pytest_chaosdrill.commands import k8s_selfcheck


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    k8s_selfcheck.configure(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("enforced, start", [(True, "networkpolicy: enforced ("),
                                             (False, "networkpolicy: not enforced (a deny-all"),
                                             (None, "networkpolicy: not proven (no baseline)")])
def test_one_line_per_outcome_with_the_probe_time(enforced: bool | None, start: str) -> None:
    why = {True: "stopped", False: "a deny-all ingress policy did not stop a connection", None: "no baseline"}[enforced]
    line = k8s_selfcheck.networkpolicy_line({"enforced": enforced, "why": why, "seconds": 12.34, "cleanup": []})
    assert line.startswith(start) and line.endswith("[probe took 12.3 s]") and "\n" not in line


def test_leftovers_are_named() -> None:
    line = k8s_selfcheck.networkpolicy_line({"enforced": False, "why": "x", "seconds": 1, "cleanup": ["pod ns/p: 403"]})
    assert line.endswith("LEFT BEHIND: pod ns/p: 403")


def _fake_cluster(monkeypatch: pytest.MonkeyPatch, found: dict[str, Any], allowed: bool = True) -> list[Any]:
    import pytest_chaosdrill.backends.k8s.cluster as cluster

    images: list[Any] = []
    monkeypatch.setattr(cluster, "api_client", lambda context=None: object())

    def findings(api: Any, namespace: str, image: Any = None) -> dict[str, Any]:
        images.append(image)
        return {"server_version": "v1.20.2", "nodes": [], "namespace": {"name": namespace, "allowed": allowed, "why": "no"},
                "rbac": {"all_allowed": True, "verbs": {}}, "chaos_mesh": {"installed": False},
                "network_policy": found if image else {"enforced": None, "why": "no probe run (--no-probe)"}}

    monkeypatch.setattr(k8s_selfcheck, "findings", findings)
    return images


def test_an_inconclusive_probe_keeps_exit_zero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    images = _fake_cluster(monkeypatch, {"enforced": None, "why": "no baseline", "seconds": 3.0, "cleanup": []})
    assert k8s_selfcheck.run(_args("--image", "img:1")) == 0
    assert images == [("img:1", "IfNotPresent")]
    assert "networkpolicy: not proven (no baseline) [probe took 3.0 s]" in capsys.readouterr().out


def test_no_probe_runs_none(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    images = _fake_cluster(monkeypatch, {})
    assert k8s_selfcheck.run(_args("--no-probe")) == 0
    assert images == [None] and "networkpolicy: not proven (no probe run (--no-probe))" in capsys.readouterr().out


def test_the_probe_image_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSDRILL_K8S_IMAGE", raising=False)
    monkeypatch.delenv("CHAOSDRILL_IMAGE", raising=False)
    assert k8s_selfcheck.probe_image(_args()) == ("chaosdrill/target:latest", "IfNotPresent")
    monkeypatch.setenv("CHAOSDRILL_IMAGE", "a:1")
    assert k8s_selfcheck.probe_image(_args()) == ("a:1", "IfNotPresent")
    monkeypatch.setenv("CHAOSDRILL_K8S_IMAGE", "b:2")
    assert k8s_selfcheck.probe_image(_args()) == ("b:2", "IfNotPresent")
    assert k8s_selfcheck.probe_image(_args("--image", "c:3")) == ("c:3", "IfNotPresent")


def test_the_target_files_image_and_a_bad_target_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    monkeypatch.delenv("CHAOSDRILL_K8S_IMAGE", raising=False)
    monkeypatch.delenv("CHAOSDRILL_IMAGE", raising=False)
    target = Path(__file__).resolve().parents[3] / "targets" / "okx_demo_api.yaml"
    assert k8s_selfcheck.probe_image(_args("--target", str(target))) == ("chaosdrill/target:latest", "IfNotPresent")
    images = _fake_cluster(monkeypatch, {})
    missing = tmp_path / "nope.yaml"
    assert k8s_selfcheck.run(_args("--target", str(missing))) == 2
    err = capsys.readouterr().err.strip()
    assert images == [] and "\n" not in err and "nope.yaml" in err
