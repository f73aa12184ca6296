"""What a drill acts on and observes: the target, its venue and fault proxy, the status timeline.

Triggers receive a :class:`DrillContext`; the runner builds one per drill from the backend's
:class:`~pytest_chaosdrill.backends.base.Harness` and :class:`~pytest_chaosdrill.backends.base.Target`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .target import RenderedTarget
from .timeline import StatusSampler, Timeline, fetch_status, wait_until
from .errors import StartupFailed


@dataclass
class DrillContext:
    """Everything a drill acts on and observes."""

    target: Any                 # a backends.base.Target
    rendered: RenderedTarget    # the target file as the host sees it (status URL, files)
    venue: Any                  # VenueControl / VenueClient
    proxy: Any                  # ProxyLink (the target↔venue link)
    timeline: Timeline
    sample_interval_s: float = 0.005
    local_hosts: tuple[str, ...] = ()
    sampler: StatusSampler | None = None
    #: the harness's own addresses (``Harness.info``: ``venue`` URL, ``proxy`` host:port), probed at the
    #: end of a drill so a venue or proxy that died is a harness ERROR, never the target's FAIL
    harness_info: dict[str, Any] = field(default_factory=dict)

    def expect_downtime(self, down: bool) -> None:
        """Mark planned downtime (crash, restart, STOP, pause): status errors inside it are expected, and
        the sampler gives up on a hanging request quickly so the first answer after a restart is not missed."""
        self.timeline.mark("target_down" if down else "target_up")
        if self.sampler is not None:
            self.sampler.timeout_s = 0.3 if down else self.sampler.default_timeout_s

    def status_once(self, timeout: float = 1.0) -> Any:
        """One strict read of the status (no redirects, bounded body, duplicate keys and NaN refused);
        raises ValueError with the reason when the answer is refused."""
        with StatusSampler.new_session() as session:  # as the sampler: no environment proxy, no compression
            _, _, payload, error = fetch_status(session, self.rendered.status_url, timeout=timeout)
        if error is not None:
            raise ValueError(error)
        return payload

    def wait_target_serving(self, timeout: float | None = None) -> Any:
        """Wait until the status endpoint answers a JSON object; returns it."""
        timeout = timeout or self.rendered.config.startup_timeout_s
        last: list[str] = []  # why the last probe failed: a hostile answer must be named, not just timed out

        def probe() -> Any:
            if not self.target.running():
                raise StartupFailed(f"target exited during start-up (exit status {self.target.returncode()})")
            try:
                st = self.status_once()
            except ValueError as exc:
                last[:] = [str(exc)[:500]]
                return None
            return st if isinstance(st, dict) else None

        status = wait_until(probe, timeout, pause=0.05)
        if status is None:
            raise StartupFailed(f"target status {self.rendered.status_url} did not answer a JSON object "
                                f"within {timeout}s" + (f"; the last answer was refused: {last[0]}" if last else ""))
        return status

    def read_json_file(self, name: str) -> Any:
        """A JSON file the target file declares (``files.<name>``); None when absent."""
        path = self.rendered.files.get(name)
        if not path or not Path(path).exists():
            return None
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return {"_unreadable": f"{type(exc).__name__}: {exc}"}
