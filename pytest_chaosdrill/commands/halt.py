"""``chaosdrill halt``: the emergency stop of every running drill of this user on the machine.

Writes the halt file (:mod:`pytest_chaosdrill.halt`); every running drill, in every xdist worker and
session, releases its fault, stops its target and ends INTERRUPTED (HALTED) with evidence, and new
runs refuse to start until ``chaosdrill halt --clear``.
"""
from __future__ import annotations

import argparse

from ..halt import clear_halt, halt_path, read_halt, set_halt


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="", help="why (shown by every halted drill and refused run)")
    parser.add_argument("--clear", action="store_true", help="lift the halt: drills may run again")
    parser.add_argument("--status", action="store_true", help="say whether a halt is in force (exit 1 if so)")


def run(args: argparse.Namespace) -> int:
    path = halt_path()
    if args.clear:
        print(f"halt cleared ({path})" if clear_halt(path) else f"no halt was in force ({path})")
        return 0
    if args.status:
        facts = read_halt(path)
        if facts is None:
            print(f"no halt in force ({path})")
            return 0
        print(f"HALTED since {facts.get('at', '?')}: {facts.get('reason') or 'no reason given'} ({path})")
        return 1
    set_halt(args.reason, path)
    print(f"HALT written to {path}: every running drill stops and releases its fault; "
          "new runs refuse to start until `chaosdrill halt --clear`")
    return 0
