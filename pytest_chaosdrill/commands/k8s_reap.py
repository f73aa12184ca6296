"""``chaosdrill k8s-reap``: delete the Deployments, pods and NetworkPolicies killed drill runs left in a namespace
(only what the kubernetes backend labelled as its own), and continue a node's kubelet a node-loss drill
killed mid-fault left stopped (nodes on this machine only)."""
from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    parser.add_argument("--namespace", default="chaosdrill", help="the drill namespace (default: %(default)s)")
    parser.add_argument("--older-than", type=float, default=0.0, metavar="SECONDS",
                        help="only what was created more than SECONDS ago (default: everything labelled)")


def run(args: argparse.Namespace) -> int:
    from kubernetes import client

    from ..backends.base import BackendUnavailable
    from ..backends.k8s.cluster import api_client, check_namespace, delete_managed
    from ..backends.k8s.nodeaccess import continue_stopped_kubelets

    try:
        api = api_client(args.context)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        check_namespace(core, args.namespace)
        gone = delete_managed(apps, core, args.namespace, older_than_s=args.older_than,
                              networking=client.NetworkingV1Api(api))
        continued = continue_stopped_kubelets([n.metadata.name for n in core.list_node().items])
    except BackendUnavailable as exc:
        print(f"chaosdrill k8s-reap: {exc}", file=sys.stderr)
        return 2
    for line in continued:
        print(line)
    for line in gone:
        print(f"removed {line}")
    print(f"{len(gone)} resource(s) removed")
    return 1 if any(line.startswith("NOT GONE") for line in gone) else 0
