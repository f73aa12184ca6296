"""``limit_data``: the connection is closed once ``bytes`` bytes have passed."""
from __future__ import annotations

from typing import Any

from .base import Chunk, ToxicKind, register


@register
class LimitData(ToxicKind):
    name = "limit_data"
    defaults = {"bytes": 0}  # bytes passed before the connection is closed

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        limit = st.spec.attributes["bytes"]
        passed = link.limit_passed.get(st.counters, 0)
        left = max(0, limit - passed)
        kept: list[tuple[bytes, float]] = []
        for piece, pause in chunk.pieces:
            if left <= 0:
                break
            kept.append((piece[:left], pause))
            left -= len(kept[-1][0])
        total_in = sum(len(p) for p, _ in chunk.pieces)
        total_kept = sum(len(p) for p, _ in kept)
        link.limit_passed[st.counters] = passed + total_kept
        chunk.pieces = kept
        if passed + total_kept >= limit:
            st.acted(link, total_in - total_kept)
            link.count_dropped(total_in - total_kept)
            chunk.close_after = st
            return False
        return True
