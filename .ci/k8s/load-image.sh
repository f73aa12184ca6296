#!/usr/bin/env bash
# Copy images from the local Docker engine into every node's containerd of the loopback cluster
# (no registry): docker save IMAGE | ctr -n k8s.io images import -
# Usage: load-image.sh IMAGE...
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/env.sh"
(($#)) || { echo "usage: load-image.sh IMAGE..." >&2; exit 2; }
for image in "$@"; do
  for i in "${!K8S_NODES[@]}"; do
    docker save "$image" | ctr -a "$(node_sock "$i")" -n k8s.io images import - >/dev/null
  done
  echo "k8s-load-image: $image -> ${K8S_NODES[*]}" >&2
done
