"""The venue's WebSocket endpoints (``/ws/v5/public``, ``/ws/v5/private``): the socket loop that reads
client frames and hands them to the core; routing stays in :mod:`.server`."""
from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType, web

from .core import CORE_KEY, VenueCore


def _core(request: web.Request) -> VenueCore:
    return request.app[CORE_KEY]


async def _serve_ws(request: web.Request, kind: str) -> web.WebSocketResponse:
    core = _core(request)
    ws = web.WebSocketResponse(timeout=2.0, compress=False)
    await ws.prepare(request)
    conn = core.open_conn(kind, ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if msg.data == "ping":
                # pong goes through the same queue as data: it is lagged (order kept) but never frozen
                if kind == "public":
                    core.send_public(conn, "pong")
                else:
                    conn.send("pong")
                continue
            try:
                parsed = json.loads(msg.data)
            except ValueError:
                conn.send({"event": "error", "code": "60012", "msg": f"Invalid request: {msg.data[:200]}"})
                continue
            (core.public_op if kind == "public" else core.private_op)(conn, parsed)
    finally:
        if conn.closing and not conn.task.done():
            # A venue-initiated close (session termination, refused login) is in flight on the
            # sender task: let it finish so its fault lands before the connection is forgotten.
            await asyncio.wait([conn.task], timeout=3.0)
        core.drop_conn(conn)
    return ws


async def ws_public(request: web.Request) -> web.WebSocketResponse:
    """The public WebSocket (books, trades)."""
    return await _serve_ws(request, "public")


async def ws_private(request: web.Request) -> web.WebSocketResponse:
    """The private WebSocket (login, orders)."""
    return await _serve_ws(request, "private")


