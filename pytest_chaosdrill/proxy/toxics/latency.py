"""``latency``: every chunk is delayed ``latency`` ms, +/- a uniform ``jitter`` (Toxiproxy's)."""
from __future__ import annotations

import random
import time
from typing import Any, Mapping

from .base import Chunk, ToxicKind, register


def latency_delay_s(attributes: Mapping[str, int], rng: random.Random) -> float:
    """Delay for one chunk: ``latency`` +/- uniform ``jitter`` (never negative), in seconds."""
    delay_ms = attributes["latency"]
    jitter = attributes["jitter"]
    if jitter:
        delay_ms += rng.uniform(-jitter, jitter)
    return max(0.0, delay_ms / 1000.0)


@register
class Latency(ToxicKind):
    name = "latency"
    defaults = {"latency": 0, "jitter": 0}  # ms

    async def on_data(self, link: Any, st: Any, chunk: Chunk) -> bool:
        delay = latency_delay_s(st.spec.attributes, link.rng)
        if delay > 0:
            st.acted(link, len(chunk.data))
        while link.still(st):
            if not await link.wait_change(st, chunk.arrived_mono + delay - time.monotonic()):
                break
            if link.still(st):  # updated: the new latency applies to this chunk too
                delay = latency_delay_s(st.spec.attributes, link.rng)
        return True
