"""HTTP/1.1 requests read off a proxied byte stream, and matching them by meaning.

A request-aware toxic (``partition``'s ``match_*`` attributes) must fire on "an order with
reduceOnly false", not on one byte spelling of it: JSON spacing, key order, chunked bodies,
keep-alive connections and client libraries all differ. :class:`RequestReader` parses the client
side of one connection with h11 (chunked and keep-alive included) and yields each complete request;
:class:`RequestMatch` says whether a request matches a method, a path pattern and JSON fields.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

import h11

# A request line at the start of a chunk: where a reader that lost its place may start again.
_REQUEST_START = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")
MAX_BODY = 1024 * 1024  # bodies larger than this are not buffered for matching (orders are small)


class HttpMatchError(ValueError):
    """A ``match_*`` attribute is invalid (its message names the attribute)."""


@dataclass(frozen=True)
class Request:
    """One complete HTTP request as the client sent it."""

    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class RequestReader:
    """Parses the client -> server bytes of one connection into requests (h11, as a server sees them).

    Bytes that are not HTTP (a WebSocket after its upgrade, a stream joined mid-request) stop the
    reader until a chunk starts with a request line again; it never raises."""

    def __init__(self) -> None:
        self._conn: h11.Connection | None = None
        self._pending = b""
        self._upgraded = False
        self._current: h11.Request | None = None
        self._body: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> Iterator[Request]:
        """Feed one chunk; yield the requests it completes."""
        if self._upgraded:
            return
        if self._conn is None:
            # not at a known request boundary: a chunk that starts one (its request line may come in
            # pieces) starts parsing again; anything else is the rest of a request never seen whole
            data = self._pending + data
            self._pending = b""
            if b"\r\n" not in data:
                if data[:1].isupper() and len(data) < 8192:
                    self._pending = data
                return
            if not _REQUEST_START.match(data):
                return
            self._conn = h11.Connection(h11.SERVER)
        conn = self._conn
        conn.receive_data(data)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                self._conn = None  # lost: resynchronise on the next request line
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if conn.their_state is h11.MIGHT_SWITCH_PROTOCOL:
                    self._upgraded = True  # a WebSocket (or other) upgrade: no more HTTP here
                    return
                self._next_cycle(conn)
                continue
            if isinstance(event, h11.Request):
                self._current, self._body, self._size = event, [], 0
            elif isinstance(event, h11.Data):
                self._size += len(event.data)
                if self._size <= MAX_BODY:
                    self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage) and self._current is not None:
                yield self._request(self._current, b"".join(self._body) if self._size <= MAX_BODY else b"")
                self._current = None
            elif isinstance(event, h11.ConnectionClosed):
                self._conn = None
                return

    @staticmethod
    def _request(req: h11.Request, body: bytes) -> Request:
        target = req.target.decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}
        return Request(req.method.decode("latin-1").upper(), urlsplit(target).path or target, headers, body)

    def _next_cycle(self, conn: h11.Connection) -> None:
        """h11 reads the next request of a keep-alive connection only once the server answered this
        one; the proxy only watches, so it answers h11 (never the wire) with an empty response."""
        try:
            if conn.our_state is h11.SEND_RESPONSE:
                conn.send(h11.Response(status_code=204, headers=[]))
            if conn.our_state is h11.SEND_BODY:
                conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            self._conn = None  # the client closes after this request (Connection: close)


@dataclass(frozen=True)
class RequestMatch:
    """What a request must be: a method ("" any), a path regex (full match, "" any) and JSON fields.

    ``fields`` is a JSON object; the request's JSON body (an object, or any object of a list body:
    OKX's batch endpoints) must have each field with an allowed value. A list gives the allowed values;
    ``null`` allows the field to be absent; scalars compare by their text (``false`` matches ``false``
    and ``"false"``, as OKX accepts both; text case-insensitively)."""

    method: str = ""
    path: str = ""
    fields: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @classmethod
    def from_attributes(cls, method: str, path: str, fields: str) -> "RequestMatch | None":
        """Build from a toxic's ``match_method``, ``match_path``, ``match_json``; None when all are ""."""
        if not (method or path or fields):
            return None
        if path:
            try:
                re.compile(path)
            except re.error as e:
                raise HttpMatchError(f"match_path is not a regular expression: {e}") from None
        parsed: tuple[tuple[str, tuple[Any, ...]], ...] = ()
        if fields:
            try:
                obj = json.loads(fields)
            except ValueError as e:
                raise HttpMatchError(f"match_json is not JSON: {e}") from None
            if not isinstance(obj, dict) or not obj:
                raise HttpMatchError("match_json must be a non-empty JSON object of field: value(s)")
            parsed = tuple((k, tuple(v) if isinstance(v, list) else (v,)) for k, v in obj.items())
        return cls(method.upper(), path, parsed)

    def matches(self, request: Request) -> bool:
        """True when ``request`` has this method, path and fields."""
        if self.method and request.method != self.method:
            return False
        if self.path and not re.fullmatch(self.path, request.path):
            return False
        if not self.fields:
            return True
        body = request.json()
        objects = body if isinstance(body, list) else [body]
        return any(isinstance(o, dict) and self._fields_match(o) for o in objects)

    def _fields_match(self, obj: dict[str, Any]) -> bool:
        for key, allowed in self.fields:
            if key not in obj or obj[key] is None:
                if None not in allowed:
                    return False
            elif not any(a is not None and _text(a) == _text(obj[key]) for a in allowed):
                return False
        return True


def _text(value: Any) -> str:
    """A scalar's text for comparison: JSON's spelling for booleans and numbers, strings as they are."""
    if isinstance(value, str):
        return value.lower()
    return json.dumps(value, sort_keys=True)
