"""Importing the docker engine layer registers nothing: its ``atexit`` teardown is registered when the
first engine is made, once (no docker engine needed); the checkout's compose file is found from the
module's own folder."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit
seen = []
real = atexit.register
def spy(fn, *a, **k):
    seen.append(getattr(fn, "__qualname__", repr(fn)))
    return real(fn, *a, **k)
atexit.register = spy
from pytest_chaosdrill.backends import docker_engine as de
print(seen.count("_teardown_all"))
de.DockerEngine("importtest", docker="/bin/false", handle_signals=False)
de.DockerEngine("importtest2", docker="/bin/false", handle_signals=False)
print(seen.count("_teardown_all"))
"""


def test_atexit_registered_with_the_first_engine_not_at_import() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1"]


def test_the_compose_file_of_the_checkout_is_found() -> None:
    from pathlib import Path

    from pytest_chaosdrill.backends.docker_engine import default_compose_file

    root = Path(__file__).resolve().parents[3]
    assert default_compose_file() == root / "docker" / "docker-compose.yml"
