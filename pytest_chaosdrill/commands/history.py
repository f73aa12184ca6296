"""``chaosdrill history EVIDENCE``: each drill's verdict per run with its commit, time to safe, and
flakiness (one commit, different verdicts), from the stored records only; nothing is re-run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import existing_folder


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("evidence", metavar="EVIDENCE", type=existing_folder, help="the evidence root (evidence/ or evidence/runs)")
    parser.add_argument("--runs", action="store_true", help="also list every run of every drill")


def run(args: argparse.Namespace) -> int:
    from ..report.history import history_lines, load_history

    root: Path = args.evidence
    histories = load_history(root)
    if not histories:
        print(f"chaosdrill history: {root}: no stored drill runs (runs/<id>/<group>/<drill>/meta.json)", file=sys.stderr)
        return 2
    for line in history_lines(histories, verbose=args.runs):
        print(line)
    flaky = [h for h in histories if h.flaky_commits]
    print(f"{len(histories)} drill(s), {sum(len(h.runs) for h in histories)} run(s), {len(flaky)} flaky")
    return 0
