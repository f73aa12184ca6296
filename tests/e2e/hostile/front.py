"""A hostile status server placed IN FRONT of the real reference target (test fixture, not product code).

``python front.py`` (run by the target files next to it, through the plugin's process backend) starts
the real reference target ``okx_demo_api`` on a private loopback port, as its own child, and serves
``/api/v1/status`` on ``TARGET_PORT`` (the port the plugin samples). Every answer is fetched from the
real target and then, once the attack is armed, mutated according to ``HOSTILE_MODE``:

============================  ==========================================================================
``passthrough``               nothing (a control: the drill must behave as against the real target)
``dup_keys``                  ``{"trading_mode": "Kill", <the real keys, real trading_mode included>}``
``redirect_off_loopback``     ``302`` to ``http://203.0.113.7/api/v1/status`` (TEST-NET-3: never contacted)
``redirect_from_first``       the same redirect, armed from the very first answer
``live_midway``               ``deployment_environment`` rewritten to ``LIVE``
``nan`` / ``infinity``        ``mm_util`` written as bare ``NaN`` / ``Infinity``
``array``                     the real status wrapped in a JSON array
``deep_nesting``              a 100,000-deep nested object
``huge_body``                 a valid status padded to 20 MB
``echo_secret``               secret values copied into enum fields, a log, a manifest (see below)
============================  ==========================================================================

``HOSTILE_AFTER_S`` (seconds after the first real answer passed through; default 0) arms the attack.
``HOSTILE_AFTER_BLOCKED=K`` instead arms it once K real answers said OPEN is blocked (the drill's fault
has landed and been seen as safe), so a mid-drill attack meets a drill past its steady state.

``echo_secret`` echoes the values of the variables named in ``HOSTILE_ECHO_VARS`` (comma-separated)
and ``HOSTILE_ECHO_EXTRA`` (a value only the target file's ``secrets:`` knows): cycled through
``risk_state`` and other enum fields of the status, written to ``HOSTILE_LOG`` (one non-UTF-8 byte
per line, so a text-mode copy would fail and a raw copy would leak), to stdout (the backend's log
of this process), and into ``HOSTILE_MANIFEST`` (the real run manifest plus the secrets). It also
writes ``HOSTILE_HOOKS_LOG`` with a ``token`` field and prose ``reason token: fail closed`` that are
not secrets and must survive redaction. ``HOSTILE_ECHO_RAW=1`` makes every other echoing answer a
refused one (a bare ``NaN`` in it), so the secrets also reach the evidence as raw refused bodies.

SIGTERM/SIGINT stop the real target first; the target also gets ``PR_SET_PDEATHSIG`` so it never
outlives this process, and the plugin kills the whole process group anyway.
"""
from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

#: How long the target must have answered Active before a blocked answer counts as the fault's (100
#: answers at the drill's 5 ms sampling, as time).
STEADY_ACTIVE_S = 0.5
OFF_LOOPBACK = "http://203.0.113.7/api/v1/status"  # TEST-NET-3 (RFC 5737): documentation only
MODES = ("passthrough", "dup_keys", "redirect_off_loopback", "redirect_from_first", "live_midway", "nan",
         "infinity", "array", "deep_nesting", "huge_body", "echo_secret")
HOOK_LINE = {"hook": "emit_reason_token", "event": "applied", "token": "KILL_UNREGISTERED_SUBSYSTEM_TOKEN",
             "detail": "reason token: fail closed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pdeathsig() -> None:
    """In the child: die with SIGKILL when this front process dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Front:
    """The state shared by the request threads: the mode, when the attack arms, the echoed secrets."""

    def __init__(self, mode: str, after_s: float, backend_port: int, after_blocked: int = 0) -> None:
        if mode not in MODES:
            raise SystemExit(f"HOSTILE_MODE={mode!r}: unknown; known: {', '.join(MODES)}")
        self.mode = mode
        self.after_s = 0.0 if mode == "redirect_from_first" else after_s
        self.backend_port = backend_port
        self.first_real: float | None = None
        self.after_blocked = after_blocked
        self.blocked_seen = 0
        self.active_since: float | None = None
        self.armed_at: float | None = None
        self.answers = 0
        self.lock = threading.Lock()
        names = [n for n in os.environ.get("HOSTILE_ECHO_VARS", "").split(",") if n]
        self.secrets = [os.environ[n] for n in names if os.environ.get(n)]
        if os.environ.get("HOSTILE_ECHO_EXTRA"):
            self.secrets.append(os.environ["HOSTILE_ECHO_EXTRA"])
        self.log_path = Path(os.environ["HOSTILE_LOG"]) if os.environ.get("HOSTILE_LOG") else None
        self.manifest_path = Path(os.environ["HOSTILE_MANIFEST"]) if os.environ.get("HOSTILE_MANIFEST") else None
        self.data_dir = Path(os.environ.get("TARGET_DATA_DIR", "."))

    def armed(self) -> bool:
        if self.armed_at is not None or self.mode == "redirect_from_first":
            return True
        if self.after_blocked:
            ok = self.blocked_seen >= self.after_blocked
        else:
            ok = self.first_real is not None and time.monotonic() - self.first_real >= self.after_s
        if ok:  # once armed, always armed
            self.armed_at = time.monotonic()
            print(f"hostile front: {self.mode} armed", flush=True)
        return ok

    def saw(self, body: bytes) -> None:
        """Count the real answers that say OPEN is blocked (the fault was seen by the target)."""
        try:
            st = json.loads(body)
        except ValueError:
            return
        if not isinstance(st, dict):
            return
        if st.get("trading_mode") == "Active" and not st.get("open_permission_blocked_latch"):
            if self.active_since is None:
                self.active_since = time.monotonic()
        # blocked after a steady Active stretch (not the start-up latch, which comes before any Active).
        # The stretch is measured in time, not in answers: a loaded machine samples less often, and 100
        # answers once took longer than the drill's whole steady state, so the attack never armed.
        elif self.active_since is not None and time.monotonic() - self.active_since >= STEADY_ACTIVE_S:
            self.blocked_seen += 1

    def fetch(self, path: str, conn: list[http.client.HTTPConnection]) -> tuple[int, bytes] | None:
        """The real target's answer to ``GET path`` over the caller's keep-alive ``conn`` (a one-item
        list, replaced after an error); None while the real target is not serving yet."""
        for _attempt in (1, 2):  # a kept-alive connection the real target closed gets one retry
            if not conn:
                conn.append(http.client.HTTPConnection("127.0.0.1", self.backend_port, timeout=2))
            try:
                conn[0].request("GET", path)
                resp = conn[0].getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                conn.pop().close()
        return None

    def mutate(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """What the hostile front answers instead of the real ``body`` (the attack is armed)."""
        m = self.mode
        if m in ("redirect_off_loopback", "redirect_from_first"):
            return 302, {"Location": OFF_LOOPBACK}, b""
        if m == "dup_keys":
            return 200, {}, b'{"trading_mode": "Kill", ' + body.lstrip()[1:]
        if m == "deep_nesting":
            depth = 100_000
            return 200, {}, b'{"a": ' * depth + b"1" + b"}" * depth
        status = json.loads(body)
        if m == "live_midway":
            status["deployment_environment"] = "LIVE"
        elif m == "nan":
            status["mm_util"] = float("nan")
        elif m == "infinity":
            status["mm_util"] = float("inf")
        elif m == "array":
            return 200, {}, json.dumps([status]).encode()
        elif m == "huge_body":  # a valid object, 20 MB: built from bytes, not re-serialised each time
            return 200, {}, json.dumps(status).encode()[:-1] + b', "padding": "' + b"x" * 20_000_000 + b'"}'
        elif m == "echo_secret" and self.secrets:
            with self.lock:
                n = self.answers
            first = self.secrets[n % len(self.secrets)]
            status["risk_state"] = first
            status["f1_cert_state"] = self.secrets[(n + 1) % len(self.secrets)]
            status["owner_view"] = dict(status.get("owner_view") or {},
                                        owner_message="operator said: " + " | ".join(self.secrets))
            if os.environ.get("HOSTILE_ECHO_RAW") and n % 2:  # a refused body: kept raw in the evidence
                status["mm_util"] = float("nan")
        return 200, {}, json.dumps(status).encode()  # json.dumps writes NaN/Infinity bare, as a lax server does

    def echo_files(self) -> None:
        """echo_secret: the log (one non-UTF-8 byte a line), stdout, the manifest, a hook log; once a second."""
        hooks = os.environ.get("HOSTILE_HOOKS_LOG")
        while True:
            for s in self.secrets:
                line = (b"\xff hostile echo: secret=" + s.encode("utf-8") + b" json=" + json.dumps(s).encode()
                        + b" url=" + quote_plus(s).encode() + b"\n")
                if self.log_path is not None:
                    with open(self.log_path, "ab") as fh:
                        fh.write(line)
                sys.stdout.buffer.write(line)
            sys.stdout.flush()
            if hooks:
                with open(hooks, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(HOOK_LINE) + "\n")
            if self.manifest_path is not None:
                try:
                    real = json.loads((self.data_dir / "run_manifest.json").read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    real = {}
                real["operator_notes"] = list(self.secrets)
                tmp = self.manifest_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(real, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, self.manifest_path)
            time.sleep(1.0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the sampler polls over one connection
    disable_nagle_algorithm = True  # headers and body are written separately: no 40 ms Nagle stall
    front: Front

    def setup(self) -> None:
        super().setup()
        self.upstream: list[http.client.HTTPConnection] = []  # one real-target connection per client connection

    def finish(self) -> None:
        super().finish()
        for c in self.upstream:
            c.close()

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        front = self.front
        got = front.fetch(self.path, self.upstream)
        if got is None:
            self._send(503, {}, b'{"error": "real target not serving yet"}')
            return
        code, body = got
        if self.path.split("?")[0] != "/api/v1/status" or code != 200:
            self._send(code, {}, body)
            return
        with front.lock:
            if front.first_real is None:
                front.first_real = time.monotonic()
            front.saw(body)
            armed = front.armed()
        if armed:
            code, headers, body = front.mutate(body)
        else:
            headers = {}
        with front.lock:
            front.answers += 1
        self._send(code, headers, body)

    def _send(self, code: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a huge body: its right
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    mode = os.environ.get("HOSTILE_MODE", "passthrough")
    front_port = int(os.environ["TARGET_PORT"])
    backend_port = _free_port()
    env = dict(os.environ, TARGET_PORT=str(backend_port))
    real = subprocess.Popen([sys.executable, "-m", "okx_demo_api"], env=env,
                            preexec_fn=_pdeathsig)
    front = Front(mode, float(os.environ.get("HOSTILE_AFTER_S", "0")), backend_port,
                  int(os.environ.get("HOSTILE_AFTER_BLOCKED", "0")))
    Handler.front = front
    server = ThreadingHTTPServer(("127.0.0.1", front_port), Handler)
    server.daemon_threads = True

    def stop(signum: int, frame: Any) -> None:
        real.terminate()
        try:
            real.wait(5)
        except subprocess.TimeoutExpired:
            real.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    def watch_real() -> None:  # the real target died: so does the front (the plugin sees the exit)
        code = real.wait()
        print(f"hostile front: the real target exited ({code})", flush=True)
        os._exit(1)

    threading.Thread(target=watch_real, daemon=True).start()
    if mode == "echo_secret":
        threading.Thread(target=front.echo_files, daemon=True).start()
    print(f"hostile front: mode={mode} after={front.after_s}s/{front.after_blocked} blocked front=127.0.0.1:{front_port} "
          f"real target=127.0.0.1:{backend_port} pid={real.pid}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
