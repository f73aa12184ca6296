"""The ``external`` backend: a service that is already running, wired to the drill's venue by the user.

The plugin cannot start, signal or restart it: it has no capabilities, so drills whose fault or
recovery needs one (crash + restart, pause, STOP, network cut) are skipped at collection. The venue
and the proxy run in this pytest process on the target file's fixed ``external`` ports (under
pytest-xdist, each worker adds its worker number to every port so workers never collide).
"""
from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Any, Iterator

from ..errors import TargetConfigError
from ..target import RenderedTarget, TargetConfig
from .base import Backend, CannotOnThisBackend, DrillSite, Harness
from .local import local_harness, render_local


class ExternalBackend(Backend):
    name = "external"
    capabilities = frozenset()

    def _port(self, config: TargetConfig, key: str) -> int:
        port = int(config.external.get(key, 0))
        return port + self.settings.worker_index if port else 0

    def _check_ports(self, config: TargetConfig) -> None:
        """A fixed port already in use is the user's to fix: one line naming the file and the field
        (not the bind error's traceback from inside the venue's event loop)."""
        for key in ("venue_port", "proxy_port", "proxy_tls_port"):
            port = self._port(config, key)
            if not port:
                continue
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the venue's own listener: TIME_WAIT is fine
                try:
                    s.bind(("127.0.0.1", port))
                except OSError as exc:
                    raise TargetConfigError(
                        f"{config.source or config.name}: field 'external.{key}': port {port} on 127.0.0.1 cannot "
                        f"be used ({exc.strerror or exc}); stop what holds it or choose another port") from None

    @contextlib.contextmanager
    def harness(self, site: DrillSite, config: TargetConfig) -> Iterator[Harness]:
        self._check_ports(config)
        with local_harness(seed=self.settings.venue_seed, venue_port=self._port(config, "venue_port"),
                           proxy_port=self._port(config, "proxy_port"), api_key=config.drill_key(),
                           tls=self.session_ca().files() if config.tls else None,
                           tls_port=self._port(config, "proxy_tls_port")) as h:
            yield h

    def create_target(self, config: TargetConfig, site: DrillSite, harness: Harness) -> "ExternalTarget":
        return ExternalTarget(render_local(config, site, harness, self._port(config, "status_port")), site.log_dir)


class ExternalTarget:
    backend = "external"
    shares_host_clock = False  # the service may run anywhere

    def __init__(self, target: RenderedTarget, log_dir: Path) -> None:
        self.target = target
        self.log_dir = log_dir

    def start(self) -> None:
        """Nothing to start: the drill only waits for the status endpoint."""

    def running(self) -> bool:
        return True

    def returncode(self) -> int | None:
        return None

    def _cannot(self, *_: Any) -> Any:
        raise CannotOnThisBackend("the external backend does not own the service's process")

    kill = pause = resume = network_disconnect = network_connect = wait_exit = _cannot

    def stop(self, timeout: float = 10.0) -> int | None:
        return None  # not ours to stop

    def logs(self) -> list[Path]:
        return [Path(p) for k, p in self.target.files.items() if k.startswith("log") and Path(p).is_file()]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "status_url": self.target.status_url}

    def close(self) -> None:
        """Not ours to stop."""
