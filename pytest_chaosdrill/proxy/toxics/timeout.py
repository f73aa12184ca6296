"""``timeout``: nothing passes while the toxic applies; with ``timeout`` > 0 (ms) the connection is
closed that long after the toxic starts on it (0: held until the toxic is removed)."""
from __future__ import annotations

import asyncio
from typing import Any

from .base import Chunk, ToxicKind, register


@register
class Timeout(ToxicKind):
    name = "timeout"
    defaults = {"timeout": 0}  # ms

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        st.acted(link, len(chunk.data))
        await self._hold(link, st)
        return True

    async def on_eof(self, link: Any, st: Any) -> None:
        await self._hold(link, st)

    def on_start(self, link: Any, st: Any) -> None:
        if st.spec.attributes["timeout"] > 0:
            link.timers[st.spec.name] = asyncio.get_running_loop().create_task(self._close_later(link, st))

    @staticmethod
    async def _hold(link: Any, st: Any) -> None:
        while link.still(st) and st.spec.type == "timeout":
            await st.changed.wait()

    @staticmethod
    async def _close_later(link: Any, st: Any) -> None:
        # Toxiproxy's timeout clock starts when the toxic starts on the link, not with data.
        await asyncio.sleep(st.spec.attributes["timeout"] / 1000.0)
        if link.still(st):
            st.acted(link, 0)
            link.conn.close(reason=f"timeout toxic {st.spec.name!r}")
