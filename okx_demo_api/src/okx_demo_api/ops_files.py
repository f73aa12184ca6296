"""Ops files: the STOP file, ``run_manifest.json``, ``execution_fingerprint.json``, unclean-stop marker.

Both JSON files are rewritten atomically (temp file + ``os.replace``) about twice a second during the
run, so a drill can read them mid-run. Audit fields are never the literal ``unknown``: when a value
cannot be found, the field says ``not-applicable:<why>``.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

from .clock import utc_now

STOP_FILE = "STOP"
MARKER_FILE = ".running"
RUN_MANIFEST = "run_manifest.json"
PREVIOUS_MANIFEST = "run_manifest.previous.json"
FINGERPRINT = "execution_fingerprint.json"

_SRC_DIR = Path(__file__).resolve().parent


def atomic_write_json(path: Path, doc: dict) -> None:
    """Write ``doc`` to ``path`` so readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_SRC_DIR, capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not-applicable:git-unavailable({type(exc).__name__})"
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    return "not-applicable:package-not-in-a-git-checkout"


def _container_id() -> str | None:
    """The container id if this process runs in a container (cgroup path or /.dockerenv + hostname)."""
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        for part in line.split("/"):
            part = part.removeprefix("docker-").removesuffix(".scope")
            if len(part) == 64 and all(c in "0123456789abcdef" for c in part):
                return part[:12]
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return socket.gethostname()
    return None


def provenance(git_commit: str, docker_image_tag: str, build_id: str) -> dict[str, str]:
    """Resolve the audit fields: explicit values first, then what the environment shows."""
    commit = git_commit or _git_commit()
    if docker_image_tag:
        tag = docker_image_tag
    else:
        cid = _container_id()
        tag = (f"not-applicable:DOCKER_IMAGE_TAG-unset-in-container-{cid}" if cid
               else "not-applicable:not-running-in-a-container")
    if not build_id:
        short = commit[:12] if not commit.startswith("not-applicable") else "nogit"
        build_id = f"okx_demo_api-{short}"
    return {"git_commit": commit, "docker_image_tag": tag, "build_id": build_id}


def new_run_id(build_id: str) -> str:
    tag = "".join(c for c in build_id.split("-")[-1] if c.isalnum())[:8] or "build"
    return time.strftime("run_%Y%m%d_%H%M%S_", time.gmtime()) + f"{tag}_{secrets.token_hex(2)}"


class OpsFiles:
    """Owns the data-dir audit files and the control-dir STOP file."""

    def __init__(self, control_dir: Path, data_dir: Path) -> None:
        self.control_dir = Path(control_dir)
        self.data_dir = Path(data_dir)
        self.control_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop_path = self.control_dir / STOP_FILE
        self.marker = self.data_dir / MARKER_FILE

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def begin(self, run_id: str) -> dict | None:
        """Record that a run started; returns the previous run's info if it did not stop cleanly."""
        unclean = None
        if self.marker.exists():
            try:
                unclean = json.loads(self.marker.read_text() or "{}")
            except (OSError, ValueError):
                unclean = {}
            prev = self.data_dir / RUN_MANIFEST
            try:
                doc = json.loads(prev.read_text())
                if doc.get("status") == "running":
                    doc["status"] = "crashed"
                    doc["crash_detected_by"] = run_id
                    doc["crash_detected_utc"] = utc_now()
                    atomic_write_json(self.data_dir / PREVIOUS_MANIFEST, doc)
                    unclean["previous_manifest"] = str(self.data_dir / PREVIOUS_MANIFEST)
            except (OSError, ValueError):
                pass
        atomic_write_json(self.marker, {"run_id": run_id, "pid": os.getpid(), "start_utc": utc_now()})
        return unclean

    def end(self) -> None:
        """Clean stop: remove the unclean-stop marker (last thing before exit)."""
        try:
            self.marker.unlink()
        except FileNotFoundError:
            pass

    def write_manifest(self, doc: dict) -> None:
        atomic_write_json(self.data_dir / RUN_MANIFEST, doc)

    def write_fingerprint(self, doc: dict) -> None:
        atomic_write_json(self.data_dir / FINGERPRINT, doc)
