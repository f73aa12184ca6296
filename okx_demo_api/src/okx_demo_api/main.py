"""Entry point shared by ``python -m okx_demo_api``."""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Sequence

from . import config as config_mod


def run_config(cfg: config_mod.Config) -> int:
    """Run the service with ``cfg`` until STOP/SIGTERM/SIGINT; returns the exit code."""
    from .app import App  # imported late: --help stays fast

    try:
        app = App(cfg)
    except (OSError, ValueError, KeyError) as exc:  # unreadable manifest, unwritable dirs
        print(f"okx_demo_api: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(app.run())


def run_args(args: argparse.Namespace) -> int:
    """Build the configuration from parsed flags over env vars, then run."""
    try:
        cfg = config_mod.load(args)
    except config_mod.ConfigError as exc:
        print(f"okx_demo_api: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_config(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m okx_demo_api",
                                     description="okx_demo_api: reference trading target for pytest-chaosdrill")
    config_mod.add_arguments(parser)
    return run_args(parser.parse_args(argv))
