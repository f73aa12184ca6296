"""Entry point: configuration from the environment, the status HTTP server (ThreadingHTTPServer),
the control-dir poller (STOP, the two fault hooks and the reduce_exposure occasion hook), the run manifest and the execution fingerprint.

Run as ``python -m threaded_service`` (package on the path) or ``python service.py`` from this folder.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):   # started as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "threaded_service"  # noqa: A001

from .core import State  # noqa: E402
from .feeds import PrivateSession, PublicFeed  # noqa: E402
from .rest import Rest, Telemetry, utc_now  # noqa: E402
from .trader import Trader  # noqa: E402
from .lease import Lease  # noqa: E402
from .wal import Wal  # noqa: E402

log = logging.getLogger("threaded_service")


def env(name: str, default: str | None = None) -> str:
    v = os.environ.get(name, default)
    if v is None:
        raise SystemExit(f"threaded_service: {name} is required")
    return v


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def git_commit() -> str:
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=2)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "not-applicable:not-in-a-git-checkout"


class Ops:
    """run_manifest.json, execution_fingerprint.json and hooks.log."""

    def __init__(self, data: Path, control: Path, telemetry: Telemetry, run_id: str, build_id: str, commit: str) -> None:
        self.data, self.control, self.t = data, control, telemetry
        self.state: Any = None   # set once the State exists: its trade counters go into the fingerprint
        self.manifest: dict[str, Any] = {
            "run_id": run_id, "service": "threaded_service", "start_utc": utc_now(), "end_utc": None,
            "status": "running", "stop_detected": False, "stop_time": None, "stop_reason": None,
            "stop_detected_mono": None, "git_commit": commit, "build_id": build_id,
            "docker_image_tag": os.environ.get("DOCKER_IMAGE_TAG") or "not-applicable:not-running-in-a-container",
            "pid": os.getpid(), "python": sys.version.split()[0]}
        self.lock = threading.Lock()

    def write(self) -> None:
        snap = self.t.snapshot()
        st = self.state
        if st is not None:
            with st.lock:
                # docs/okx_demo_api.md's observable for "no duplicate trade processing"
                snap["trades"] = {"processed": st.trades_processed, "duplicates_dropped": st.trades_dropped,
                                  "gaps": st.trades_gaps}
        with self.lock:
            self.manifest.update(api_calls=snap["api_calls"], orders_sent=snap["orders_sent"])
            write_json_atomic(self.data / "run_manifest.json", self.manifest)
            write_json_atomic(self.data / "execution_fingerprint.json", snap)

    def hook(self, hook: str, event: str, mono: float, **detail: Any) -> None:
        line = json.dumps({"hook": hook, "event": event, "mono": mono, "utc": utc_now(), "detail": detail})
        with self.lock, open(self.control / "hooks.log", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        log.info("hook %s %s %s", hook, event, detail)


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive: the drills sample every few ms
        # Headers and body are two writes: without TCP_NODELAY, Nagle + the client's delayed ACK
        # hold the body ~40 ms, and every sample shows a status that old.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path.split("?")[0] == "/api/v1/status":
                body = json.dumps(state.status()).encode()
            elif self.path == "/healthz":
                body = b'{"ok": true}'
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> int:
    data = Path(env("DATA_DIR"))
    control = Path(env("CONTROL_DIR"))
    for d in (data, control):
        d.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        handlers=[logging.FileHandler(data / "service.log"), logging.StreamHandler()])
    rest_url = env("EXCHANGE_REST_URL", "http://127.0.0.1:8900")
    base_ws = rest_url.replace("http", "ws", 1).rstrip("/")
    ws_public = env("EXCHANGE_WS_PUBLIC", base_ws + "/ws/v5/public")
    ws_private = env("EXCHANGE_WS_PRIVATE", base_ws + "/ws/v5/private")
    api_key, secret, passphrase = env("API_KEY", "demo-key"), env("API_SECRET", "demo-secret"), env("API_PASSPHRASE", "demo")
    instruments = tuple(env("INSTRUMENTS", "BTC-USDT-SWAP,ETH-USDT-SWAP").split(","))
    wal_capacity = int(env("WAL_CAPACITY", "1024"))
    order_rate = float(env("ORDER_RATE", "10"))
    http_timeout_s = float(env("HTTP_TIMEOUT_MS", "1000")) / 1000
    environment = env("ENVIRONMENT", "PAPER").upper()
    host, port = env("HOST", "127.0.0.1"), int(env("PORT", "8080"))
    run_id = "run-" + secrets.token_hex(4)
    commit = git_commit()
    build_id = os.environ.get("BUILD_ID") or f"threaded_service-{commit[:12]}"
    config = {k: v for k, v in os.environ.items() if k in ("INSTRUMENTS", "WAL_CAPACITY", "ORDER_RATE", "ENVIRONMENT",
                                                          "STALE_THRESHOLD_MS", "RECONCILE_STABLE_MS")}

    telemetry = Telemetry()
    stop = threading.Event()
    ops = Ops(data, control, telemetry, run_id, build_id, commit)
    state = State(instruments=instruments, wal_capacity=wal_capacity,
                  stale_threshold_ms=int(env("STALE_THRESHOLD_MS", "1000")),
                  stable_ms=int(env("RECONCILE_STABLE_MS", "300")),
                  emergency_cooldown_ms=int(env("EMERGENCY_COOLDOWN_MS", "1500")),
                  environment=environment, build_id=build_id, config=config, data_dir=str(data), telemetry=telemetry)
    ops.state = state
    # Every start must reconcile before it opens risk (after a crash the WAL may hold unanswered orders).
    marker = data / ".running"
    state.set_latch("RESTART_RECONCILE_REQUIRED", "crashed" if marker.exists() else "start-up")
    prev = data / "run_manifest.json"
    if marker.exists() and prev.exists():
        try:
            old = json.loads(prev.read_text(encoding="utf-8"))
            old.update(status="crashed", stop_reason="crash")
            write_json_atomic(data / "run_manifest.previous.json", old)
        except (OSError, ValueError):
            pass
    marker.write_text(run_id, encoding="utf-8")

    wal = Wal(data / "wal.jsonl", wal_capacity, on_stall_change=lambda ev, mono: ops.hook("wal_stall", ev, mono))
    state.wal_depth = lambda: wal.depth
    state.wal_failures = lambda: wal.enqueue_failures
    rest = Rest(rest_url, api_key, secret, passphrase, http_timeout_s, telemetry,
                demo=env("DEMO_TRADING", "1") != "0")
    lease = Lease(data, run_id)
    lease.take()   # fences an older instance still running on this data (its node lost, it replaced)
    trader = Trader(state, rest, wal, stop, order_rate, secrets.token_hex(3), http_timeout_s, lease.held)

    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="status-http", daemon=True).start()
    ops.write()

    stop_reason: dict[str, Any] = {}

    def request_stop(reason: str) -> None:
        if not stop_reason:
            stop_reason.update(reason=reason, mono=time.monotonic(), utc=utc_now())
            stop.set()

    signal.signal(signal.SIGTERM, lambda *_: request_stop("sigterm"))
    signal.signal(signal.SIGINT, lambda *_: request_stop("sigint"))

    def poll_control() -> None:
        stall_file, token_file = control / "wal_stall", control / "emit_reason_token"
        reduce_file = control / "reduce_exposure"
        stalled = False
        while not stop.is_set():
            if (control / "STOP").exists():
                request_stop("stop_file")
                return
            now_stalled = stall_file.exists()
            if now_stalled != stalled:
                stalled = now_stalled
                wal.set_stall(stalled)   # the writer logs applied/released when it really stops/resumes
            if token_file.exists():
                try:
                    token = token_file.read_text(encoding="utf-8").strip()
                    token_file.unlink()  # consumed: a restart does not see it again
                except OSError:
                    token = None
                if token is not None:
                    tier = state.emit_token(token)
                    ops.hook("emit_reason_token", "applied", time.monotonic(), token=token, tier=tier)
            if reduce_file.exists():
                try:
                    reduce_file.unlink()   # one command per file
                except OSError:
                    pass
                else:
                    ops.hook("reduce_exposure", "applied", time.monotonic(), **trader.flatten_now())
            time.sleep(0.01)

    threading.Thread(target=poll_control, name="control", daemon=True).start()

    def fingerprints() -> None:
        while not stop.wait(0.25):
            try:
                ops.write()
            except OSError as exc:
                log.error("cannot write ops files: %s", exc)

    wal.start()
    threading.Thread(target=fingerprints, name="fingerprint", daemon=True).start()
    public = PublicFeed(ws_public, state, stop)
    private = PrivateSession(ws_private, api_key, secret, passphrase, state, stop, clock=rest)
    public.start()
    private.start()
    threading.Thread(target=trader.replay, name="wal-replay", daemon=True).start()
    threading.Thread(target=trader.reconcile_loop, name="reconcile", daemon=True).start()
    loop = threading.Thread(target=trader.run, name="trader", daemon=True)
    loop.start()

    stop.wait()
    log.info("stop requested: %s", stop_reason)
    with state.lock:
        state.shutting_down = True
    ops.manifest.update(stop_detected=stop_reason["reason"] == "stop_file", stop_time=stop_reason["utc"],
                        stop_reason=stop_reason["reason"], stop_detected_mono=stop_reason["mono"])
    ops.write()
    loop.join(2.0)
    public.close()
    private.close()
    wal.close()
    server.shutdown()
    ops.manifest.update(status="interrupted", end_utc=utc_now())
    ops.write()
    marker.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
