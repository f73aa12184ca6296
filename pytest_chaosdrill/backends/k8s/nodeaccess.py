"""Signals to a container's processes where the cluster's nodes are this machine (the project's
loopback cluster, kind-like setups): the container is found by its ID in the kernel's cgroup paths.
The API has no verb to kill a container; the fault's proof still comes from the API
(``restartCount``, ``lastState.terminated.exitCode``)."""
from __future__ import annotations

import os
import signal
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
