"""``chaosdrill docker-reap``: remove the containers, networks and volumes that killed runs left."""
from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--older-than", type=float, default=None, metavar="SECONDS",
                        help="only what was created more than SECONDS ago (default: everything labelled)")
    parser.add_argument("--label", default="io.chaosdrill.managed=true",
                        help="label that marks the resources (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed")


def run(args: argparse.Namespace) -> int:
    from ..backends.docker_engine import DockerError, engine_available, leftovers, reap

    ok, reason = engine_available()
    if not ok:
        print(f"chaosdrill docker-reap: {reason}", file=sys.stderr)
        return 2
    try:
        found = leftovers(args.label) if args.dry_run else reap(args.label, older_than_s=args.older_than)
    except DockerError as exc:
        print(f"chaosdrill docker-reap: {exc}", file=sys.stderr)
        return 1
    for name in found:
        print(("would remove " if args.dry_run else "removed ") + name)
    print(f"{len(found)} resource(s) {'found' if args.dry_run else 'removed'}")
    return 0
