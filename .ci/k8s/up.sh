#!/usr/bin/env bash
# Start a two-node Kubernetes cluster on loopback from the binaries of build.sh: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and per node its own containerd (CRI, CNI bridge) and
# kubelet. Writes the admin kubeconfig to $K8S_KUBECONFIG and waits until both nodes are Ready.
# Saves every sysctl and the iptables chains it may change first, so down.sh restores the host.
# Usage: up.sh BIN_DIR   (the last line of build.sh's output)
set -euo pipefail
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
source "$HERE/env.sh"
BIN=${1:?usage: up.sh BIN_DIR}
WAIT_S=${K8S_UP_WAIT_S:-180}
log() { echo "k8s-up: $*" >&2; }
t0=$(date +%s)
mkdir -p "$K8S_STATE" "$K8S_DATA"

# Host state saved once (a second up.sh without down.sh must not overwrite the originals).
if [[ ! -f $K8S_STATE/sysctl.before ]]; then
  modprobe br_netfilter 2>/dev/null || true
  for k in "${K8S_SYSCTLS[@]}"; do v=$(sysctl -n "$k" 2>/dev/null) && echo "$k $v"; done >"$K8S_STATE/sysctl.before.tmp"
  mv "$K8S_STATE/sysctl.before.tmp" "$K8S_STATE/sysctl.before"
  for t in filter nat mangle; do iptables -t "$t" -S 2>/dev/null | awk -v t="$t" '$1=="-N"{print t, $2}'; done >"$K8S_STATE/chains.before"
  ls /run/netns 2>/dev/null >"$K8S_STATE/netns.before" || : >"$K8S_STATE/netns.before"
fi
sysctl -qw net.ipv4.ip_forward=1

# Daemons: own session, no inherited descriptors, so they never hold a caller's pipe.
daemon() {  # name, command...
  local name=$1; shift
  setsid "$@" </dev/null >"$K8S_STATE/$name.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  echo $! >"$K8S_STATE/$name.pid"
}
wait_for() {  # description, deadline seconds, command...
  local what=$1 limit=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { log "timed out waiting for $what"; return 1; }
    sleep 0.2
  done
}

# PKI: one CA; the apiserver's serving cert; a service-account key. Clients authenticate by token.
PKI=$K8S_DATA/pki
if [[ ! -f $PKI/apiserver.crt ]]; then
  mkdir -p "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=chaosdrill-ca \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout "$PKI/apiserver.key" \
    -out "$PKI/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc\n' >"$PKI/san.ext"
  openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -extfile "$PKI/san.ext" -out "$PKI/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  {
    echo "$(openssl rand -hex 16),chaosdrill-admin,uid-admin,\"system:masters\""
    echo "$(openssl rand -hex 16),system:kube-controller-manager,uid-kcm,"
    echo "$(openssl rand -hex 16),system:kube-scheduler,uid-sched,"
    for n in "${K8S_NODES[@]}"; do echo "$(openssl rand -hex 16),system:node:$n,uid-$n,\"system:nodes\""; done
  } >"$PKI/tokens.csv"
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
fi
kubeconfig() {  # user -> path
  local user=$1 path=$K8S_DATA/$2.kubeconfig token
  token=$(awk -F, -v u="$user" '$2==u{print $1}' "$PKI/tokens.csv")
  cat >"$path" <<KC
apiVersion: v1
kind: Config
clusters:
- name: chaosdrill
  cluster: {server: "https://127.0.0.1:$K8S_API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: $user
  user: {token: "$token"}
contexts:
- name: chaosdrill
  context: {cluster: chaosdrill, user: "$user"}
current-context: chaosdrill
KC
  chmod 600 "$path"
}
kubeconfig chaosdrill-admin admin
kubeconfig system:kube-controller-manager controller-manager
kubeconfig system:kube-scheduler scheduler
for n in "${K8S_NODES[@]}"; do kubeconfig "system:node:$n" "$n"; done
[[ $K8S_KUBECONFIG == "$K8S_DATA/admin.kubeconfig" ]] || cp "$K8S_DATA/admin.kubeconfig" "$K8S_KUBECONFIG"

# Hosts entries: the kubelet refuses a loopback node IP, so the apiserver reaches kubelets by name.
if ! grep -q "# $K8S_MARK" /etc/hosts; then
  for n in "${K8S_NODES[@]}"; do printf '127.0.0.1 %s # %s\n' "$n" "$K8S_MARK"; done >>/etc/hosts
fi

# etcd and the control plane.
daemon etcd etcd --name chaosdrill --data-dir "$K8S_DATA/etcd" \
  --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --listen-peer-urls http://127.0.0.1:$(( K8S_ETCD_PORT + 10 )) --initial-advertise-peer-urls http://127.0.0.1:$(( K8S_ETCD_PORT + 10 )) \
  --initial-cluster "chaosdrill=http://127.0.0.1:$(( K8S_ETCD_PORT + 10 ))"
daemon kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$K8S_ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$K8S_API_PORT" --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none --service-cluster-ip-range=10.96.0.0/24 \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --token-auth-file="$PKI/tokens.csv" --authorization-mode=Node,RBAC --anonymous-auth=false \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc \
  --kubelet-preferred-address-types=Hostname --allow-privileged=true --insecure-port=0
wait_for "kube-apiserver" "$WAIT_S" kubectl --kubeconfig "$K8S_KUBECONFIG" get --raw /readyz
daemon kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$K8S_DATA/controller-manager.kubeconfig" \
  --leader-elect=false --port=0 --secure-port=0 --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true \
  --node-monitor-grace-period=16s --node-monitor-period=2s --pod-eviction-timeout=10s
daemon kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$K8S_DATA/scheduler.kubeconfig" \
  --leader-elect=false --port=0 --secure-port=0

# Per node: containerd (own root, state, socket; CRI with restrict_oom_score_adj, because root here
# lacks CAP_SYS_RESOURCE), a CNI bridge network, the pause image, and the kubelet.
for i in "${!K8S_NODES[@]}"; do
  n=${K8S_NODES[$i]} d=$(node_dir "$i") s=$K8S_STATE/$n
  mkdir -p "$d/cni" "$d/containerd" "$d/kubelet" "$s"
  cat >"$d/cni/10-bridge.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "chaosdrill-$i", "plugins": [
  {"type": "bridge", "bridge": "$(node_bridge "$i")", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$d/ipam", "ranges": [[{"subnet": "$(node_subnet "$i")"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}]}
CNI
  cat >"$d/containerd.toml" <<TOML
version = 2
root = "$d/containerd"
state = "$s/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$(node_sock "$i")"
[ttrpc]
  address = "$s/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:chaosdrill"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
TOML
  # The bridge and its gateway address exist before the first pod: the fault proxy listens there.
  br=$(node_bridge "$i") gw=$(node_gateway "$i")
  ip link show "$br" >/dev/null 2>&1 || ip link add "$br" type bridge
  ip -4 addr show dev "$br" | grep -q "inet $gw/" || ip addr add "$gw/24" dev "$br"
  ip link set "$br" up
  # Docker's FORWARD policy is DROP (br_netfilter on): let the pod bridge forward.
  chain=DOCKER-USER; iptables -S DOCKER-USER >/dev/null 2>&1 || chain=FORWARD
  for dir in -i -o; do
    iptables -C "$chain" "$dir" "$(node_bridge "$i")" -m comment --comment "$K8S_MARK" -j ACCEPT 2>/dev/null ||
      iptables -I "$chain" "$dir" "$(node_bridge "$i")" -m comment --comment "$K8S_MARK" -j ACCEPT
  done
  port=$(node_kubelet_port "$i")
  daemon "kubelet-$n" unshare --mount --propagation private "$HERE/node.sh" "$i" "$BIN" --kubeconfig="$K8S_DATA/$n.kubeconfig" --hostname-override="$n" \
    --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" \
    --container-runtime=remote --container-runtime-endpoint="unix://$(node_sock "$i")" \
    --pod-infra-container-image=registry.k8s.io/pause:chaosdrill \
    --port="$port" --healthz-port=$(( port + 1 )) --read-only-port=0 --address=127.0.0.1 \
    --cgroups-per-qos=false --enforce-node-allocatable= --cgroup-driver=cgroupfs --fail-swap-on=false \
    --eviction-hard='memory.available<1Mi,nodefs.available<1%,imagefs.available<1%' \
    --image-gc-high-threshold=100 --image-gc-low-threshold=99 --node-status-update-frequency=4s \
    --pod-cidr="$(node_subnet "$i")" --register-node=true --max-pods=30 --serialize-image-pulls=false
done
K() { kubectl --kubeconfig "$K8S_KUBECONFIG" "$@"; }
nodes_ready() {
  local n; for n in "${K8S_NODES[@]}"; do
    [[ $(K get node "$n" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
  done
}
wait_for "both nodes Ready" "$WAIT_S" nodes_ready
log "cluster up in $(( $(date +%s) - t0 )) s"
echo "export KUBECONFIG=$K8S_KUBECONFIG CHAOSDRILL_K8S_HARNESS_HOST=$(node_gateway 0)"
