"""``chaosdrill recheck EVIDENCE_DIR``: re-derive every drill's verdict from its stored record.

An auditor can re-check a signed-off run without re-running it: each drill folder's ``record.json``,
``timeline.jsonl.gz``, ``marks.json`` and ``witness_ledger.jsonl`` hold everything the checks and the
verdict read. Exit 0 when every re-derived verdict equals the stored one, 1 when any differs, 2 when
evidence is unreadable.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from . import existing_path

#: Verdicts that need no record: the drill never ran far enough to have one.
_NO_RECORD_NEEDED = {"SKIPPED", "ERROR", "INTERRUPTED", "INCOMPLETE"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="EVIDENCE_DIR", type=existing_path,
                        help="a drill folder, a run folder (evidence/runs/<run id>) or the whole evidence/ tree")
    parser.add_argument("--schema", help="status schema to re-check samples with (default: the one the run used, "
                        "if it still exists, else the bundled one)")
    parser.add_argument("--manifest", help="reason-code manifest (default as for --schema)")


def drill_folders(root: Path) -> Iterator[Path]:
    """Every folder under ``root`` holding a drill's ``meta.json`` (latest-run links are not followed)."""
    if (root / "meta.json").is_file():
        yield root
        return
    for meta in sorted(root.rglob("meta.json")):
        if not any(p.is_symlink() for p in meta.relative_to(root).parents if str(p) != "."):
            yield meta.parent


def _contract(args: argparse.Namespace, used: dict[str, Any], cache: dict[tuple[str, str], Any]) -> Any:
    from ..contract import Contract
    from ..resources import default_manifest, default_schema

    def pick(given: str | None, stored: str | None, default: Path) -> str:
        if given:
            return given
        return stored if stored and Path(stored).is_file() else str(default)

    key = (pick(args.schema, used.get("schema"), default_schema()), pick(args.manifest, used.get("manifest"),
                                                                         default_manifest()))
    if key not in cache:
        cache[key] = Contract.load(*key)
    return cache[key]


def recheck_folder(folder: Path, args: argparse.Namespace, cache: dict[tuple[str, str], Any]) -> tuple[str, str, str]:
    """(stored verdict, re-derived verdict, reason) for one drill folder; raises ValueError when unreadable."""
    from ..registry import builtin_checks
    from ..record import RECORD_FILE, DrillRecord
    from ..verdict import evaluate

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder / 'meta.json'}: unreadable: {exc}") from None
    stored = str(meta.get("verdict"))
    if not (folder / RECORD_FILE).is_file():
        if stored in _NO_RECORD_NEEDED:
            return stored, stored, "no record (the drill did not run)"
        raise ValueError(f"{folder}: verdict {stored} but no {RECORD_FILE} to re-derive it from")
    record = DrillRecord.load(folder)
    ev = evaluate(record, _contract(args, record.contract, cache), builtin_checks())
    return stored, ev.verdict.value, ev.reason


def run(args: argparse.Namespace) -> int:
    from ..evidence import verify_tree

    cache: dict[tuple[str, str], Any] = {}
    differ = unreadable = total = 0
    for raw in args.paths:
        root: Path = raw
        for folder in drill_folders(root.resolve()):
            total += 1
            try:
                stored, derived, reason = recheck_folder(folder, args, cache)
            except ValueError as exc:
                unreadable += 1
                print(f"UNREADABLE {folder}: {exc}")
                continue
            _, hash_problems = verify_tree(folder)
            tampered = f" [hashes: {len(hash_problems)} mismatch(es)]" if hash_problems else ""
            if stored == derived:
                print(f"same      {folder.name}: {stored}{tampered}")
            else:
                differ += 1
                print(f"DIFFERENT {folder.name}: stored {stored}, re-derived {derived}: {reason}{tampered}")
    from ..evidence import INCOMPLETE, IN_PROGRESS

    # Folders never finished: named one by one, and never an "all agree" (issue 23)
    unfinished = sorted({m.parent for raw in args.paths for name in (INCOMPLETE, IN_PROGRESS)
                         for m in Path(raw).resolve().rglob(name)})
    for folder in unfinished:
        print(f"INCOMPLETE {folder}: {'still in progress' if (folder / IN_PROGRESS).exists() else 'never finished'}"
              " (see its meta.json or IN_PROGRESS.json)")
    if total == 0:
        print("chaosdrill recheck: no drill folder (meta.json) found", file=sys.stderr)
        return 2
    print(f"{total} drill(s): {total - differ - unreadable} agree, {differ} differ, {unreadable} unreadable"
          + (f", {len(unfinished)} incomplete" if unfinished else ""))
    return 2 if unreadable else (1 if differ or unfinished else 0)
