"""``chaosdrill k8s-selfcheck``: what the kubernetes backend can prove on a cluster, before any drill."""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
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
    parser.add_argument("--no-probe", action="store_true",
                        help="do not run the NetworkPolicy probe (two pods and a policy, about 10-30 s)")
    parser.add_argument("--image", default=None,
                        help="the image of the probe's pods (needs python3; default: --target's kubernetes image, "
                             "else $CHAOSDRILL_K8S_IMAGE, else $CHAOSDRILL_IMAGE, else chaosdrill/target:latest)")
    parser.add_argument("--target", default=None, metavar="FILE", help="a target file whose kubernetes image the probe runs")


def probe_image(args: argparse.Namespace) -> tuple[str, str]:
    """The probe's image and pull policy: ``--image``, the ``--target`` file's, or the environment's."""
    from ..backends.docker import DEFAULT_IMAGE

    if args.image:
        return args.image, "IfNotPresent"
    if args.target:
        from ..backends.k8s.spec import KubeSpec
        from ..target import load_target

        spec = KubeSpec.from_config(load_target(args.target))
        return spec.image, spec.image_pull_policy
    return (os.environ.get("CHAOSDRILL_K8S_IMAGE") or os.environ.get("CHAOSDRILL_IMAGE") or DEFAULT_IMAGE,
            "IfNotPresent")


def findings(api: Any, namespace: str, image: tuple[str, str] | None = None) -> dict[str, Any]:
    """Server version, nodes, the namespace interlock, RBAC for every verb the backend uses, whether
    Chaos Mesh is installed, and whether NetworkPolicy is enforced: proven by the probe with ``image``
    (name, pull policy) in an allowed namespace; ``None``: not run."""
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
    if image is None:
        out["network_policy"] = {"enforced": None, "why": "no probe run (--no-probe); enforcement depends on the "
                                 "CNI plugin, which the API does not report"}
    elif not out["namespace"]["allowed"]:
        out["network_policy"] = {"enforced": None, "why": "no probe run: the namespace is not allowed"}
    else:
        from ..backends.k8s.netpolprobe import probe_networkpolicy

        out["network_policy"] = probe_networkpolicy(core, client.NetworkingV1Api(api), namespace, image[0],
                                                    f"selfcheck-{uuid.uuid4().hex[:8]}", image[1])
    return out


def networkpolicy_line(found: dict[str, Any]) -> str:
    """``networkpolicy: enforced`` / ``not enforced (...)`` / ``not proven (why)``, with the probe's time."""
    took = f" [probe took {found['seconds']:.1f} s]" if "seconds" in found else ""
    left = f"; LEFT BEHIND: {'; '.join(found['cleanup'])}" if found.get("cleanup") else ""
    if found["enforced"] is True:
        return f"networkpolicy: enforced ({found['why']}){took}{left}"
    if found["enforced"] is False:
        return f"networkpolicy: not enforced ({found['why']}){took}{left}"
    return f"networkpolicy: not proven ({found['why']}){took}{left}"


def run(args: argparse.Namespace) -> int:
    from ..backends.base import BackendUnavailable
    from ..backends.k8s.cluster import api_client

    try:
        image = None if args.no_probe else probe_image(args)   # a bad --target named before any connection
        api = api_client(args.context)
        result = findings(api, args.namespace, image)
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
        print(networkpolicy_line(result["network_policy"]))
    return 0 if result["namespace"]["allowed"] and result["rbac"]["all_allowed"] else 1
