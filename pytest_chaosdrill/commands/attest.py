"""``chaosdrill attest RUN --key KEY``: sign an in-toto statement over a run's evidence (DSSE).

The key is a PEM private key file (``--key``) or the PEM text in an environment variable
(``--key-env``, e.g. a CI secret); it is read, used and never written anywhere.
``chaosdrill verify-evidence RUN --pubkey KEY.pub`` checks the signature and every digest."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import existing_folder


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", type=existing_folder, help="a run folder (evidence/runs/<run id>)")
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--key", metavar="PEM", help="the private key file (unencrypted PEM: Ed25519, ECDSA or RSA)")
    key.add_argument("--key-env", metavar="VAR", help="an environment variable holding the private key's PEM text")
    parser.add_argument("--out", metavar="FILE", help="where the envelope goes (default RUN/chaosdrill.intoto.json)")


def run(args: argparse.Namespace) -> int:
    from ..attestation import AttestationError, attest, load_signer

    folder: Path = args.run
    if args.key_env:
        pem, source = os.environ.get(args.key_env, "").encode(), f"environment variable {args.key_env}"
        if not pem:
            print(f"chaosdrill attest: {source} is empty or unset", file=sys.stderr)
            return 2
    else:
        source = f"--key {args.key}"
        try:
            pem = Path(args.key).read_bytes()
        except OSError as exc:
            print(f"chaosdrill attest: {source}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    try:
        out = attest(folder.resolve(), load_signer(pem, source), Path(args.out) if args.out else None)
    except AttestationError as exc:
        print(f"chaosdrill attest: {exc}", file=sys.stderr)
        return 2
    print(f"attested {folder}: {out}")
    return 0
