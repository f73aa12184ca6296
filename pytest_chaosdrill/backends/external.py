"""The ``external`` backend: a service that is already running, wired to the drill's venue by the user.

The plugin cannot start, signal or restart it, so drills whose trigger manages the process
(crash + restart, STOP) end NOT PROVEN on this backend instead of pretending.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..target import RenderedTarget


class ExternalTarget:
    backend = "external"

    def __init__(self, target: RenderedTarget, log_dir: Path) -> None:
        self.target = target
        self.log_dir = log_dir

    def start(self) -> None:
        """Nothing to start: the drill only waits for the status endpoint."""

    def running(self) -> bool:
        return True

    def returncode(self) -> int | None:
        return None

    def _cannot(self, what: str) -> Any:
        from ..faults import FaultNotLanded

        raise FaultNotLanded(f"the external backend cannot {what}: the plugin does not own the process")

    def kill(self) -> dict[str, Any]:
        return self._cannot("kill the target")

    def wait_exit(self, timeout: float) -> int | None:
        return self._cannot("observe the target's exit")

    def stop(self, timeout: float = 10.0) -> int | None:
        return None  # not ours to stop

    def logs(self) -> list[Path]:
        return [Path(p) for k, p in self.target.files.items() if k.startswith("log") and Path(p).is_file()]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "status_url": self.target.status_url}
