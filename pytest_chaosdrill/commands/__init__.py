"""Subcommands of the ``chaosdrill`` console script: each module has ``configure(parser)`` and ``run(args) -> int``."""
from __future__ import annotations

import argparse
from pathlib import Path


def existing_folder(value: str) -> Path:
    """argparse ``type`` of a folder argument (an evidence root or run): a missing one is a usage error (exit 2)."""
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such folder")
    return path


def existing_path(value: str) -> Path:
    """argparse ``type`` of a file-or-folder argument: a missing one is a usage error (exit 2)."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value}: no such file or folder")
    return path
