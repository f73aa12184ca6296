"""``chaosdrill report RUN_DIR [-o OUT]``: render a run folder's evidence as one self-contained HTML page."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import existing_folder


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="EVIDENCE_RUN_DIR", type=existing_folder,
                        help="a run folder (evidence/runs/<run_id>); a link to one is followed")
    parser.add_argument("-o", "--output", metavar="OUT.html", default=None,
                        help="where to write the page (default: EVIDENCE_RUN_DIR/report.html)")
    parser.add_argument("--title", default=None, help="page title (default: the run id)")


def run(args: argparse.Namespace) -> int:
    from ..report import drill_folders, write_run_report

    run_dir: Path = args.run_dir
    run_dir = run_dir.resolve() if run_dir.is_symlink() else run_dir
    if not drill_folders(run_dir):
        print(f"chaosdrill report: {run_dir}: no drill folders (<group>/<drill>/meta.json) in it; "
              "pass a run folder such as evidence/runs/<run_id>", file=sys.stderr)
        return 2
    out = write_run_report(run_dir, Path(args.output) if args.output else None, title=args.title)
    print(out)
    return 0
