"""Repo-level wiring: this repository's own drills (drills/) run against the reference target
okx_demo_api, set in pyproject.toml (``chaosdrill_target``); ``--chaosdrill-target`` points the same
drills at another service. The plugin itself comes from the ``pytest11`` entry point."""

pytest_plugins = ["pytester"]  # the plugin's own end-to-end tests run pytest in pytest


# -- the `serial` marker: a test that runs alone in a `pytest -n 2` run ------------------------------
# Under pytest-xdist every test holds a shared lock while it runs and a `serial` test an exclusive one, so a
# serial test (one that starts its own multi-worker drill sessions) never runs beside another test of the
# run: it waits for the other worker's current test to end, and that worker waits until it is done. A
# turnstile lock taken before either keeps a waiting serial test from being starved by the stream of
# shared holders. Without xdist there is nothing to wait for.
import contextlib
import fcntl
from pathlib import Path
from typing import Iterator

import pytest


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh, mode)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _serial_gate(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not hasattr(request.config, "workerinput"):
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # one folder per xdist run, shared by its workers
    turnstile, gate = shared / "serial.turnstile.lock", shared / "serial.gate.lock"
    if request.node.get_closest_marker("serial") is not None:
        with _flock(turnstile, fcntl.LOCK_EX), _flock(gate, fcntl.LOCK_EX):
            yield
        return
    with _flock(turnstile, fcntl.LOCK_EX):
        fh = open(gate, "a+b")
        fcntl.flock(fh, fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
