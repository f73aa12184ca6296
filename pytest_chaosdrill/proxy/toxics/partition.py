"""``partition`` (not in Toxiproxy): a network partition with requests in flight. From the first
chunk containing ``match``, or completing an HTTP request that ``match_method``/``match_path``/
``match_json`` describe ("" everywhere = at once), new connections are refused and held bytes stay
held for ``cut`` ms; what was held is delivered ``deliver_after`` ms after the cut ends (see
docs/proxy.md)."""
from __future__ import annotations

import time
from typing import Any

from ..http_match import HttpMatchError, RequestMatch, RequestReader
from .base import Chunk, ToxicKind, register


@register
class Partition(ToxicKind):
    name = "partition"
    defaults = {"cut": 3000, "deliver_after": 1500}  # ms, ms
    # the cut starts on the first chunk containing ``match``'s bytes, or completing a request that the
    # ``match_*`` attributes describe (all "" = at once)
    strings = {"match": "", "match_method": "", "match_path": "", "match_json": ""}

    @classmethod
    def check(cls, attributes: dict[str, Any]) -> None:
        """Refuse an invalid request match, and bytes and request matching at once."""
        try:
            request = RequestMatch.from_attributes(attributes["match_method"], attributes["match_path"],
                                                   attributes["match_json"])
        except HttpMatchError as e:
            raise ValueError(str(e)) from None
        if request is not None and attributes["match"]:
            raise ValueError("give either match (bytes) or match_method/match_path/match_json (an HTTP request)")

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
            if data is None or not Partition._matches(link, st, data):
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

    @staticmethod
    def _matches(link: Any, st: Any, data: bytes) -> bool:
        """Does this chunk contain ``match``'s bytes, or complete a request the ``match_*`` describe?"""
        a = st.spec.attributes
        request = RequestMatch.from_attributes(a["match_method"], a["match_path"], a["match_json"])
        if request is None:
            return a["match"].encode("latin-1") in data
        reader = st.readers.get(link)
        if reader is None:
            reader = st.readers[link] = RequestReader()
        matched = next((r for r in reader.feed(data) if request.matches(r)), None)
        if matched is not None:
            st.counters.extra["matched_request"] = f"{matched.method} {matched.path}"
        return matched is not None
