"""Process-backend targets never outlive pytest (Linux): parent-death signal, group watchdog, pid registry.

Three layers, because each alone has a gap:

1. :func:`preexec_with_pdeathsig` makes the kernel SIGKILL the target's direct child (the
   process group leader) when the process that started it dies, even by SIGKILL. It only
   reaches that one process, and it fires when the *thread* that forked exits, so targets must
   be started from a thread that lives as long as they do (pytest's main thread does).
2. :class:`GroupWatchdog` covers the target's own children (grandchildren of pytest): a tiny
   ``python -c`` process per target, in its own session, that blocks reading a pipe whose only
   write end pytest holds. When pytest dies the kernel closes that end, the read returns EOF
   and the watchdog SIGKILLs the target's whole process group. A normal stop writes one byte
   first, so the watchdog exits without killing anything. A child that leaves the group
   (``setsid``, double fork into a new session) escapes it: that needs a cgroup, out of scope.
3. :class:`PidRegistry` writes one ``<pid>.json`` per running target, so :func:`reap` can
   remove leftovers of a run whose watchdog could not act (e.g. the machine's OOM killer took
   both): it kills a recorded group only when its owner (pytest) is dead *and* the recorded
   process start time still matches, so a recycled pid is never killed.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1

# The watchdog: block on the pipe; EOF (the parent died) -> SIGKILL the group; a byte -> stand down.
_WATCHDOG = """
import os, signal, sys
fd, pgid = int(sys.argv[1]), int(sys.argv[2])
try:
    data = os.read(fd, 1)
except OSError:
    data = b""
if not data:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def preexec_with_pdeathsig(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when its parent dies.

    Use it with ``start_new_session=True`` (Popen calls ``setsid`` before ``preexec_fn``), so the
    child leads its own process group. After ``prctl`` it checks ``getppid``: if the parent died
    between fork and prctl the signal would never come, so the child kills itself instead.
    """
    parent = os.getpid()
    libc = _libc()  # loaded in the parent: the child should do as little as possible before exec

    def preexec() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(127)  # refusing to start an unguarded target beats starting one that can leak
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


class GroupWatchdog:
    """Kills process group ``pgid`` if this process dies before :meth:`release` is called."""

    def __init__(self, pgid: int, *, python: str = sys.executable) -> None:
        self.pgid = pgid
        read_fd, self._write_fd = os.pipe()  # both non-inheritable: no other child keeps the pipe open
        try:
            self.proc = subprocess.Popen(
                [python, "-S", "-c", _WATCHDOG, str(read_fd), str(pgid)], pass_fds=(read_fd,),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)  # a terminal's Ctrl-C must not take the watchdog first
        finally:
            os.close(read_fd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self, timeout: float = 5.0) -> None:
        """Stand the watchdog down (the group was stopped normally); never kills the group."""
        if self._write_fd is None:
            return
        try:
            os.write(self._write_fd, b"x")
        except OSError:
            pass
        os.close(self._write_fd)
        self._write_fd = None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def trigger(self, timeout: float = 5.0) -> None:
        """Act as if this process died: the watchdog kills the group (used by tests)."""
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        self.proc.wait(timeout=timeout)


# ---------------------------------------------------------------------------------------
# /proc helpers
# ---------------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(") ", 1)[1].split()


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_pgid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X")


def alive(pid: int, start_time: int | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if given, started at ``start_time``."""
    started = process_start_time(pid)
    if started is None or _is_zombie(pid):
        return False
    return start_time is None or started == start_time


def group_members(pgid: int, not_before: int | None = None) -> list[int]:
    """Live pids whose process group is ``pgid`` (started at or after ``not_before``, if given)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if not fields or fields[0] in ("Z", "X") or int(fields[2]) != pgid:
            continue
        if not_before is not None and int(fields[19]) < not_before:
            continue
        out.append(int(entry))
    return out


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------
def default_pid_dir() -> Path:
    """Per-user state folder: ``$XDG_RUNTIME_DIR/chaosdrill/pids`` or ``/tmp/chaosdrill-<uid>/pids``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / "chaosdrill" / "pids"
    return Path(f"/tmp/chaosdrill-{os.getuid()}") / "pids"


def _private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) and refuse a symlink or a folder another user owns (planted in /tmp)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    checks = [path]
    if path.parent.name.startswith("chaosdrill"):
        checks.append(path.parent)  # the per-user folder of the default location
    for p in checks:
        st = p.lstat()
        if p.is_symlink() or st.st_uid != os.getuid():
            raise PermissionError(f"{p} is a symlink or owned by uid {st.st_uid}, not {os.getuid()}: "
                                  "refusing to keep pid records there")
    return path


class PidRegistry:
    """One JSON record per running target, so a later run can reap what a killed run left behind."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.dir = _private_dir(Path(directory) if directory is not None else default_pid_dir())

    def register(self, pid: int, *, command: Sequence[str] | str, run_id: str = "",
                 owner_pid: int | None = None, pgid: int | None = None) -> Path:
        """Record target ``pid`` (call right after it started); returns the record's path."""
        owner = os.getpid() if owner_pid is None else owner_pid
        record = {"pid": pid, "start_time": process_start_time(pid),
                  "pgid": process_pgid(pid) if pgid is None else pgid,
                  "command": list(command) if not isinstance(command, str) else [command],
                  "run_id": run_id, "owner_pid": owner, "owner_start_time": process_start_time(owner),
                  "registered_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        path = self.dir / f"{pid}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)  # a reaper never sees half a record
        return path

    def unregister(self, pid: int) -> None:
        """Forget target ``pid`` (call once it and its group are stopped)."""
        try:
            (self.dir / f"{pid}.json").unlink()
        except FileNotFoundError:
            pass

    def records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
                rec["_path"] = str(path)
                out.append(rec)
            except (OSError, ValueError):
                out.append({"_path": str(path), "_broken": True})
        return out


def reap(directory: str | os.PathLike[str] | None = None, *, timeout: float = 5.0) -> list[str]:
    """Kill targets whose owning pytest is dead; returns one line per record acted on.

    A record is left alone while its owner runs (same pid *and* start time). Otherwise its
    process group is SIGKILLed only if the recorded leader still runs with the recorded start
    time, or, the leader gone, through members that started no earlier than it did (a group id
    stays taken while any member lives, so those are the target's children). A recycled pid
    (same number, other start time) is never signalled. Records of gone targets are removed.
    """
    registry = PidRegistry(directory)
    lines: list[str] = []
    for rec in registry.records():
        path = Path(rec["_path"])
        if rec.get("_broken"):
            path.unlink(missing_ok=True)
            lines.append(f"removed unreadable record {path.name}")
            continue
        pid, pgid, started = int(rec["pid"]), int(rec["pgid"]), rec.get("start_time")
        owner = int(rec["owner_pid"])
        if alive(owner, rec.get("owner_start_time")):
            continue  # its pytest still runs: not a leftover
        cmd = " ".join(rec.get("command", []))[:120]
        if alive(pid, started) and process_pgid(pid) == pgid:
            victims = group_members(pgid, not_before=started)
        elif alive(pid):
            path.unlink(missing_ok=True)
            lines.append(f"pid {pid} is now a different process (start time changed): not killed; record removed")
            continue
        else:
            victims = group_members(pgid, not_before=started) if started is not None else []
        if victims:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while group_members(pgid, not_before=started) and time.monotonic() < deadline:
                time.sleep(0.01)
            left = group_members(pgid, not_before=started)
            state = "" if not left else f"; {len(left)} still running after {timeout:g}s"
            lines.append(f"killed leftover target pid {pid} (process group {pgid}, {len(victims)} process(es), "
                         f"run {rec.get('run_id') or '?'}, owner pid {owner} gone): {cmd}{state}")
            if left:
                continue  # keep the record for the next reap
        else:
            lines.append(f"removed stale record for pid {pid} (no longer running): {cmd}")
        path.unlink(missing_ok=True)
    return lines


# ---------------------------------------------------------------------------------------
# The two calls the process backend makes
# ---------------------------------------------------------------------------------------
def guard_target(pid: int, command: Sequence[str] | str, *, run_id: str = "",
                 registry_dir: str | os.PathLike[str] | None = None) -> GroupWatchdog | None:
    """Right after a target started (as group leader): start its watchdog and record it.

    Best effort: a registry folder that cannot be used is skipped (the watchdog and the
    parent-death signal still guard the target); a watchdog that cannot start returns None.
    """
    try:
        PidRegistry(registry_dir).register(pid, command=command, run_id=run_id)
    except OSError:
        pass
    try:
        return GroupWatchdog(pid)
    except OSError:
        return None


def unguard_target(pid: int, watchdog: GroupWatchdog | None, *,
                   registry_dir: str | os.PathLike[str] | None = None) -> None:
    """After the target's group was stopped: stand its watchdog down and drop its record."""
    if watchdog is not None:
        watchdog.release()
    try:
        PidRegistry(registry_dir).unregister(pid)
    except OSError:
        pass
