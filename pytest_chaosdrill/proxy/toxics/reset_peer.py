"""``reset_peer``: the connection is reset (TCP RST) ``timeout`` ms after the first data (or EOF)."""
from __future__ import annotations

import time
from typing import Any

from .base import Chunk, LinkClosed, ToxicKind, register


@register
class ResetPeer(ToxicKind):
    name = "reset_peer"
    defaults = {"timeout": 0}  # ms after the first data before the RST

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        await self._reset_after(link, st, len(chunk.data))
        return True

    async def on_eof(self, link: Any, st: Any) -> None:
        await self._reset_after(link, st, 0)  # Toxiproxy resets on EOF as on data

    @staticmethod
    async def _reset_after(link: Any, st: Any, nbytes: int) -> None:
        st.acted(link, nbytes)
        start = time.monotonic()
        while link.still(st):
            left = st.spec.attributes["timeout"] / 1000.0 - (time.monotonic() - start)
            if not await link.wait_change(st, left):
                link.conn.close(reset=True, reason=f"reset_peer toxic {st.spec.name!r}")
                raise LinkClosed()
