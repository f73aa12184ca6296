"""Configuration of the reference target: environment variables, mirrored by command-line flags."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

# (env var, flag dest, type, default, help). Flags mirror env vars: OKX_REST_URL -> --rest-url.
_SPEC: list[tuple[str, str, type, object, str]] = [
    ("OKX_REST_URL", "rest_url", str, "http://127.0.0.1:8900", "venue REST base URL"),
    ("OKX_WS_PUBLIC_URL", "ws_public_url", str, "", "venue public WebSocket URL (default: from --rest-url)"),
    ("OKX_WS_PRIVATE_URL", "ws_private_url", str, "", "venue private WebSocket URL (default: from --rest-url)"),
    ("OKX_API_KEY", "api_key", str, "demo-key", "API key (demo default)"),
    ("OKX_API_SECRET", "api_secret", str, "demo-secret", "API secret (demo default)"),
    ("OKX_API_PASSPHRASE", "api_passphrase", str, "demo-passphrase", "API passphrase (demo default)"),
    ("OKX_DEMO_TRADING", "demo_trading", int, 1, "1: OKX demo trading (sends x-simulated-trading: 1); 0: live (real money)"),
    ("OKX_INSTRUMENTS", "instruments", str, "BTC-USDT-SWAP,ETH-USDT-SWAP", "comma-separated instruments; first two trade"),
    ("TARGET_HOST", "host", str, "127.0.0.1", "status HTTP bind address"),
    ("TARGET_PORT", "port", int, 8080, "status HTTP port"),
    ("TARGET_CONTROL_DIR", "control_dir", str, "", "control dir (STOP file, hooks); required"),
    ("TARGET_DATA_DIR", "data_dir", str, "", "data dir (WAL, run manifest, fingerprint, log); required"),
    ("TARGET_REASON_MANIFEST", "reason_manifest", str, "", "reason-code manifest JSON (the contract's registries); required"),
    ("TARGET_ORDER_RATE", "order_rate", float, 8.0, "orders per second (>= 5)"),
    ("TARGET_STALE_THRESHOLD_MS", "stale_threshold_ms", int, 1000, "market-data lag/silence that latches WS_DATA_STALE"),
    ("TARGET_RECONCILE_STABLE_MS", "reconcile_stable_ms", int, 500, "how long a cleared condition must stay clear before reconciling"),
    ("TARGET_EMERGENCY_COOLDOWN_MS", "emergency_cooldown_ms", int, 1500, "emergency ReduceOnly cooldown after a partial fill"),
    ("TARGET_WAL_CAPACITY", "wal_capacity", int, 1024, "bounded WAL queue capacity"),
    ("TARGET_HTTP_TIMEOUT_MS", "http_timeout_ms", int, 1000, "REST request timeout"),
    ("TARGET_ORDER_EXPIRY_MS", "order_expiry_ms", int, 1500, "order requests carry expTime = intent time + this; the venue refuses them after it"),
    ("TARGET_EXPIRY_MARGIN_MS", "expiry_margin_ms", int, 500, "after expTime + this, an order the venue says does not exist never will"),
    ("TARGET_STOP_POLL_MS", "stop_poll_ms", int, 20, "control-dir poll period (STOP file, hooks)"),
    ("TARGET_ENVIRONMENT", "environment", str, "PAPER", "deployment environment: DEV|PAPER|STAGING|LIVE"),
    ("BUILD_ID", "build_id", str, "", "build id for run_manifest and /status"),
    ("GIT_COMMIT", "git_commit", str, "", "git commit for run_manifest"),
    ("DOCKER_IMAGE_TAG", "docker_image_tag", str, "", "container image tag for run_manifest"),
]

MIN_ORDER_RATE = 5.0
ENVIRONMENTS = ("DEV", "PAPER", "STAGING", "LIVE")
_SECRETS = {"api_key", "api_secret", "api_passphrase"}


class ConfigError(ValueError):
    """The configuration is unusable (missing required value, out of range)."""


@dataclass(frozen=True)
class Config:
    rest_url: str
    ws_public_url: str
    ws_private_url: str
    api_key: str
    api_secret: str
    api_passphrase: str
    demo_trading: int
    instruments: tuple[str, ...]
    host: str
    port: int
    control_dir: Path
    data_dir: Path
    reason_manifest: Path
    order_rate: float
    stale_threshold_ms: int
    reconcile_stable_ms: int
    emergency_cooldown_ms: int
    wal_capacity: int
    http_timeout_ms: int
    stop_poll_ms: int
    environment: str
    build_id: str = ""
    git_commit: str = ""
    docker_image_tag: str = ""
    order_expiry_ms: int = 1500
    expiry_margin_ms: int = 500

    def public_dict(self) -> dict:
        """The configuration without secrets (for logs and the config hash)."""
        d = asdict(self)
        for k in _SECRETS:
            d[k] = "***"
        d["control_dir"] = str(self.control_dir)
        d["data_dir"] = str(self.data_dir)
        d["reason_manifest"] = str(self.reason_manifest)
        d["instruments"] = list(self.instruments)
        return d

    def config_hash(self) -> str:
        """Hash of the behaviour-relevant configuration (dirs and ports excluded: they differ per run)."""
        d = self.public_dict()
        for k in ("control_dir", "data_dir", "reason_manifest", "port", "host", "rest_url", "ws_public_url", "ws_private_url"):
            d.pop(k, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per environment variable; a flag wins over its env var."""
    for env, dest, typ, default, help_text in _SPEC:
        flag = "--" + dest.replace("_", "-")
        parser.add_argument(flag, dest=dest, type=typ, default=None,
                            help=f"{help_text} [env {env}, default {default!r}]")


def _ws_from_rest(rest_url: str, path: str) -> str:
    base = rest_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + path
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):] + path
    return base + path


def load(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from flags (if given) over environment variables over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, dest, typ, default, _ in _SPEC:
        raw = getattr(args, dest, None) if args is not None else None
        if raw is None:
            raw = env.get(name)
            if raw is None or raw == "":
                raw = default
        try:
            values[dest] = typ(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: cannot parse {raw!r} as {typ.__name__}") from exc
    for dest in ("control_dir", "data_dir", "reason_manifest"):
        if not values[dest]:
            raise ConfigError(f"TARGET_{dest.upper()} (--{dest.replace('_', '-')}) is required")
    if float(values["order_rate"]) < MIN_ORDER_RATE:
        raise ConfigError(f"TARGET_ORDER_RATE must be >= {MIN_ORDER_RATE} (got {values['order_rate']})")
    for dest in ("stale_threshold_ms", "wal_capacity", "http_timeout_ms", "stop_poll_ms", "order_expiry_ms"):
        if int(values[dest]) <= 0:
            raise ConfigError(f"{dest} must be > 0")
    env_name = str(values["environment"]).upper()
    if env_name not in ENVIRONMENTS:
        raise ConfigError(f"TARGET_ENVIRONMENT must be one of {ENVIRONMENTS}")
    values["environment"] = env_name
    if int(values["expiry_margin_ms"]) < 0:
        raise ConfigError("expiry_margin_ms must be >= 0")
    instruments = tuple(s.strip() for s in str(values["instruments"]).split(",") if s.strip())
    if len(instruments) < 2:
        raise ConfigError("OKX_INSTRUMENTS needs at least two instruments (two-leg orders hedge on the second)")
    values["instruments"] = instruments
    rest = str(values["rest_url"]).rstrip("/")
    values["rest_url"] = rest
    values["ws_public_url"] = values["ws_public_url"] or _ws_from_rest(rest, "/ws/v5/public")
    values["ws_private_url"] = values["ws_private_url"] or _ws_from_rest(rest, "/ws/v5/private")
    values["control_dir"] = Path(str(values["control_dir"])).resolve()
    values["data_dir"] = Path(str(values["data_dir"])).resolve()
    values["reason_manifest"] = Path(str(values["reason_manifest"])).resolve()
    return Config(**values)  # type: ignore[arg-type]
