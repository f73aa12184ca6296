"""Signals to a container's processes where the cluster's nodes are this machine (the project's
loopback cluster, kind-like setups): the container is found by its ID in the kernel's cgroup paths.
The API has no verb to kill a container; the fault's proof still comes from the API
(``restartCount``, ``lastState.terminated.exitCode``)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def container_pids(container_id: str) -> list[int]:
    """PIDs on this machine whose cgroup path names ``container_id`` (``containerd://<id>`` accepted)."""
    cid = container_id.split("://", 1)[-1]
    if len(cid) < 12:
        return []
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if cid in (proc / "cgroup").read_text():
                pids.append(int(proc.name))
        except OSError:
            continue
    return sorted(pids)


def kill_container(container_id: str, sig: int = signal.SIGKILL) -> dict[str, object]:
    """Send ``sig`` to every process of the container (as the runtime's ``kill --all`` does)."""
    sent = signal_pids(container_pids(container_id), sig)
    return {"container_id": container_id, "pids": sent, "signal": signal.Signals(sig).name}


def kubelet_pids(node: str) -> list[int]:
    """PIDs on this machine of the kubelet serving ``node``: a ``kubelet`` process whose command line
    names the node (``--hostname-override=<node>``), else, for a node named after this machine, the
    only kubelet without that flag. Empty when the node's kubelet is not here."""
    named, plain = [], []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "kubelet":
                continue
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        flags = [a.decode(errors="replace") for a in args]
        override = [a.split("=", 1)[1] for a in flags if a.startswith("--hostname-override=")]
        if node in override:
            named.append(int(proc.name))
        elif not override:
            plain.append(int(proc.name))
    if named:
        return sorted(named)
    return plain if len(plain) == 1 and node.lower() == os.uname().nodename.lower() else []


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of ``pid`` (``T``: stopped), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def signal_pids(pids: list[int], sig: int) -> list[int]:
    """Send ``sig`` to each of ``pids``; the ones that received it."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent.append(pid)
        except ProcessLookupError:
            pass
    return sent


def continue_stopped_kubelets(nodes: list[str]) -> list[str]:
    """SIGCONT every kubelet of ``nodes`` that is a stopped process of this machine (what a node-loss drill
    killed mid-fault left); one line per kubelet continued."""
    out = []
    for node in nodes:
        stopped = [pid for pid in kubelet_pids(node) if process_state(pid) == "T"]
        for pid in signal_pids(stopped, signal.SIGCONT):
            out.append(f"continued the stopped kubelet of node {node} (pid {pid})")
    return out


CGROUP_ROOT = Path("/sys/fs/cgroup")

#: The memory pressure process: moved into the container's memory cgroup before it allocates (so
#: every page it touches is charged there), then grows 1 MiB at a time until killed or ``argv[1]`` MiB;
#: it exits by itself once its parent (pytest, pid ``argv[2]``) is gone, so a killed run leaves it
#: behind for no longer than a poll.
_PRESSURE = ("import os, sys, time\nparent = int(sys.argv[2])\nsys.stdin.readline()\nchunks = []\n"
             "for _ in range(int(sys.argv[1])):\n    chunks.append(bytearray(1 << 20))\n"
             "while os.getppid() == parent:\n    time.sleep(0.1)\n")


def memory_cgroup(pid: int, root: Path = CGROUP_ROOT) -> tuple[Path, dict[str, str]] | None:
    """The memory cgroup folder of ``pid`` and its file names (``usage``, ``limit``, ``events``):
    cgroup v1 (``memory`` controller) or v2 (unified); None when it cannot be read."""
    try:
        return parse_memory_cgroup(Path(f"/proc/{pid}/cgroup").read_text(), root)
    except OSError:
        return None


def parse_memory_cgroup(text: str, root: Path = CGROUP_ROOT) -> tuple[Path, dict[str, str]] | None:
    """:func:`memory_cgroup` from the text of ``/proc/<pid>/cgroup``."""
    lines = [line.split(":", 2) for line in text.splitlines() if line.count(":") >= 2]
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            return root / "memory" / path.lstrip("/"), {"usage": "memory.usage_in_bytes",
                                                         "limit": "memory.limit_in_bytes", "events": "memory.oom_control"}
    for hierarchy, controllers, path in lines:
        if hierarchy == "0" and controllers == "":
            return root / path.lstrip("/"), {"usage": "memory.current", "limit": "memory.max", "events": "memory.events"}
    return None


def oom_kills(folder: Path, names: dict[str, str]) -> int | None:
    """The kernel's count of OOM kills in that memory cgroup (``oom_kill`` of ``memory.oom_control`` or
    ``memory.events``); None when the kernel does not say."""
    try:
        for line in (folder / names["events"]).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def oom_kill_container(container_id: str, margin_mib: int = 32, timeout: float = 15.0) -> dict[str, object]:
    """Push the container over a memory limit until the kernel's OOM killer ends its service, as a leak
    in the service would: the container's memory cgroup limit lowered to its usage + ``margin_mib``, its
    processes made the OOM killer's first choice (``oom_score_adj`` 1000: as the process whose memory
    grew), and a pressure process in that cgroup allocating past the limit. The pressure process is
    always ended; if no kill happened the limit is put back. Proof (the kernel): the service's processes
    gone and the cgroup's ``oom_kill`` count up."""
    pids = container_pids(container_id)
    info: dict[str, object] = {"container_id": container_id, "pids": pids, "oom_killed": False}
    found = memory_cgroup(pids[0]) if pids else None
    if found is None:
        info["error"] = "the container's memory cgroup was not found on this machine"
        return info
    folder, names = found
    limit_file = folder / names["limit"]
    before_limit = limit_file.read_text().strip()
    usage = int((folder / names["usage"]).read_text())
    kills_before = oom_kills(folder, names)
    limit = usage + margin_mib * (1 << 20)
    info.update(cgroup=str(folder), usage_bytes=usage, limit_before=before_limit, limit_set=limit,
                oom_kills_before=kills_before)
    for pid in pids:   # raising oom_score_adj needs no privilege (lowering would); a process gone is skipped
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/oom_score_adj").write_text("1000")
    limit_file.write_text(str(limit))
    hog = subprocess.Popen([sys.executable, "-c", _PRESSURE, str(margin_mib * 4), str(os.getpid())],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (folder / "cgroup.procs").write_text(str(hog.pid))
        info["sent_mono"] = time.monotonic()
        if hog.stdin is not None:
            hog.stdin.write(b"go\n")
            hog.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p != hog.pid for p in container_pids(container_id)):
            time.sleep(0.005)
        left = [p for p in container_pids(container_id) if p != hog.pid]
        info["gone_mono"] = time.monotonic()
        info["processes_gone"] = not left
        info["oom_kills_after"] = oom_kills(folder, names)
    finally:
        hog.kill()
        hog.wait()
    kills_after = info.get("oom_kills_after")
    info["oom_killed"] = bool(info.get("processes_gone")) and (
        kills_before is None or kills_after is None or kills_after > kills_before)
    if not info.get("processes_gone"):
        with contextlib.suppress(OSError):
            limit_file.write_text(before_limit)
    return info


_PROBE = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()"


def netns_of(container_id: str) -> str | None:
    """The network namespace of the container (``/proc/<pid>/ns/net`` of one of its processes)."""
    pids = container_pids(container_id)
    return f"/proc/{pids[0]}/ns/net" if pids else None


def cut_rules(status_port: int, mark: str) -> list[list[str]]:
    """The iptables rules of a cut, in insertion order (each inserted first, so the last is on top):
    everything dropped in and out of the pod except its loopback and its status port (the harness keeps
    sampling it), each rule commented ``mark`` so the release removes exactly these."""
    c = ["-m", "comment", "--comment", mark]
    return [["INPUT", "-j", "DROP", *c], ["OUTPUT", "-j", "DROP", *c],
            ["INPUT", "-p", "tcp", "--dport", str(status_port), "-j", "ACCEPT", *c],
            ["OUTPUT", "-p", "tcp", "--sport", str(status_port), "-j", "ACCEPT", *c],
            ["INPUT", "-i", "lo", "-j", "ACCEPT", *c], ["OUTPUT", "-o", "lo", "-j", "ACCEPT", *c]]


def in_netns(netns: str, argv: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Run ``argv`` in the network namespace ``netns`` (``nsenter --net``), as Chaos Mesh's daemon does."""
    return subprocess.run(["nsenter", f"--net={netns}", *argv], capture_output=True, text=True, timeout=timeout,
                          check=False)


def probe(netns: str, host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection from inside ``netns`` to ``host:port`` opens within ``timeout``."""
    try:
        return in_netns(netns, [sys.executable, "-c", _PROBE, host, str(port), str(timeout)], timeout + 5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def cut(netns: str, rules: list[list[str]]) -> list[str]:
    """Insert ``rules`` in ``netns``; the errors (empty when every rule is in)."""
    errors = []
    for chain, *spec in rules:
        out = in_netns(netns, ["iptables", "-w", "-I", chain, "1", *spec])
        if out.returncode:
            errors.append(f"iptables -I {chain} {' '.join(spec)}: {out.stderr.strip()}")
    return errors


def uncut(netns: str, rules: list[list[str]]) -> int:
    """Delete ``rules`` from ``netns`` (a namespace already gone has none); how many were removed."""
    removed = 0
    for chain, *spec in rules:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            removed += in_netns(netns, ["iptables", "-w", "-D", chain, *spec]).returncode == 0
    return removed
