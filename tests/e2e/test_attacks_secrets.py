"""Planted secrets against a REAL drill: the hostile front (tests/e2e/hostile/front.py, echo_secret mode)
echoes every planted secret into its status (enum fields → contract findings → the reason → JUnit and
the terminal), its log (with a non-UTF-8 byte on every line), its stdout and its run manifest. Then
EVERY byte the run wrote is searched for every secret in every form: none may be found. Names that only
look like secrets (a hook log's ``token`` field, the prose "reason token: fail closed") must survive."""
from __future__ import annotations

import gzip
import html
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from pytest_chaosdrill.redaction import MARKER

from test_attacks_hostile import BOOK_GAP, HOSTILE, TEST_MODULE, assert_complete, assert_strict_json_tree, only_folder

DRILL = "drill_5_ws_book_gap"
# Planted in pytest's environment (the target inherits it): secret names with a quote, a backslash,
# Latin-1 and non-Latin-1 characters; a plain session token; passwords inside URLs under innocuous names.
PLANTED_ENV = {
    "CHAOS_PLANT_API_SECRET": 'q"uote\\back-slash-Sx1',
    "CHAOS_PLANT_PASSPHRASE": "pässwörd-Ärger-Lt2",
    "CHAOS_PLANT_TOKEN": "tök€n-日本-Nu3",
    "SESSION_TOKEN": "sess-tok-8f3a9c1e",
    "DB_URL": "postgres://dbuser:Pw-in-url-Hq5@db.internal/db",
    "DB2_URL": "mysql://u2:Pct%2Fenc%40ded-Jm6@h/db",
}
# Planted by the target file (tests/e2e/hostile/secrets.yaml): under secret names, and one value that only
# its `secrets:` list names (the front gets it under the innocuous HOSTILE_ECHO_EXTRA).
TARGET_SECRETS = ["tgt-api-key-Qx9", "tgt-secret-Wv7", "tgt-passphrase-Zk3",
                  f"only-in-secrets-list-{DRILL}-Yp4"]
SECRETS = [v for k, v in PLANTED_ENV.items() if not k.endswith("_URL")] + TARGET_SECRETS + [
    "Pw-in-url-Hq5", "dbuser:Pw-in-url-Hq5", "Pct%2Fenc%40ded-Jm6", "Pct/enc@ded-Jm6"]
ECHO_VARS = list(PLANTED_ENV) + ["OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE"]


def forms(secret: str) -> dict[str, bytes]:
    """Every encoding of ``secret`` a service, a log or an evidence writer is likely to produce."""
    out = {"raw": secret.encode("utf-8"),
           "json ensure_ascii": json.dumps(secret)[1:-1].encode(),
           "json utf-8": json.dumps(secret, ensure_ascii=False)[1:-1].encode("utf-8"),
           "repr": repr(secret)[1:-1].encode("utf-8"),
           "quote safe=''": quote(secret, safe="").encode(), "quote": quote(secret).encode(),
           "quote_plus": quote_plus(secret).encode(),
           "xml": html.escape(secret).encode("utf-8")}
    try:
        out["latin-1"] = secret.encode("latin-1")
    except UnicodeEncodeError:
        pass
    return out


def every_byte(root: Path, stdout: bytes, stderr: bytes, junit: Path) -> dict[str, bytes]:
    """What the run wrote: the whole evidence tree (IEB archive members and gzip files opened), the JUnit XML,
    pytest's output."""
    blobs = {"stdout": stdout, "stderr": stderr, str(junit): junit.read_bytes()}
    for p in sorted((root / "evidence").rglob("*")):
        if p.is_file() and not p.is_symlink():
            blobs[str(p)] = p.read_bytes()
            if p.name.endswith(".tar.gz"):
                with tarfile.open(p) as tar:
                    for m in tar.getmembers():
                        if m.isfile():
                            blobs[f"{p}:{m.name}"] = tar.extractfile(m).read()  # type: ignore[union-attr]
                            if m.name.endswith(".gz"):  # the compressed timeline inside the archive
                                blobs[f"{p}:{m.name}:gunzip"] = gzip.decompress(blobs[f"{p}:{m.name}"])
            elif p.name.endswith(".gz"):  # timeline.jsonl.gz: a secret must not hide in compressed bytes
                blobs[f"{p}:gunzip"] = gzip.decompress(blobs[str(p)])
    return blobs


# from_start: the echo begins with the first answer (the steady state is never proven, the reason quotes
# a finding); midway: it begins once the fault was seen, half the answers refused (raw bodies kept).
ECHO_WHEN = {"from_start": {}, "midway": {"HOSTILE_AFTER_BLOCKED": "5", "HOSTILE_ECHO_RAW": "1"}}


@pytest.fixture(scope="module", params=sorted(ECHO_WHEN))
def echoed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real drill against the echoing service per echo timing (one run serves every assertion)."""
    root = tmp_path_factory.mktemp(f"secrets_{request.param}")
    drills = root / "mydrills"
    drills.mkdir()
    (drills / "gap.yaml").write_text(BOOK_GAP, encoding="utf-8")
    (root / "test_drills.py").write_text(TEST_MODULE, encoding="utf-8")
    # A user's hook that prints a secret: captured output reaches the terminal (-rA) and JUnit (system-out).
    (root / "conftest.py").write_text(
        "import os\n\ndef pytest_chaosdrill_evidence_written(item, folder, verdict):\n"
        "    print('hook saw', os.environ['SESSION_TOKEN'], os.environ['CHAOS_PLANT_API_SECRET'])\n", encoding="utf-8")
    junit = root / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOSTILE_", "PYTEST_"))}
    env.update(PLANTED_ENV, HOSTILE_ECHO_VARS=",".join(ECHO_VARS), **ECHO_WHEN[request.param])
    # Adversarial settings: INFO logs live on the terminal, captured into the report and the JUnit file, every
    # report shown (-rA).
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", f"--basetemp={root / 'basetemp'}",
           "--chaosdrill-drills", str(drills), f"--chaosdrill-target={HOSTILE / 'secrets.yaml'}",
           f"--junitxml={junit}", "-o", "junit_logging=all", "--log-level=INFO", "-o", "log_cli=true",
           "--log-cli-level=INFO"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=170)
    return {"when": request.param, "root": root, "junit": junit, "proc": proc, "folder": only_folder(root / "evidence"),
            "blobs": every_byte(root, proc.stdout, proc.stderr, junit)}


def test_the_service_really_echoed_every_secret(echoed: dict[str, Any]) -> None:
    """Not vacuous: the service's own files (outside the evidence) hold every planted secret in clear."""
    data = echoed["root"] / "basetemp"
    raw_log = b"".join(p.read_bytes() for p in data.rglob("hostile.log"))
    manifest = b"".join(p.read_bytes() for p in data.rglob("hostile_manifest.json"))
    assert raw_log.startswith(b"\xff hostile echo: secret=")  # a real non-UTF-8 byte on each line
    for s in SECRETS:
        if s in ("Pct/enc@ded-Jm6",):  # the decoded form: the service only ever wrote it URL-encoded
            continue
        assert s.encode() in raw_log, s
    for s in [PLANTED_ENV["SESSION_TOKEN"], TARGET_SECRETS[-1]]:
        assert s.encode() in manifest
    assert echoed["proc"].returncode == 1, echoed["proc"].stdout[-3000:]


def test_no_secret_in_any_form_in_any_byte_the_run_wrote(echoed: dict[str, Any]) -> None:
    blobs: dict[str, bytes] = echoed["blobs"]
    assert len(blobs) > 30  # the evidence tree, its archive's members, JUnit, stdout, stderr
    leaks = [f"{name}: {s!r} as {how}" for s in SECRETS for how, f in forms(s).items() for name, b in blobs.items()
             if f in b]
    assert not leaks, "\n".join(leaks[:30])


def test_the_secrets_reached_every_output_and_were_redacted_there(echoed: dict[str, Any]) -> None:
    """The echoed secrets did reach the reason, the terminal, the JUnit XML, the timeline, the observed
    status, the diff, the manifest and the log copies: as the marker, never in clear."""
    folder: Path = echoed["folder"]
    meta = assert_complete(folder)
    if echoed["when"] == "from_start":
        assert meta["verdict"] == "NOT PROVEN" and "status not contract-valid" in meta["reason"]
    else:
        assert meta["verdict"] == "FAIL" and "status samples violate the contract" in meta["reason"]
        assert MARKER.encode() in (folder / "raw_samples.jsonl").read_bytes()
    assert MARKER in meta["reason"]
    out = echoed["proc"].stdout.decode("utf-8", "replace")
    assert "Traceback" not in out and "INTERNALERROR" not in out
    junit = echoed["junit"].read_text(encoding="utf-8")
    assert MARKER in out and MARKER in junit
    assert f"hook saw {MARKER} {MARKER}" in out and f"hook saw {MARKER} {MARKER}" in junit  # captured output too
    # midway, the observed status is the first matching one after the fault, before the echo armed
    seen = ("observed_status.json", "diff.txt") if echoed["when"] == "from_start" else ("raw_samples.jsonl",)
    assert MARKER.encode() in gzip.decompress((folder / "timeline.jsonl.gz").read_bytes())
    for name in ("hostile_manifest.json", "logs/hostile.log", "notes.md", "validation.log") + seen:
        assert MARKER.encode() in (folder / name).read_bytes(), name
    copied = (folder / "logs" / "hostile.log").read_bytes()
    assert copied.startswith(b"\xff hostile echo: secret=" + MARKER.encode())  # byte-level copy, redacted
    assert list((echoed["root"] / "evidence" / "runs").glob("*/report.html"))
    assert list((echoed["root"] / "evidence" / "runs").glob("*/SIGNOFF.md"))
    assert assert_strict_json_tree(echoed["root"] / "evidence") >= 5


def test_names_that_only_look_secret_survive(echoed: dict[str, Any]) -> None:
    """Value-based redaction: a hook log's ``token`` field and the prose "reason token" are not secrets."""
    hooks = (echoed["folder"] / "hooks.log").read_text(encoding="utf-8")
    line = json.loads(hooks.splitlines()[0])
    assert line["token"] == "KILL_UNREGISTERED_SUBSYSTEM_TOKEN" and line["detail"] == "reason token: fail closed"


def test_log_filter_redacts_a_record_and_its_arguments(caplog: pytest.LogCaptureFixture) -> None:
    """Unit: the ``chaosdrill`` logger's filter redacts the formatted message (args included)."""
    import logging

    from pytest_chaosdrill.redaction import Redactor, guard_logs

    guard_logs(Redactor(['q"uote\\back-slash-unit']))
    with caplog.at_level(logging.INFO, logger="chaosdrill"):
        logging.getLogger("chaosdrill").info("reason: %s", "'q\"uote\\\\back-slash-unit' is not one of [...]")
        logging.getLogger("chaosdrill").info("token: %s", "KILL_UNREGISTERED_SUBSYSTEM_TOKEN")
    assert caplog.messages == [f"reason: '{MARKER}' is not one of [...]", "token: KILL_UNREGISTERED_SUBSYSTEM_TOKEN"]
