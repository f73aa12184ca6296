"""Run okx_demo_api as a real subprocess and observe it (used by its tests and its benchmark).

Only the public interface is used: env vars, /api/v1/status, /healthz, control/data-dir files,
signals. Every process started here is killed by ``stop()`` / ``kill()`` / the context manager.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TargetProcess:
    """One okx_demo_api subprocess wired to a venue (URLs given explicitly)."""

    def __init__(self, rest_url: str, ws_public_url: str, ws_private_url: str, workdir: Path,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.control_dir = self.workdir / "control"
        self.data_dir = self.workdir / "data"
        self.port = port or free_port()
        self.env = dict(os.environ)
        self.env.update({
            "OKX_REST_URL": rest_url, "OKX_WS_PUBLIC_URL": ws_public_url, "OKX_WS_PRIVATE_URL": ws_private_url,
            "TARGET_PORT": str(self.port), "TARGET_CONTROL_DIR": str(self.control_dir),
            "TARGET_DATA_DIR": str(self.data_dir),
        })
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.status_url = f"http://127.0.0.1:{self.port}/api/v1/status"
        self.health_url = f"http://127.0.0.1:{self.port}/healthz"
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- process ----------------------------------------------------------------------------------
    def start(self, wait_healthy: float = 15.0) -> "TargetProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self.workdir / f"stderr.{int(time.time() * 1000)}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "okx_demo_api"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.wait_for(self._healthy, wait_healthy, "healthz")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"target exited with {self.proc.returncode} during start-up")
        try:
            with self._opener.open(self.health_url, timeout=0.5) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> int | None:
        """SIGKILL (a crash); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful SIGTERM, then SIGKILL if it does not exit in ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_stderr", None):
            self._stderr.close()
        return self.proc.returncode

    def __enter__(self) -> "TargetProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation ------------------------------------------------------------------------------
    def status(self, timeout: float = 1.0) -> dict:
        with self._opener.open(self.status_url, timeout=timeout) as r:
            return json.loads(r.read())

    def wait_for(self, pred: Callable[[], Any], timeout: float, what: str = "condition",
                 period: float = 0.01) -> Any:
        """Poll ``pred`` until truthy (returned) or raise TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            val = pred()
            if val:
                return val
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} not reached within {timeout}s")
            time.sleep(period)

    def wait_status(self, pred: Callable[[dict], bool], timeout: float, what: str = "status",
                    samples: list | None = None) -> dict:
        """Sample /status every 10 ms until ``pred(status)``; every sample is appended to ``samples``."""
        def check() -> dict | None:
            try:
                st = self.status()
            except (OSError, urllib.error.URLError, ValueError):
                return None
            st["_mono"] = time.monotonic()
            if samples is not None:
                samples.append(st)
            return st if pred(st) else None
        return self.wait_for(check, timeout, what)

    def read_json(self, name: str) -> dict:
        return json.loads((self.data_dir / name).read_text())

    def wait_file(self, name: str, pred: Callable[[dict], bool], timeout: float, what: str = "file") -> dict:
        """Poll a data-dir JSON file (rewritten atomically by the target) until ``pred(doc)``."""
        def check() -> dict | None:
            doc = self.read_json(name)
            return doc if pred(doc) else None
        return self.wait_for(check, timeout, what)

    def hooks_log(self) -> list[dict]:
        p = self.control_dir / "hooks.log"
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []

    def log_events(self, event: str | None = None) -> list[dict]:
        p = self.data_dir / "target.log"
        out = []
        for line in p.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if event is None or rec.get("event") == event:
                out.append(rec)
        return out

    def touch_control(self, name: str, content: str = "") -> float:
        """Create a control file atomically; returns time.monotonic() right after it appears."""
        self.control_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.control_dir / f".{name}.tmp"
        tmp.write_text(content)
        os.replace(tmp, self.control_dir / name)
        return time.monotonic()


def open_blocked(st: dict) -> bool:
    """An OPEN cannot leave the process in this status (ReduceOnly or Kill)."""
    return st.get("trading_mode") in ("ReduceOnly", "Kill")


def active(st: dict) -> bool:
    return st.get("trading_mode") == "Active"


def for_venue(venue: Any, workdir: Path, **env: str) -> TargetProcess:
    """A TargetProcess wired to a ``VenueServer`` (not started)."""
    return TargetProcess(venue.rest_url, venue.ws_public_url, venue.ws_private_url, workdir, env=env)


def last_before(samples: list[dict], mono: float) -> float:
    """``_mono`` of the last sample taken before ``mono``."""
    return max(s["_mono"] for s in samples if s["_mono"] < mono)


def opens_between(venue: Any, since: float, until: float) -> list[dict]:
    """OPEN attempts the venue's witness ledger recorded in (since, until) (monotonic clock)."""
    return venue.control.witness().opens(since, until)
