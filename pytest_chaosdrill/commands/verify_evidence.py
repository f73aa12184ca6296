"""``chaosdrill verify-evidence DIR``: re-check every hash in an evidence tree."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import existing_path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="DIR", type=existing_path,
                        help="evidence folders or trees (a drill folder, a run folder, or the whole evidence/)")
    parser.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    parser.add_argument("--pubkey", metavar="PEM", help="also verify each run folder's in-toto attestation "
                        "(chaosdrill attest) with this public key: its signature and every file's digest")
    parser.add_argument("--attestation", metavar="FILE", help="the envelope, when it is not RUN/chaosdrill.intoto.json")


def run(args: argparse.Namespace) -> int:
    from ..evidence import INCOMPLETE, IN_PROGRESS, mark_incomplete, verify_tree

    total, bad = 0, []
    for raw in args.paths:  # a folder whose runner died is marked INCOMPLETE first, never taken as finished
        base = Path(raw).resolve()
        for candidate in (base, base.parent, base.parent.parent):
            if (candidate / "runs").is_dir():
                for line in mark_incomplete(candidate):
                    print(f"marked {line}")
                break
    for raw in args.paths:
        root: Path = raw
        # Follow the latest-run links (evidence/phase2/drill_N -> runs/...) too.
        tree = root.resolve() if root.is_symlink() else root
        checked, problems = verify_tree(tree)
        problems += [f"{m.parent}: INCOMPLETE: the runner died during this drill (see its meta.json)"
                     for m in sorted(tree.rglob(INCOMPLETE))]
        problems += [f"{m.parent}: still IN PROGRESS (its runner is alive)" for m in sorted(tree.rglob(IN_PROGRESS))]
        total += checked
        bad += problems
        if not args.quiet:
            print(f"{root}: {checked} hash(es) checked, {len(problems)} problem(s)")
    if args.pubkey:
        checked, problems = _attestations(args)
        total += checked
        bad += problems
    for p in bad:
        print(("PROBLEM " if "INCOMPLETE" in p or "IN PROGRESS" in p or "attest" in p or "signature" in p
                else "MISMATCH ") + p)
    if total == 0:
        print("chaosdrill verify-evidence: no SHA256SUMS or .sha256 file found; nothing was verified", file=sys.stderr)
        return 2
    print(f"{'FAILED' if bad else 'OK'}: {total} hash(es) checked, {len(bad)} problem(s)")
    return 1 if bad else 0


def _attestations(args: argparse.Namespace) -> tuple[int, list[str]]:
    """Verify the attestation of every run folder named (a folder holding meta.json files)."""
    from ..attestation import AttestationError, load_public_key, verify

    try:
        key = load_public_key(Path(args.pubkey).read_bytes(), f"--pubkey {args.pubkey}")
    except OSError as exc:
        return 0, [f"--pubkey {args.pubkey}: {exc.strerror or exc}"]
    except AttestationError as exc:
        return 0, [str(exc)]
    total, problems = 0, []
    for raw in args.paths:
        run = Path(raw).resolve()
        checked, found = verify(run, key, Path(args.attestation) if args.attestation else None)
        if not args.quiet:
            print(f"{raw}: attestation: {checked} file digest(s) checked, {len(found)} problem(s)")
        total += checked
        problems += found
    return total, problems
