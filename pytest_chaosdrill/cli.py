"""The ``chaosdrill`` console script.

Each subcommand lives in ``pytest_chaosdrill.commands.<module>`` and is imported
only when it runs, so ``chaosdrill validate-status`` starts without loading the
venue, the proxy or pytest.
"""
from __future__ import annotations

import importlib
import sys
from . import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the CLI's start-up
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

# name -> (module under pytest_chaosdrill.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("doctor", "start a service once, no fault, and say per drill what will be proven and what to add"),
    "validate-status": ("validate_status", "check /api/v1/status payloads against the status contract"),
    "venue": ("venue", "run the venue simulator (OKX-v5-shaped exchange sandbox) standalone"),
    "proxy": ("proxy", "run the fault proxy (Toxiproxy-style TCP proxy with an HTTP API) standalone"),
    "verify-evidence": ("verify_evidence", "re-check every hash in an evidence folder"),
    "recheck": ("recheck", "re-derive every drill's verdict from its stored evidence (no re-run)"),
    "build-images": ("build_images", "build the docker backend's image (venue + proxy) from the installed package; "
                     "--target FILE builds a target file's own image too"),
    "keep-reap": ("keep_reap", "stop the services, venues and proxies --chaosdrill-keep left running"),
    "docker-reap": ("docker_reap", "remove containers, networks and volumes that killed drill runs left"),
    "k8s-selfcheck": ("k8s_selfcheck", "what the kubernetes backend can prove on a cluster (version, RBAC, Chaos Mesh)"),
    "k8s-reap": ("k8s_reap", "delete the Deployments and pods killed drill runs left in a namespace; continue a stopped kubelet"),
    "report": ("report", "render an evidence run folder as one self-contained HTML report"),
    "attest": ("attest", "sign an in-toto statement (test results, digests of every evidence file) over a run"),
    "history": ("history", "each drill's verdict per run, time to safe over runs, flakiness (stored records only)"),
    "halt": ("halt", "emergency stop: every running drill releases its fault and ends HALTED; --clear lifts it"),
    "list": ("drill_list", "list the drills: id, title, trigger, budget, markers, backends that can run them"),
    "validate": ("drill_validate", "check drill and target files without running anything"),
}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="chaosdrill", description="pytest-chaosdrill command-line tools")
    parser.add_argument("--version", action="version", version=f"chaosdrill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Only the command that runs is imported: keeps cold start and --help fast.
        if selected == name:
            importlib.import_module(f"pytest_chaosdrill.commands.{module}").configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    return _run(importlib.import_module(f"pytest_chaosdrill.commands.{COMMANDS[args.command][0]}"), args)


def _run(module: Any, args: Any) -> int:
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("chaosdrill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
