"""``chaosdrill attest`` and ``verify-evidence --pubkey`` on a real run: a drill runs in a pytester
project, its run folder is signed with a fresh Ed25519 key, verifies, and fails naming the file when
a file or the statement is tampered with; the key never lands in the evidence."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drilltexts import BOOK_GAP
from test_plugin_drills import make_drill, run


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    d = tmp_path_factory.mktemp("keys")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (d / "key.pem").write_bytes(pem)
    (d / "key.pub.pem").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return d / "key.pem", d / "key.pub.pem", pem


def test_attest_verify_and_tamper(pytester: pytest.Pytester, keys: tuple[Path, Path, bytes]) -> None:
    key, pub, pem = keys
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    run(pytester).assert_outcomes(passed=1)
    (run_dir,) = list((pytester.path / "evidence" / "runs").iterdir())

    # The key from a CI secret: an environment variable holding the PEM text.
    out = cli("attest", str(run_dir), "--key-env", "SIGNING_KEY", env={**os.environ, "SIGNING_KEY": pem.decode()})
    assert out.returncode == 0, out.stderr
    envelope = json.loads((run_dir / "chaosdrill.intoto.json").read_text())
    st = json.loads(base64.b64decode(envelope["payload"]))
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    assert st["predicate"]["result"] == "PASSED"
    assert st["predicate"]["passedTests"] == ["phase2/drill_5_ws_book_gap: PASS"]
    names = {s["name"] for s in st["subject"]}
    assert "phase2/drill_5_ws_book_gap/meta.json" in names and "SIGNOFF.md" in names
    key_body = b"".join(pem.splitlines()[1:-1])
    for f in pytester.path.joinpath("evidence").rglob("*"):  # the key never lands in the evidence
        assert not f.is_file() or key_body not in f.read_bytes(), f

    ok = cli("verify-evidence", str(run_dir), "--pubkey", str(pub))
    assert ok.returncode == 0 and "attestation: " in ok.stdout, ok.stdout + ok.stderr

    # Another key: the signature does not verify.
    other = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.PEM,
                                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    (pytester.path / "other.pub.pem").write_bytes(other)
    bad = cli("verify-evidence", str(run_dir), "--pubkey", str(pytester.path / "other.pub.pem"))
    assert bad.returncode == 1 and "signature does not verify" in bad.stdout, bad.stdout

    # A tampered evidence file fails, naming it (SIGNOFF.md is in no SHA256SUMS, only in the attestation).
    signoff = run_dir / "SIGNOFF.md"
    signoff.write_text(signoff.read_text().replace("NOT READY", "READY TO SIGN"))
    bad = cli("verify-evidence", str(run_dir), "--pubkey", str(pub))
    assert bad.returncode == 1 and f"{signoff}: sha256 differs from the attestation" in bad.stdout, bad.stdout

    # A tampered statement (a verdict rewritten inside the envelope) fails on its signature.
    cli("attest", str(run_dir), "--key", str(key))
    st["predicate"]["passedTests"] = ["phase2/drill_5_ws_book_gap: PASS", "phase2/drill_9_extra: PASS"]
    envelope = json.loads((run_dir / "chaosdrill.intoto.json").read_text())
    envelope["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    (run_dir / "chaosdrill.intoto.json").write_text(json.dumps(envelope))
    bad = cli("verify-evidence", str(run_dir), "--pubkey", str(pub))
    assert bad.returncode == 1 and "chaosdrill.intoto.json: the signature does not verify" in bad.stdout, bad.stdout


def test_attest_with_a_bad_key_says_which_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "key.pem").write_text("not a key")
    out = cli("attest", str(tmp_path / "run"), "--key", str(tmp_path / "key.pem"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "--key" in out.stderr and "key.pem" in out.stderr
