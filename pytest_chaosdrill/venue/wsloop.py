"""The venue's WebSocket socket loop for ``/ws/v5/public`` and ``/ws/v5/private``: frames in, ``ping``
answered, JSON requests handed to the core (which owns the state); the protocol's messages and codes are
:mod:`.ws`. Apart from :mod:`.ws` so that the core can render protocol messages without importing the
loop that calls it."""
from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType, web

from . import ws as ws_protocol
from .rest import core_of


async def _serve_ws(request: web.Request, kind: str) -> web.WebSocketResponse:
    core = core_of(request)
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
            quoted = msg.data if kind == "public" else None
            try:
                parsed = json.loads(msg.data)
            except ValueError:
                conn.send(ws_protocol.invalid_request(quoted, conn.id))
                continue
            if not isinstance(parsed, dict):
                conn.send(ws_protocol.invalid_request(quoted, conn.id))
                continue
            (core.public_op if kind == "public" else core.private_op)(conn, parsed, msg.data)
    finally:
        if conn.closing and not conn.task.done():
            # A venue-initiated close (session termination, refused login) is in flight on the
            # sender task: let it finish so its fault lands before the connection is forgotten.
            await asyncio.wait([conn.task], timeout=3.0)
        core.drop_conn(conn)
    return ws


async def ws_public(request: web.Request) -> web.WebSocketResponse:
    """The public WebSocket (books, books5, bbo-tbt, tickers, trades)."""
    return await _serve_ws(request, "public")


async def ws_private(request: web.Request) -> web.WebSocketResponse:
    """The private WebSocket (login, orders / positions / account / balance_and_position, trading ops)."""
    return await _serve_ws(request, "private")
