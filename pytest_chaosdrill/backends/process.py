"""The ``process`` backend: the target runs as a child process of pytest, on loopback, with the
venue simulator and the fault proxy in this pytest process."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

from ..target import RenderedTarget, TargetConfig
from . import procguard
from .base import EXIT, KILL, PAUSE, START, Backend, CannotOnThisBackend, DrillSite, Harness
from .local import free_port, local_harness, render_local


class ProcessBackend(Backend):
    """Runs the target file's ``command`` as a child process (its own process group), in the target
    file's folder. Faults: SIGKILL + restart, SIGSTOP/SIGCONT, exit observation; no network cut
    (the fault proxy's toxics cut the link instead)."""

    name = "process"
    capabilities = frozenset({START, KILL, PAUSE, EXIT})

    def check_available(self) -> None:
        # Targets a killed pytest left running (its pid records, start times checked) go first.
        self.reaped = procguard.reap()

    @contextlib.contextmanager
    def harness(self, site: DrillSite, config: TargetConfig) -> Iterator[Harness]:
        tls = self.session_ca().files() if config.tls else None
        with local_harness(seed=self.settings.venue_seed, api_key=config.drill_key(), tls=tls) as h:
            yield h

    def create_target(self, config: TargetConfig, site: DrillSite, harness: Harness) -> "ProcessTarget":
        return ProcessTarget(render_local(config, site, harness, free_port()), site.log_dir)


class ProcessTarget:
    """Starts, signals and restarts one target process; every start gets its own log files.

    The process gets its own session (process group), so teardown kills everything it spawned.
    """

    backend = "process"
    shares_host_clock = True   # a child process of this machine

    def __init__(self, target: RenderedTarget, log_dir: Path) -> None:
        self.target = target
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exits: list[dict[str, Any]] = []
        self._logs: list[Path] = []
        self._guards: list[tuple[int, procguard.GroupWatchdog | None]] = []  # (pid, watchdog) per start

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = self.log_dir / f"target.start{self.starts}.log"
        self._logs.append(out)
        env = dict(os.environ)
        env.update(self.target.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(out, "wb") as fh:
            try:
                self.proc = subprocess.Popen(self.target.command, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             cwd=self.target.config.folder,
                                             preexec_fn=procguard.preexec_with_pdeathsig())
            except OSError as exc:
                raise RuntimeError(f"cannot start target {self.target.config.name!r} with "
                                   f"{self.target.command[0]!r}: {exc.strerror or exc}") from None
        self._guards.append((self.proc.pid, procguard.guard_target(self.proc.pid, self.target.command,
                                                                   run_id=str(self.log_dir))))

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> dict[str, Any]:
        """Send ``sig`` to the target process; returns what was sent to whom."""
        if not self.running():
            raise RuntimeError("target process is not running")
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        return {"pid": self.proc.pid, "signal": signal.Signals(sig).name, "sent_mono": time.monotonic()}

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the process to exit; its return code (negative = killed by that signal), or None."""
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._record_exit(code)
        return code

    def _record_exit(self, code: int) -> None:
        if not self.exits or self.exits[-1].get("start") != self.starts:
            self.exits.append({"start": self.starts, "pid": self.proc.pid if self.proc else None,
                               "returncode": code, "mono": time.monotonic()})

    def kill(self) -> dict[str, Any]:
        """SIGKILL the target and wait; the proof is the exit status the kernel reports."""
        sent = self.signal(signal.SIGKILL)
        code = self.wait_exit(10)
        return {**sent, "returncode": code, "killed_by_sigkill": code == -signal.SIGKILL}

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop gracefully (SIGTERM), then SIGKILL the whole process group if needed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self._proc_state() == "T":
                os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            code = self.wait_exit(timeout)
            if code is not None:
                self._kill_group()
                self._unguard()
                return code
        self._kill_group()
        code = self.proc.wait(timeout=10)
        self._record_exit(code)
        self._unguard()
        return code

    def _unguard(self) -> None:
        """The group is stopped: stand the watchdogs down and drop the pid records."""
        for pid, dog in self._guards:
            procguard.unguard_target(pid, dog)
        self._guards.clear()

    def _kill_group(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _proc_state(self) -> str:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except (OSError, TypeError):
            return "?"
        return stat.rsplit(") ", 1)[1].split()[0]

    def pause(self) -> dict[str, Any]:
        """SIGSTOP the target; proof: the kernel reports the process stopped (state ``T``)."""
        sent = self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while self._proc_state() != "T" and time.monotonic() < deadline:
            time.sleep(0.005)
        state = self._proc_state()
        return {**sent, "proc_state": state, "proven": state == "T", "mono": time.monotonic()}

    def resume(self) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            return {"resumed": False}
        os.kill(self.proc.pid, signal.SIGCONT)
        return {"pid": self.proc.pid, "signal": "SIGCONT", "proc_state": self._proc_state()}

    def network_disconnect(self) -> dict[str, Any]:
        raise CannotOnThisBackend("the process backend cannot cut the network; use a proxy toxic")

    network_connect = network_disconnect

    def logs(self) -> list[Path]:
        return [p for p in self._logs if p.exists()]

    def close(self) -> None:
        self.stop(self.target.config.stop_timeout_s)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "command": self.target.command, "pid": self.pid, "starts": self.starts,
                "exits": self.exits}
