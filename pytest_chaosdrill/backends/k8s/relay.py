"""A loopback TCP relay to whichever pod currently serves: the sampler's fixed ``status_url`` while
pods come and go (a deleted or rescheduled pod gets a new IP). No kube-proxy, DNS or port-forward:
the host routes to pod IPs directly."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Callable

Upstream = Callable[[], "tuple[str, int] | None"]


class PodRelay:
    """Listens on ``127.0.0.1:<port>``; each accepted connection goes to ``upstream()`` at that
    moment (refused while no pod serves, as a stopped service would). :meth:`follow` closes relayed
    connections to any other pod, as a Service drops a pod that left its endpoints: a pod deleted from
    the API but still running (its node lost) must not keep answering the sampler's keep-alive connection."""

    def __init__(self, upstream: Upstream, host: str = "127.0.0.1") -> None:
        self._upstream = upstream
        self._host = host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaosdrill-k8s-relay", daemon=True)
        self._open: dict[asyncio.StreamWriter, tuple[tuple[str, int], asyncio.StreamWriter]] = {}

    def start(self) -> "PodRelay":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self._host, 0), self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self._upstream()
        if target is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 2)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.close()

        self._open[writer] = (target, up_writer)
        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._open.pop(writer, None)

    def follow(self, target: "tuple[str, int] | None") -> None:
        """Close every relayed connection whose pod is not ``target`` (thread-safe)."""
        def drop() -> None:
            for writer, (upstream, up_writer) in list(self._open.items()):
                if upstream != target:
                    for w in (writer, up_writer):
                        with contextlib.suppress(OSError, RuntimeError):
                            w.transport.abort()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(drop)

    def stop(self) -> None:
        """Close the listener and stop the loop thread. Idempotent."""
        if not self._thread.is_alive():
            return
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        with contextlib.suppress(RuntimeError):
            self._loop.close()
