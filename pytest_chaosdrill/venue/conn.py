"""One venue WebSocket connection and its ordered, delay-aware outbound queue."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from .faults import Stamp, stamp

Callback = Callable[[Stamp], None]  # called after a write, with the instant the write began

CLOSE_GOING_AWAY = 1001


def dumps(obj: Any) -> str:
    """Compact JSON, as exchanges send it."""
    return json.dumps(obj, separators=(",", ":"))


@dataclass
class _Out:
    text: str | None
    due: float                         # time.monotonic() at which it may be written
    on_sent: list[Callback] = field(default_factory=list)
    close_code: int | None = None      # close the socket instead of writing text
    close_reason: str = ""


class Conn:
    """One WebSocket connection with an ordered outbound queue served by its own sender task.

    The queue is what makes lag physical (each message waits until its due time, order kept) and
    lets a fault land exactly when its message is written.
    """

    def __init__(self, conn_id: str, kind: str, ws: web.WebSocketResponse) -> None:
        self.id = conn_id
        self.kind = kind                                # "public" | "private"
        self.ws = ws
        self.subs: set[tuple[str, str]] = set()         # public: (channel, instId)
        self.needs_snapshot: set[str] = set()           # public: books subscriptions still owed a snapshot
        self.logged_in = False                          # private
        self.api_key: str | None = None                 # private: the key the session logged in with
        self.private_subs: dict[str, dict[str, Any]] = {}  # private: channel -> its subscription arg
        self._queue: asyncio.Queue[_Out] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._sender(), name=f"venue-sender-{conn_id}")
        self.closing = False
        self.close_code_sent: int | None = None  # set when the venue closed the socket

    def send(self, obj: Any, delay_ms: int = 0, on_sent: list[Callback] | None = None) -> None:
        """Queue a message (JSON object or raw text) to be written after ``delay_ms``."""
        if self.closing:
            return
        text = obj if isinstance(obj, str) else dumps(obj)
        self._queue.put_nowait(_Out(text, time.monotonic() + delay_ms / 1000, on_sent or []))

    def close_after_queue(self, code: int, reason: str = "", on_sent: list[Callback] | None = None) -> None:
        """Close the socket with ``code`` (and ``reason``) once everything queued before has been written."""
        if self.closing:
            return
        self.closing = True
        self._queue.put_nowait(_Out(None, time.monotonic(), on_sent or [], close_code=code, close_reason=reason))

    async def _sender(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                wait = item.due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                began = stamp()
                if item.close_code is not None:
                    self.close_code_sent = item.close_code
                    await self.ws.close(code=item.close_code, message=item.close_reason.encode())
                else:
                    if self.ws.closed:
                        return
                    await self.ws.send_str(item.text or "")
                for cb in item.on_sent:
                    cb(began)
                if item.close_code is not None:
                    return
        except (ConnectionError, RuntimeError):
            return  # peer went away mid-write; the handler notices and cleans up
