"""OKX v5 authentication as the venue checks it: API keys, HMAC-SHA256 signatures, the timestamp
window and the passphrase, for REST requests and private WebSocket logins.

The algorithm is OKX's published one, so unmodified OKX clients (ccxt, python-okx) sign requests the
venue accepts:

* REST: ``OK-ACCESS-SIGN = base64(hmac_sha256(secret, timestamp + METHOD + requestPath + body))``,
  ``OK-ACCESS-TIMESTAMP`` an ISO 8601 UTC instant with milliseconds (``2020-12-08T09:08:57.715Z``);
  ``requestPath`` includes the query string of a GET.
* WebSocket login: ``sign = base64(hmac_sha256(secret, timestamp + "GET" + "/users/self/verify"))``,
  ``timestamp`` in Unix seconds.

A request whose timestamp is more than :data:`WINDOW_S` away from the venue's clock is refused, as OKX
refuses it. The venue's clock may be skewed on purpose (a clock fault): :class:`Authenticator` takes the
clock it judges by.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

# OKX: "the request will be rejected if the timestamp is more than 30 seconds from the API server time".
WINDOW_S = 30.0
WS_VERIFY_PATH = "/users/self/verify"

# REST (HTTP 401), OKX's "Authentication" error class.
R_LIVE_KEY_IN_DEMO = ("50101", "APIKey does not match current environment.")
R_TS_EXPIRED = ("50102", "Timestamp request expired.")
R_KEY_EMPTY = ("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.')
R_PASSPHRASE_EMPTY = ("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.')
R_PASSPHRASE_WRONG = ("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.')
R_SIGN_EMPTY = ("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.')
R_TS_EMPTY = ("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.')
R_KEY_INVALID = ("50111", "Invalid OK-ACCESS-KEY.")
R_TS_INVALID = ("50112", "Invalid OK-ACCESS-TIMESTAMP.")
R_SIGN_INVALID = ("50113", "Invalid Sign.")

# Private WebSocket login, OKX's WebSocket error codes.
W_TS_INVALID = ("60004", "Invalid timestamp")
W_KEY_INVALID = ("60005", "Invalid apiKey")
W_TS_EXPIRED = ("60006", "Timestamp request expired")
W_SIGN_INVALID = ("60007", "Invalid sign")
W_LOGIN_FAILED = ("60009", "Login failure")
W_PASSPHRASE_WRONG = ("60024", "Wrong passphrase")


@dataclass(frozen=True)
class ApiKey:
    """One demo API key the venue accepts. ``secret_key`` and ``passphrase`` are secrets: never logged."""

    api_key: str
    secret_key: str
    passphrase: str

    def __repr__(self) -> str:  # secrets never leave through a repr
        return f"ApiKey(api_key={self.api_key!r}, secret_key=<redacted>, passphrase=<redacted>)"

    @classmethod
    def generate(cls, prefix: str = "chaosdrill") -> "ApiKey":
        """A fresh random demo key (what a drill uses when the target file declares none)."""
        return cls(f"{prefix}-{secrets.token_hex(8)}", secrets.token_hex(16).upper(), "Pp-" + secrets.token_hex(6))


def sign(secret_key: str, prehash: str) -> str:
    """OKX's signature: base64 of HMAC-SHA256 of ``prehash`` under ``secret_key``."""
    mac = hmac.new(secret_key.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def iso_timestamp(epoch_s: float | None = None) -> str:
    """An OKX REST timestamp (``2020-12-08T09:08:57.715Z``) for ``epoch_s`` (default now)."""
    t = time.time() if epoch_s is None else epoch_s
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


def rest_headers(key: ApiKey, method: str, request_path: str, body: str = "", *, demo: bool = True,
                 epoch_s: float | None = None) -> dict[str, str]:
    """The headers an OKX client sends for one signed REST request (used by the venue's own tests and
    clients written in Python without an OKX library)."""
    ts = iso_timestamp(epoch_s)
    headers = {"OK-ACCESS-KEY": key.api_key, "OK-ACCESS-SIGN": sign(key.secret_key, ts + method.upper() + request_path + body),
               "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-PASSPHRASE": key.passphrase, "Content-Type": "application/json"}
    if demo:
        headers["x-simulated-trading"] = "1"
    return headers


def ws_login_args(key: ApiKey, epoch_s: float | None = None) -> dict[str, str]:
    """The ``args[0]`` of a private WebSocket ``login`` op."""
    ts = str(int(time.time() if epoch_s is None else epoch_s))
    return {"apiKey": key.api_key, "passphrase": key.passphrase, "timestamp": ts,
            "sign": sign(key.secret_key, ts + "GET" + WS_VERIFY_PATH)}


def _parse_iso(ts: str) -> float | None:
    try:
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


class AuthError(Exception):
    """A refused authentication: ``code`` and ``msg`` are OKX's."""

    def __init__(self, code_msg: tuple[str, str]) -> None:
        super().__init__(code_msg[1])
        self.code, self.msg = code_msg


class Authenticator:
    """Checks REST signatures and WebSocket logins against the venue's keys.

    ``clock`` returns the venue's idea of now in Unix seconds (a clock fault skews it).
    """

    def __init__(self, keys: Iterable[ApiKey] = (), clock: Callable[[], float] = time.time) -> None:
        self.keys: dict[str, ApiKey] = {k.api_key: k for k in keys}
        self.clock = clock

    def add(self, key: ApiKey) -> None:
        self.keys[key.api_key] = key

    def check_rest(self, method: str, path_qs: str, body: str, headers: "dict[str, str] | object") -> ApiKey:
        """The key a signed REST request was made with; :class:`AuthError` with OKX's code otherwise."""
        get = headers.get  # type: ignore[attr-defined]
        api_key, sig, ts, passphrase = (get("OK-ACCESS-KEY"), get("OK-ACCESS-SIGN"), get("OK-ACCESS-TIMESTAMP"),
                                        get("OK-ACCESS-PASSPHRASE"))
        if not api_key:
            raise AuthError(R_KEY_EMPTY)
        if not sig:
            raise AuthError(R_SIGN_EMPTY)
        if not ts:
            raise AuthError(R_TS_EMPTY)
        if not passphrase:
            raise AuthError(R_PASSPHRASE_EMPTY)
        when = _parse_iso(ts)
        if when is None:
            raise AuthError(R_TS_INVALID)
        if abs(self.clock() - when) > WINDOW_S:
            raise AuthError(R_TS_EXPIRED)
        key = self.keys.get(api_key)
        if key is None:
            raise AuthError(R_KEY_INVALID)
        if not hmac.compare_digest(sign(key.secret_key, ts + method.upper() + path_qs + body), sig):
            raise AuthError(R_SIGN_INVALID)
        if not hmac.compare_digest(key.passphrase, passphrase):
            raise AuthError(R_PASSPHRASE_WRONG)
        return key

    def check_ws_login(self, args: dict) -> ApiKey:
        """The key a WebSocket ``login`` arg was made with; :class:`AuthError` with OKX's code otherwise."""
        api_key, sig, ts, passphrase = (args.get("apiKey"), args.get("sign"), args.get("timestamp"), args.get("passphrase"))
        if not api_key:
            raise AuthError(W_KEY_INVALID)
        try:
            when = float(str(ts))
        except ValueError:
            raise AuthError(W_TS_INVALID) from None
        if abs(self.clock() - when) > WINDOW_S:
            raise AuthError(W_TS_EXPIRED)
        key = self.keys.get(str(api_key))
        if key is None:
            raise AuthError(W_KEY_INVALID)
        if not sig or not hmac.compare_digest(sign(key.secret_key, str(ts) + "GET" + WS_VERIFY_PATH), str(sig)):
            raise AuthError(W_SIGN_INVALID)
        if not hmac.compare_digest(key.passphrase, str(passphrase or "")):
            raise AuthError(W_PASSPHRASE_WRONG)
        return key
