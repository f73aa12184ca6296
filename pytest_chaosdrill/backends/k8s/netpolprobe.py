"""Whether a cluster enforces NetworkPolicy, proven by trying: a listener pod and a client pod that
connects to it every few hundred milliseconds (its log is the evidence), then a deny-all-ingress policy
selecting the listener. Connections stop under the policy and come back without it: enforced; they go on
under it: not enforced; anything else (no pod, no connection before the policy): not proven."""
from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any, Callable

from .spec import MANAGED_LABEL, MANAGED_VALUE, RUN_LABEL, TARGET_LABEL

PROBE_LABEL = "chaosdrill.io/netpol-probe"
PORT = 18080
#: Consecutive failed attempts under the policy that count as "stopped" (one may be a hiccup).
STOPPED_AFTER = 3
_SERVER = ("import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           f"s.bind(('0.0.0.0', {PORT})); s.listen(64)\nwhile True:\n    c, _ = s.accept(); c.close()\n")
_CLIENT = ("import socket, sys, time\ni = 0\nwhile True:\n    i += 1\n    try:\n"
           "        socket.create_connection((sys.argv[1], int(sys.argv[2])), 1.0).close(); r = 'open'\n"
           "    except OSError as e:\n        r = 'closed ' + type(e).__name__\n"
           "    print(i, r, flush=True); time.sleep(0.3)\n")


#: Waiting reasons of a container that will not start by waiting longer.
CANNOT_START = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                          "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


class _Inconclusive(Exception):
    """The probe cannot decide (a pod cannot run): the reason, one line."""


def _attempts(core: Any, name: str, namespace: str) -> list[tuple[int, bool, str]]:
    """The client's attempts so far: (number, connected, the log line with the node's timestamp)."""
    out = []
    with contextlib.suppress(Exception):   # not started yet, or an API hiccup: none seen
        for line in core.read_namespaced_pod_log(name, namespace, timestamps=True).splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                out.append((int(parts[1]), parts[2] == "open", line))
    return out


def _wait(check: Callable[[], Any], deadline_s: float, poll_s: float = 0.3) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        got = check()
        if got or time.monotonic() >= end:
            return got
        time.sleep(poll_s)


def probe_networkpolicy(core: Any, networking: Any, namespace: str, image: str, run_id: str,
                        pull_policy: str = "IfNotPresent", start_s: float = 90.0, cut_s: float = 10.0) -> dict[str, Any]:
    """Run the probe in ``namespace`` (already checked as allowed) with pods of ``image`` (needs ``python3``).
    Returns ``enforced`` (True / False / None: not proven), ``why`` (one line) and ``evidence`` (the
    client's attempts, each with the node's time, and when the policy was applied and removed, seconds
    since the probe started); ``cleanup`` lists what could not be deleted. Everything it creates carries
    the backend's labels (``chaosdrill k8s-reap`` finds leftovers) and is deleted on every outcome."""
    t0 = time.monotonic()
    pid = uuid.uuid4().hex[:8]
    labels = {MANAGED_LABEL: MANAGED_VALUE, RUN_LABEL: run_id, TARGET_LABEL: f"netpol-{pid}"}
    server, client, policy = f"cd-netpol-{pid}-server", f"cd-netpol-{pid}-client", f"cd-netpol-{pid}-deny"
    ev: dict[str, Any] = {"image": image, "namespace": namespace, "pods": [server, client], "policy": policy}
    out: dict[str, Any] = {"enforced": None, "why": "", "evidence": ev}

    def at() -> float:
        return round(time.monotonic() - t0, 2)

    def pod(name: str, role: str, script: str, args: list[str]) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {**labels, PROBE_LABEL: role}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                         "automountServiceAccountToken": False,
                         "containers": [{"name": "probe", "image": image, "imagePullPolicy": pull_policy,
                                         "command": ["python3", "-u", "-c", script, *args]}]}}

    def ip_of(name: str) -> str | None:
        """The pod's IP once it runs; a pod that cannot run (image, exit) ends the probe at once."""
        try:
            p = core.read_namespaced_pod(name, namespace)
        except Exception:  # noqa: BLE001 - an API hiccup: ask again
            return None
        for cs in p.status.container_statuses or []:
            waiting = cs.state.waiting if cs.state else None
            if waiting is not None and waiting.reason in CANNOT_START:
                raise _Inconclusive(f"the probe's pod {name} cannot start: {waiting.reason} (image {image})")
        if p.status.phase in ("Failed", "Succeeded"):
            raise _Inconclusive(f"the probe's pod {name} exited ({p.status.phase}; image {image} with python3?)")
        if p.status.phase == "Running" and p.status.pod_ip:
            return p.status.pod_ip
        return None

    created: list[tuple[str, str]] = []
    try:
        core.create_namespaced_pod(namespace, pod(server, "server", _SERVER, []))
        created.append(("pod", server))
        ip = _wait(lambda: ip_of(server), start_s)
        if not ip:
            out["why"] = f"the probe's listener pod did not run within {start_s:.0f} s (image {image} with python3?)"
            return out
        ev["server_ip"] = ip
        core.create_namespaced_pod(namespace, pod(client, "client", _CLIENT, [ip, str(PORT)]))
        created.append(("pod", client))
        opened = _wait(lambda: ip_of(client) and any(ok for _, ok, _ in _attempts(core, client, namespace)),
                       max(0.0, start_s - (time.monotonic() - t0)))
        if not opened:
            ev["attempts"] = [line for *_, line in _attempts(core, client, namespace)]
            out["why"] = "the client pod never connected to the listener before any policy (no baseline)"
            return out
        networking.create_namespaced_network_policy(namespace, {
            "metadata": {"name": policy, "labels": labels},
            "spec": {"podSelector": {"matchLabels": {TARGET_LABEL: labels[TARGET_LABEL], PROBE_LABEL: "server"}},
                     "policyTypes": ["Ingress"]}})
        created.append(("networkpolicy", policy))
        ev["policy_applied_s"] = at()
        # attempts numbered after the last one seen now began after the policy existed
        after = max((n for n, *_ in _attempts(core, client, namespace)), default=0) + 1

        def under() -> list[tuple[int, bool, str]]:
            return [a for a in _attempts(core, client, namespace) if a[0] > after]

        def stopped(attempts: list[tuple[int, bool, str]]) -> bool:
            run = 0
            for _, ok, _ in attempts:
                run = 0 if ok else run + 1
                if run >= STOPPED_AFTER:
                    return True
            return False

        _wait(lambda: stopped(under()), cut_s)
        seen = under()
        ev["attempts_under_policy"] = [line for *_, line in seen]
        if not seen:
            out["why"] = "the client pod logged no attempt after the policy was applied"
            return out
        if not stopped(seen):
            out.update(enforced=False, why=f"a deny-all ingress policy did not stop a connection: "
                       f"{sum(ok for _, ok, _ in seen)} of {len(seen)} attempts connected in the {cut_s:.0f} s under it")
            return out
        # the connections stopped: prove it was the policy (they come back once it is gone)
        networking.delete_namespaced_network_policy(policy, namespace)
        created.remove(("networkpolicy", policy))
        ev["policy_removed_s"] = at()
        last = max((n for n, *_ in _attempts(core, client, namespace)), default=0) + 1
        back = _wait(lambda: any(ok for n, ok, _ in _attempts(core, client, namespace) if n > last), cut_s)
        ev["attempts_after_policy"] = [line for n, _, line in _attempts(core, client, namespace) if n > last]
        if back:
            out.update(enforced=True, why="a deny-all ingress policy stopped the connections; they came back "
                                          "once it was deleted")
        else:
            out["why"] = ("connections stopped under the policy but did not come back once it was deleted "
                          "(the listener may have failed: cannot tell the policy from a broken pod)")
        return out
    except _Inconclusive as exc:
        out["why"] = str(exc)
        return out
    except Exception as exc:  # noqa: BLE001 - the API's errors (RBAC, quota) make the probe inconclusive
        out["why"] = f"the probe could not run: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return out
    finally:
        out["cleanup"] = _delete(core, networking, namespace, created)
        out["seconds"] = at()


def _delete(core: Any, networking: Any, namespace: str, created: list[tuple[str, str]]) -> list[str]:
    """Delete what the probe created and wait (bounded) until its pods are gone; what is left, one line each."""
    from kubernetes.client.exceptions import ApiException

    left = []
    for kind, name in reversed(created):
        try:
            if kind == "networkpolicy":
                networking.delete_namespaced_network_policy(name, namespace)
            else:
                core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                left.append(f"{kind} {namespace}/{name}: {exc.status} {exc.reason}")
        except Exception as exc:  # noqa: BLE001
            left.append(f"{kind} {namespace}/{name}: {exc}"[:200])

    def gone() -> bool:
        for kind, name in created:
            if kind == "pod":
                try:
                    core.read_namespaced_pod(name, namespace)
                    return False
                except ApiException as exc:
                    if exc.status != 404:
                        return False
                except Exception:  # noqa: BLE001
                    return False
        return True

    if not _wait(gone, 60.0):
        left.append("pods not gone after 60 s (chaosdrill k8s-reap removes them)")
    return left
