"""``slow_close``: the close that follows the source's EOF is delayed ``delay`` ms."""
from __future__ import annotations

import time
from typing import Any

from .base import ToxicKind, register


@register
class SlowClose(ToxicKind):
    name = "slow_close"
    defaults = {"delay": 0}  # ms

    async def on_eof(self, link: Any, st: Any) -> None:
        if st.spec.attributes["delay"] <= 0:
            return
        st.acted(link, 0)
        start = time.monotonic()
        while link.still(st):
            if not await link.wait_change(st, st.spec.attributes["delay"] / 1000.0 - (time.monotonic() - start)):
                break
