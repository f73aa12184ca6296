"""``bandwidth``: the link passes at most ``rate`` KB/s (1 KB = 1000 bytes; 0 = unlimited)."""
from __future__ import annotations

from typing import Any

from .base import Chunk, ToxicKind, register


@register
class Bandwidth(ToxicKind):
    name = "bandwidth"
    defaults = {"rate": 0}  # KB/s

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        rate = st.spec.attributes["rate"]
        if rate > 0:
            st.acted(link, sum(len(p) for p, _ in chunk.pieces))
            chunk.rate = rate
            # Pieces of at most 100 ms worth of data, as Toxiproxy, so pacing is smooth.
            step = max(1, rate * 100)
            chunk.pieces = [(p[i:i + step], pause if i == 0 else 0.0)
                            for p, pause in chunk.pieces for i in range(0, len(p), step)]
        return True
