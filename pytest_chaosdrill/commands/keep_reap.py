"""``chaosdrill keep-reap``: stop the services, venues and proxies that ``--chaosdrill-keep`` left running."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what is kept; stop nothing")


def run(args: argparse.Namespace) -> int:
    from ..backends import keeper

    if args.dry_run:
        found = keeper.kept()
        for record in found:
            where = (f"containers {', '.join(record.get('containers', {}).values())}" if record.get("kind") == "docker"
                     else f"pid {record.get('pid')}")
            print(f"kept {record.get('drill', '?')}: {where}, status {record.get('status_url')}, "
                  f"venue {record.get('venue_url')} ({record['path']})")
        print(f"{len(found)} kept environment(s) in {keeper.keep_dir()}")
        return 0
    lines = keeper.reap()
    for line in lines:
        print(line)
    print(f"{len(lines)} kept environment(s) removed from {keeper.keep_dir()}")
    return 0
