"""WsProbe: a small blocking WebSocket client (websocket-client) for tests and drills.

It reads with deadlines instead of sleeps and remembers the close code the venue sent, so a test can
say "within 2 s a message matching X arrived" or "the socket was closed with 4007".
"""
from __future__ import annotations

import json
import struct
import time
from typing import Any, Callable

import websocket  # websocket-client (the "test" extra)


class WsProbe:
    """One WebSocket connection read with deadlines. ``messages`` keeps (mono, text) of every text frame."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.ws = websocket.create_connection(url, timeout=timeout)
        self.messages: list[tuple[float, str]] = []
        self.close_code: int | None = None
        self.pongs = 0  # protocol-level pong frames received

    def send(self, obj: Any) -> None:
        """Send a JSON object (or a raw string such as ``"ping"``)."""
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    @property
    def closed(self) -> bool:
        """True once the peer closed the socket (or it broke)."""
        return self.close_code is not None or not self.ws.connected

    def recv(self, timeout: float) -> str | None:
        """The next text message, or None if none arrived within ``timeout`` or the socket closed."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.ws.settimeout(left)
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                return None
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                self.close_code = self.close_code or -1
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data if frame is not None else b""
                self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                return None
            if opcode == websocket.ABNF.OPCODE_PONG:
                self.pongs += 1
                continue
            if opcode == websocket.ABNF.OPCODE_TEXT:
                text = frame.data.decode() if isinstance(frame.data, bytes) else frame.data
                self.messages.append((time.monotonic(), text))
                return text
        return None

    def recv_json(self, timeout: float) -> Any:
        """The next message parsed as JSON (``"pong"`` stays a string), or None."""
        text = self.recv(timeout)
        if text is None:
            return None
        return text if text == "pong" else json.loads(text)

    def wait_for(self, pred: Callable[[Any], bool], timeout: float, what: str = "a matching message") -> Any:
        """Read until ``pred(message)`` holds; AssertionError with the last messages if it never does."""
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while time.monotonic() < deadline and not self.closed:
            msg = self.recv_json(deadline - time.monotonic())
            if msg is None:
                continue
            if pred(msg):
                return msg
            seen.append(msg)
        raise AssertionError(f"no {what} within {timeout}s on {self.url} (closed={self.close_code}); "
                             f"last messages: {seen[-3:]!r}")

    def collect(self, duration: float) -> list[Any]:
        """Every message received during ``duration`` seconds."""
        deadline = time.monotonic() + duration
        out = []
        while time.monotonic() < deadline and not self.closed:
            msg = self.recv_json(deadline - time.monotonic())
            if msg is not None:
                out.append(msg)
        return out

    def wait_closed(self, timeout: float) -> int | None:
        """Read (discarding) until the peer closes; returns the close code or None on timeout."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.recv(deadline - time.monotonic())
        return self.close_code

    def close(self) -> None:
        """Close politely if still open, and always release the OS socket."""
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass  # already gone
        finally:
            self.ws.shutdown()  # close() skips this when the peer already closed

    def __enter__(self) -> "WsProbe":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
