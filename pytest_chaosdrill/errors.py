"""The plugin's exception types, in one place (each is also importable from the module that raises it).

Verdict-bearing types: :class:`DrillFailed` (FAIL), :class:`DrillNotProven` (NOT PROVEN, fails closed),
:class:`DrillTimeout` (TIMEOUT). Bad input: :class:`TargetConfigError`, :class:`DrillDefinitionError`,
:class:`ExpectationError` (each message names the file and the field). Safety:
:class:`LiveEnvironmentRefused`, :class:`SamplerRefused`. Harness: :class:`StartupFailed`,
:class:`FaultNotLanded`, :class:`BackendUnavailable`, :class:`CannotOnThisBackend`, :class:`DockerError`.
The venue's and the proxy's own errors stay in their packages (they are leaves).
"""
from __future__ import annotations

import shlex
from typing import Sequence


class TargetConfigError(Exception):
    """A target file that cannot be used."""


class DrillDefinitionError(Exception):
    """A drill file that cannot be used; the message names the file and the field."""


class ExpectationError(Exception):
    """An expected-status definition that cannot be used (missing fixture, bad rule)."""


class LiveEnvironmentRefused(Exception):
    """The drill would touch a live (real-money) environment."""


class SamplerRefused(ValueError):
    """The status URL is not one the sampler may talk to (not loopback nor an allowed drill host)."""


class StartupFailed(Exception):
    """The target did not come up (exited, or its status never answered); the drill is NOT PROVEN."""


class FaultNotLanded(Exception):
    """The fault was requested but nothing shows it took effect: the drill is NOT PROVEN."""


class DrillNotProven(AssertionError):
    """The drill could not prove its precondition, steady state or fault; it fails closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"NOT PROVEN: {reason}")
        self.reason = reason


class DrillFailed(AssertionError):
    """At least one pass criterion failed."""


class DrillTimeout(BaseException):
    """The drill's own deadline passed (raised into the runner by the deadline's timer).

    A ``BaseException`` so no ``except Exception`` in a trigger or check swallows it."""


class DrillInterrupted(KeyboardInterrupt):
    """SIGTERM reached pytest during a drill: handled like Ctrl-C (pytest stops after the teardowns)."""


class DrillHalted(DrillInterrupted):
    """``chaosdrill halt`` (the halt file, :mod:`pytest_chaosdrill.halt`) stopped the drill: INTERRUPTED
    with a reason starting ``HALTED``."""


class BackendUnavailable(Exception):
    """The backend cannot run here (no engine, image missing); drills on it are skipped with this reason."""


class CannotOnThisBackend(Exception):
    """A target operation the backend does not have (a drill should have been skipped at collection)."""


class DockerError(RuntimeError):
    """A docker command failed or timed out; carries the command line and its stderr."""

    def __init__(self, args: Sequence[str], returncode: int | None, stderr: str, message: str = "") -> None:
        self.cmd = list(args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        what = message or (f"exit {returncode}" if returncode is not None else "timed out")
        super().__init__(f"`{shlex.join(self.cmd)}` failed ({what}): {self.stderr[-2000:]}")
