"""Kept environments (``--chaosdrill-keep``): the record of every kept environment, and on the process
backend the keeper that runs one (the docker backend's are containers: :mod:`.docker_keep`). After a drill, its service, the venue
simulator and the fault proxy are started again in a *keeper* process of their own, on the drill's own
addresses, so a person can look at the service after pytest has exited.

The keeper is a separate process group (not pytest's child for the kernel: no parent-death signal), runs
the venue and the proxy (a fresh venue with the drill's seed and demo key: what the drill's venue saw is
in the evidence's witness ledger) and the service with the drill's command and environment, and stops
them all on SIGTERM. Each keeper is recorded in ``<keep dir>/<name>.json`` (pid, its start time, the
URLs); ``chaosdrill keep-reap`` and the next drill session stop every recorded keeper. A docker
record (``kind: docker``) names its resources' label ``io.chaosdrill.kept=<keep id>``: reaping it removes
what carries that label, nothing else.

The keep dir is ``$CHAOSDRILL_KEEP_DIR`` if set, else ``$XDG_RUNTIME_DIR/chaosdrill/kept``, else
``<temp dir>/chaosdrill-<uid>/kept``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import procguard

#: How long the session waits for a keeper to say its service answers.
READY_TIMEOUT_S = 60.0


def keep_dir() -> Path:
    """Where kept environments are recorded (see the module's docstring)."""
    if os.environ.get("CHAOSDRILL_KEEP_DIR"):
        return Path(os.environ["CHAOSDRILL_KEEP_DIR"])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "chaosdrill" if runtime else (
        Path(tempfile.gettempdir()) / f"chaosdrill-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    return base / "kept"


def spawn(name: str, spec: dict[str, Any], log: Path) -> dict[str, Any]:
    """Start a keeper for ``spec`` (venue/proxy ports, seed, key, the service's command, env, folder and
    status URL) and wait, with a deadline, until its service answers. Returns its record; raises
    ``RuntimeError`` saying why when it does not come up (the keeper is stopped then)."""
    folder = keep_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    record_path = folder / f"{name}.json"
    spec_path = folder / f".{name}.spec.json"
    # the spec holds the drill's demo key: readable by this user only, removed by the keeper once read
    fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({**spec, "record": str(record_path)}, fh)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pytest_chaosdrill.backends.keeper", str(spec_path)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=spec["cwd"])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        if record.get("ready"):
            return record
        time.sleep(0.05)
    _stop_group(proc.pid, None)
    spec_path.unlink(missing_ok=True)
    record_path.unlink(missing_ok=True)
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:] if log.is_file() else []
    raise RuntimeError(f"the kept environment did not come up within {READY_TIMEOUT_S:.0f} s"
                       + (f" (exit {proc.returncode})" if proc.returncode is not None else "")
                       + (f": {' | '.join(tail)}" if tail else "") + f"; log: {log}")


def remember(name: str, data: dict[str, Any]) -> Path:
    """Record a kept environment started elsewhere (the docker backend's containers) as ``<name>.json``."""
    folder = keep_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def kept() -> list[dict[str, Any]]:
    """Every recorded keeper (its record, with ``path``)."""
    out = []
    folder = keep_dir()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        out.append({**record, "path": str(path)})
    return out


def reap() -> list[str]:
    """Stop every recorded keeper (its whole process group) and drop its record. One line per keeper."""
    lines = []
    for record in kept():
        if record.get("kind") == "docker":
            lines.append(_reap_docker(record))
            continue
        pid, start = record.get("pid"), record.get("pid_start")
        if isinstance(pid, int) and procguard.alive(pid, start):
            _stop_group(pid, start)
            lines.append(f"stopped kept {record.get('drill', '?')} (pid {pid}; status {record.get('status_url')})")
        else:
            lines.append(f"dropped the record of kept {record.get('drill', '?')} (pid {pid} no longer runs)")
        Path(record["path"]).unlink(missing_ok=True)
    return lines


def _reap_docker(record: dict[str, Any]) -> str:
    """Remove a kept docker environment (by its keep label only); its record goes once that worked."""
    from ..errors import DockerError
    from .docker_keep import remove

    name = record.get("drill", "?")
    try:
        removed = remove(str(record.get("label", "")), record.get("docker"))
    except (DockerError, OSError, ValueError) as exc:
        return f"could not remove kept {name} ({record.get('label')}): {exc}; record kept: {record['path']}"
    Path(record["path"]).unlink(missing_ok=True)
    if not removed:
        return f"dropped the record of kept {name} (no container labelled {record.get('label')} left)"
    return (f"stopped kept {name} ({sum(r.startswith('container:') for r in removed)} containers labelled "
            f"{record.get('label')}; status {record.get('status_url')})")


def _stop_group(pid: int, start: int | None, timeout: float = 15.0) -> None:
    """SIGTERM the keeper's process group (it stops its service and servers), SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and procguard.alive(pid, start):
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _serve(spec_path: Path) -> int:
    """The keeper process: venue and proxy on the drill's addresses, the service, until SIGTERM."""
    import requests

    from ..venue.auth import ApiKey
    from .local import local_harness

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    spec_path.unlink(missing_ok=True)
    record_path = Path(spec["record"])
    stop = {"now": False}

    def terminated(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    key = ApiKey(**spec["api_key"]) if spec.get("api_key") else None
    with local_harness(seed=spec["seed"], venue_port=spec["venue_port"], proxy_port=spec["proxy_port"],
                       api_key=key) as harness:
        env = {**os.environ, **spec["env"]}
        with open(spec["service_log"], "ab") as log:
            service = subprocess.Popen(spec["command"], env=env, cwd=spec["cwd"], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT)  # same process group as the keeper
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S - 5
            answered = False
            with requests.Session() as s:
                s.trust_env = False
                while not answered and not stop["now"] and service.poll() is None and time.monotonic() < deadline:
                    try:
                        answered = s.get(spec["status_url"], timeout=1).status_code == 200
                    except requests.RequestException:
                        time.sleep(0.05)
            if not answered:
                print(f"keeper: the service did not answer {spec['status_url']}"
                      + (f" (exit {service.returncode})" if service.poll() is not None else ""), flush=True)
                return 1
            record = {"ready": True, "pid": os.getpid(), "pid_start": procguard.process_start_time(os.getpid()),
                      "service_pid": service.pid, "drill": spec["drill"], "run_id": spec["run_id"],
                      "status_url": spec["status_url"], "venue_url": harness.info["venue"],
                      "proxy": harness.proxy_listen, "service_log": spec["service_log"],
                      "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            tmp = record_path.with_name(record_path.name + ".tmp")
            tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, record_path)
            print(f"keeper: {spec['drill']} kept: status {spec['status_url']}, venue {harness.info['venue']}", flush=True)
            while not stop["now"] and service.poll() is None:
                time.sleep(0.2)
        finally:
            if service.poll() is None:
                service.terminate()
                try:
                    service.wait(10)
                except subprocess.TimeoutExpired:
                    service.kill()
            record_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - the keeper process (spawn starts it)
    sys.exit(_serve(Path(sys.argv[1])))
