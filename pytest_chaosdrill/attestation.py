"""Signed evidence: an in-toto statement over a run folder, in a DSSE envelope signed with a local key.

The statement (in-toto Statement v1, built with ``in-toto-attestation``) has one subject per evidence
file of the run (its path in the run folder and its sha256) and the test-result predicate
(``https://in-toto.io/attestation/test-result/v0.1``): ``result``, ``passedTests``/``failedTests``/
``warnedTests`` (``<drill folder>: <verdict>``) and ``configuration`` (the source commit the run was
made from). The envelope is signed and verified by ``securesystemslib`` (DSSE), with the operator's
key (a PEM private key: Ed25519, ECDSA or RSA); only the public key is needed to verify, and no key is
ever written to the evidence.
"""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

#: The attestation's file name, in the run folder (never one of its own subjects).
ATTESTATION = "chaosdrill.intoto.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
#: Verdicts that count as a passed drill; everything else (FAIL, ERROR, NOT PROVEN, ...) is failed.
_PASSED = {"PASS"}
_WARNED = {"SKIPPED"}


class AttestationError(Exception):
    """An attestation that cannot be made or does not verify; the message names the file."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def evidence_files(run: Path) -> list[Path]:
    """Every file of the run folder (sorted, symlinks not followed), except the attestation itself."""
    return sorted(p for p in run.rglob("*") if p.is_file() and not p.is_symlink() and p.name != ATTESTATION)


def statement(run: Path) -> dict[str, Any]:
    """The in-toto statement (plain JSON) over the run folder ``run``."""
    from google.protobuf.json_format import MessageToDict
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    files = evidence_files(run)
    if not files:
        raise AttestationError(f"{run}: no evidence files to attest")
    subjects = [ResourceDescriptor(name=p.relative_to(run).as_posix(), digest={"sha256": _sha256(p)}).pb
                for p in files]
    passed, warned, failed, commits = [], [], [], set()
    for meta_path in sorted(run.rglob("meta.json")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AttestationError(f"{meta_path}: unreadable ({exc})") from None
        verdict = str(meta.get("verdict", "UNKNOWN"))
        entry = f"{meta_path.parent.relative_to(run).as_posix()}: {verdict}"
        (passed if verdict in _PASSED else warned if verdict in _WARNED else failed).append(entry)
        if meta.get("commit"):
            commits.add(str(meta["commit"]))
    if not (passed or warned or failed):
        raise AttestationError(f"{run}: no drill (meta.json) in this folder; give a run folder (evidence/runs/<id>)")
    predicate: dict[str, Any] = {
        "result": "FAILED" if failed else "WARNED" if warned else "PASSED",
        "passedTests": passed, "warnedTests": warned, "failedTests": failed,
        "configuration": [{"name": "source", "digest": {"gitCommit": c}} for c in sorted(commits)],
        "url": run.name,
    }
    st = Statement(subjects, TEST_RESULT, predicate)
    st.validate()
    return MessageToDict(st.pb, preserving_proto_field_name=False)


def load_signer(pem: bytes, source: str) -> Any:
    """A securesystemslib signer for the PEM private key ``pem`` (``source`` names it in errors)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        return CryptoSigner(load_pem_private_key(pem, password=None))
    except (ValueError, TypeError) as exc:
        raise AttestationError(f"{source}: not a usable unencrypted PEM private key ({exc})") from None


def load_public_key(pem: bytes, source: str) -> Any:
    """A securesystemslib key for the PEM public key ``pem``."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    try:
        return SSlibKey.from_crypto(load_pem_public_key(pem))
    except (ValueError, TypeError) as exc:
        raise AttestationError(f"{source}: not a usable PEM public key ({exc})") from None


def attest(run: Path, signer: Any, out: Path | None = None) -> Path:
    """Sign the statement over ``run``; write the DSSE envelope (default ``run/chaosdrill.intoto.json``)."""
    from securesystemslib.dsse import Envelope

    payload = json.dumps(statement(run), sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    out = out or run / ATTESTATION
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(envelope.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


def verify(run: Path, key: Any, envelope_path: Path | None = None) -> tuple[int, list[str]]:
    """Check the envelope's signature with ``key``, then every subject's digest against the run folder.

    Returns (files checked, problems); each problem names the file."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    envelope_path = envelope_path or run / ATTESTATION
    try:
        envelope = Envelope.from_dict(json.loads(envelope_path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return 0, [f"{envelope_path}: no attestation (make one with `chaosdrill attest {run} --key ...`)"]
    except (ValueError, KeyError, TypeError) as exc:
        return 0, [f"{envelope_path}: not a DSSE envelope ({type(exc).__name__}: {exc})"]
    try:
        envelope.verify([key], 1)
    except VerificationError as exc:
        return 0, [f"{envelope_path}: the signature does not verify with the given key: the statement was "
                   f"altered or signed with another key ({exc})"]
    if envelope.payload_type != PAYLOAD_TYPE:
        return 0, [f"{envelope_path}: payload type {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}"]
    st = json.loads(envelope.payload)
    problems, checked, named = [], 0, set()
    for subject in st.get("subject", []):
        name = subject.get("name", "")
        named.add(name)
        path = run / name
        if not path.is_file():
            problems.append(f"{path}: attested but missing")
            continue
        checked += 1
        if _sha256(path) != subject.get("digest", {}).get("sha256"):
            problems.append(f"{path}: sha256 differs from the attestation (file changed after signing)")
    for path in evidence_files(run):
        if path.relative_to(run).as_posix() not in named:
            problems.append(f"{path}: not in the attestation (added after signing)")
    return checked, problems


def envelope_statement(envelope_path: Path) -> dict[str, Any]:
    """The statement inside an envelope, unverified (for display)."""
    data = json.loads(envelope_path.read_text(encoding="utf-8"))
    return json.loads(base64.b64decode(data["payload"]))
