"""``chaosdrill k8s-selfcheck``: what the kubernetes backend can prove on a cluster, before any drill."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: (API group, resource, subresource, verb) the backend uses in the drill namespace.
NEEDED = [("apps", "deployments", "", v) for v in ("create", "get", "list", "patch", "delete")] + \
         [("apps", "deployments", "scale", "patch")] + \
         [("", "pods", "", v) for v in ("get", "list", "delete")] + \
         [("", "pods", "log", "get"), ("", "events", "", "list")]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    parser.add_argument("--namespace", default="chaosdrill", help="the drill namespace (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


def findings(api: Any, namespace: str) -> dict[str, Any]:
    """Server version, nodes, the namespace interlock, RBAC for every verb the backend uses, whether
    Chaos Mesh is installed, and what is not proven (NetworkPolicy enforcement)."""
    from kubernetes import client

    from ..backends.base import BackendUnavailable
    from ..backends.k8s.cluster import check_namespace

    core = client.CoreV1Api(api)
    out: dict[str, Any] = {}
    v = client.VersionApi(api).get_code()
    out["server_version"] = v.git_version
    out["nodes"] = [{"name": n.metadata.name, "kubelet": n.status.node_info.kubelet_version,
                     "ready": next((c.status for c in n.status.conditions or [] if c.type == "Ready"), "Unknown")}
                    for n in core.list_node().items]
    try:
        check_namespace(core, namespace)
        out["namespace"] = {"name": namespace, "allowed": True}
    except BackendUnavailable as exc:
        out["namespace"] = {"name": namespace, "allowed": False, "why": str(exc)}
    authz = client.AuthorizationV1Api(api)
    rbac = {}
    for group, resource, sub, verb in NEEDED:
        review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {
            "namespace": namespace, "group": group, "resource": resource, "subresource": sub, "verb": verb}}})
        rbac[f"{verb} {resource}{'/' + sub if sub else ''}"] = bool(review.status.allowed)
    out["rbac"] = {"all_allowed": all(rbac.values()), "verbs": rbac}
    try:
        crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        chaos = sorted(c.metadata.name for c in crds if c.spec.group == "chaos-mesh.org")
        out["chaos_mesh"] = {"installed": bool(chaos), "crds": chaos}
    except Exception as exc:  # noqa: BLE001 - no right to list CRDs
        out["chaos_mesh"] = {"installed": None, "why": f"cannot list CustomResourceDefinitions: {exc}"[:200]}
    out["network_policy"] = {"enforced": None, "why": "NOT PROVEN: no probe is run (enforcement depends on the "
                             "CNI plugin, which the API does not report); the backend uses no NetworkPolicy fault"}
    return out


def run(args: argparse.Namespace) -> int:
    from ..backends.base import BackendUnavailable
    from ..backends.k8s.cluster import api_client

    try:
        api = api_client(args.context)
        result = findings(api, args.namespace)
    except BackendUnavailable as exc:
        print(f"chaosdrill k8s-selfcheck: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the API's errors, one line
        print(f"chaosdrill k8s-selfcheck: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"server version: {result['server_version']}")
        for n in result["nodes"]:
            print(f"node {n['name']}: kubelet {n['kubelet']}, Ready={n['ready']}")
        ns = result["namespace"]
        print(f"namespace {ns['name']}: " + ("allowed (chaosdrill.io/drills=allowed)" if ns["allowed"] else ns["why"]))
        denied = [k for k, ok in result["rbac"]["verbs"].items() if not ok]
        print("rbac: every verb the backend uses is allowed" if not denied else f"rbac: DENIED: {', '.join(denied)}")
        cm = result["chaos_mesh"]
        print("chaos mesh: " + ("installed" if cm["installed"] else "not installed" if cm["installed"] is False
                                 else cm["why"]))
        print(f"network policy: {result['network_policy']['why']}")
    return 0 if result["namespace"]["allowed"] and result["rbac"]["all_allowed"] else 1
