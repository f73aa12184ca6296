#!/usr/bin/env bash
# One node of the loopback cluster, run by up.sh inside `unshare --mount --propagation private`:
# the node's own /var/log/pods and /var/log/containers (a kubelet removes every log folder of a pod it
# does not know: two kubelets sharing them would delete each other's logs), its own containerd, the
# pause image, then exec the kubelet (same pid: up.sh's pid file names it).
# Usage: node.sh INDEX BIN_DIR KUBELET_ARGS...
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/env.sh"
i=$1 BIN=$2; shift 2
n=${K8S_NODES[$i]} d=$(node_dir "$i")
mkdir -p "$d/log/pods" "$d/log/containers" /var/log/pods /var/log/containers
mount --bind "$d/log/pods" /var/log/pods
mount --bind "$d/log/containers" /var/log/containers
setsid containerd --config "$d/containerd.toml" </dev/null >"$K8S_STATE/containerd-$n.log" 2>&1 &
echo $! >"$K8S_STATE/containerd-$n.pid"
for _ in $(seq 300); do ctr -a "$(node_sock "$i")" version >/dev/null 2>&1 && break; sleep 0.2; done
ctr -a "$(node_sock "$i")" -n k8s.io images import "$BIN/pause.tar" >/dev/null
exec "$BIN/kubelet" "$@"
