"""``slicer``: data is cut into pieces of ``average_size`` +/- ``size_variation`` bytes, ``delay`` µs apart."""
from __future__ import annotations

import random
from typing import Any, Mapping

from .base import Chunk, ToxicKind, register


def slice_sizes(total: int, attributes: Mapping[str, int], rng: random.Random) -> list[int]:
    """Split ``total`` bytes into slicer packet sizes: ``average_size`` +/- ``size_variation``."""
    avg = attributes["average_size"]
    if avg <= 0 or total <= 0:
        return [total] if total else []
    var = min(attributes["size_variation"], avg - 1)  # a slice is at least 1 byte
    sizes: list[int] = []
    left = total
    while left > 0:
        size = avg + (rng.randint(-var, var) if var else 0)
        size = min(max(1, size), left)
        sizes.append(size)
        left -= size
    return sizes


@register
class Slicer(ToxicKind):
    name = "slicer"
    defaults = {"average_size": 0, "size_variation": 0, "delay": 0}  # bytes, bytes, µs

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        attrs = st.spec.attributes
        if attrs["average_size"] > 0:
            st.acted(link, sum(len(p) for p, _ in chunk.pieces))
            sliced: list[tuple[bytes, float]] = []
            for piece, pause in chunk.pieces:
                offset = 0
                for i, size in enumerate(slice_sizes(len(piece), attrs, link.rng)):
                    sliced.append((piece[offset:offset + size], pause if i == 0 else attrs["delay"] / 1e6))
                    offset += size
            chunk.pieces = sliced
        return True
