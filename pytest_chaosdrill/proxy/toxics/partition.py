"""``partition`` (not in Toxiproxy): a network partition with requests in flight. From the first
chunk containing ``match`` ("" = at once) new connections are refused and held bytes stay held for
``cut`` ms; what was held is delivered ``deliver_after`` ms after the cut ends (see docs/proxy.md)."""
from __future__ import annotations

import time
from typing import Any

from .base import Chunk, ToxicKind, register


@register
class Partition(ToxicKind):
    name = "partition"
    defaults = {"cut": 3000, "deliver_after": 1500}  # ms, ms
    strings = {"match": ""}  # the cut starts on the first chunk containing these bytes ("" = at once)

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        await self._hold(link, st, chunk.data)
        return True

    async def on_eof(self, link: Any, st: Any) -> None:
        await self._hold(link, st, None)

    @staticmethod
    async def _hold(link: Any, st: Any, data: bytes | None) -> None:
        """Hold this chunk (None: the EOF) if the partition cuts now, or if this link already holds
        bytes of the cut (order is kept); deliver it ``deliver_after`` after the cut ends."""
        now = time.monotonic()
        if st.cut_start is None:
            match = st.spec.attributes["match"].encode("latin-1")
            if data is None or match not in data:
                return  # armed: traffic passes until the first chunk that matches
            st.start_cut(now, data)
        if not (st.cut_active(now) or link in st.holding):
            return
        x = st.counters.extra
        if link not in st.holding:
            st.holding.add(link)
            x["connections_held"] += 1
        if data is not None:
            st.acted(link, len(data))
            x["chunks_held"] += 1
            x["bytes_held"] += len(data)
        while link.still(st) and time.monotonic() < st.release_at():
            await link.wait_change(st, None if st.release_at() == float("inf") else st.release_at() - time.monotonic())
        cut_end = x["cut_ends_mono"]
        if data is not None and cut_end is not None and time.monotonic() >= cut_end:
            x["chunks_delivered_late"] += 1
            x["bytes_delivered_late"] += len(data)
            x["released_mono"] = time.monotonic()
