"""``chaosdrill target``: run the reference target okx_demo_api (same flags as the module)."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the target's flags (each mirrors an env var, e.g. --rest-url / OKX_REST_URL)."""
    from pytest_chaosdrill.okx_demo_api import config

    config.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pytest_chaosdrill.okx_demo_api.main import run_args

    return run_args(args)
