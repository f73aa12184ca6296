#!/usr/bin/env bash
# Tear down the loopback cluster of up.sh: every process, pod sandbox, mount, network namespace,
# bridge, iptables rule and chain, hosts entry it made, and every sysctl restored to the value saved
# before it changed. Idempotent and safe after a crash (works from the state files and from the
# markers alone). Data under $K8S_DATA is removed too unless K8S_KEEP_DATA=1.
set -uo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/env.sh"
log() { echo "k8s-down: $*" >&2; }

# 1. Processes: kubelets first (so nothing restarts containers), then control plane, etcd, containerds.
kill_pids() {  # $@: pid files; TERM, wait up to 10 s, then KILL
  local f pid pids=()
  for f in "$@"; do [[ -f $f ]] && pid=$(<"$f") && kill -0 "$pid" 2>/dev/null && pids+=("$pid"); done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  for _ in $(seq 100); do
    local alive=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break; sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
# Also by exact command-line match on our own paths (a crash may have lost the pid files).
kill_ours() { local p; for p in $(pgrep -f -- "$1" || true); do [[ $p != $$ ]] && kill -KILL "$p" 2>/dev/null; done; }
kill_pids "$K8S_STATE"/kubelet-*.pid
kill_ours "--root-dir=$K8S_DATA/"
kill_pids "$K8S_STATE"/kube-{scheduler,controller-manager,apiserver}.pid "$K8S_STATE/etcd.pid"
kill_ours "--kubeconfig=$K8S_DATA/" ; kill_ours "--etcd-servers=http://127.0.0.1:$K8S_ETCD_PORT"
kill_ours "--data-dir=$K8S_DATA/etcd"

# 2. Pod containers: kill every task of our containerds, then the containerds and their shims.
for i in "${!K8S_NODES[@]}"; do
  sock=$(node_sock "$i")
  if [[ -S $sock ]]; then
    for c in $(timeout 20 ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      timeout 10 ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
    done
  fi
done
kill_pids "$K8S_STATE"/containerd-*.pid
kill_ours "containerd --config $K8S_DATA/"
for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $K8S_STATE/" || true); do
  pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null
done
# Pod processes whose shim is gone (a crash): the CRI puts every pod container in a cgroup under
# /k8s.io/ (with --cgroups-per-qos=false); Docker's containerd uses /docker/, so nothing else matches.
for pidpath in /proc/[0-9]*; do
  grep -q ':/k8s.io/' "$pidpath/cgroup" 2>/dev/null && kill -KILL "${pidpath#/proc/}" 2>/dev/null
done

# 3. Mounts under our directories (deepest first), then network namespaces the cluster created.
for _ in 1 2 3; do
  mapfile -t mnts < <(awk -v a="$K8S_STATE" -v b="$K8S_DATA" '$5 ~ "^"a || $5 ~ "^"b {print $5}' /proc/self/mountinfo | sort -r)
  ((${#mnts[@]})) || break
  for m in "${mnts[@]}"; do umount -l "$m" 2>/dev/null; done
done
if [[ -f $K8S_STATE/netns.before ]]; then
  for ns in $(ls /run/netns 2>/dev/null | grep '^cni-' || true); do
    grep -qxF "$ns" "$K8S_STATE/netns.before" || { ip netns delete "$ns" 2>/dev/null || { umount -l "/run/netns/$ns"; rm -f "/run/netns/$ns"; }; }
  done
fi
for i in "${!K8S_NODES[@]}"; do ip link delete "$(node_bridge "$i")" 2>/dev/null || true; done

# 4. iptables: our ACCEPT rules (marked by comment), and the kubelet's KUBE-* chains if they were
#    not there before up.sh.
for table in filter nat mangle; do
  while read -r rule; do
    iptables -t "$table" ${rule/-A/-D} 2>/dev/null
  done < <(iptables -t "$table" -S 2>/dev/null | grep -- "--comment $K8S_MARK" | sed 's/"//g' | sort -u)
  if [[ -f $K8S_STATE/chains.before ]]; then
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
      grep -qxF "$table $chain" "$K8S_STATE/chains.before" && continue
      iptables -t "$table" -S | awk -v c="$chain" '$1=="-A" && $0 ~ ("-j " c "( |$)") {sub("^-A","-D"); print}' |
        while read -r rule; do eval iptables -t "$table" "$rule"; done
      iptables -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
      grep -qxF "$table $chain" "$K8S_STATE/chains.before" || iptables -t "$table" -X "$chain" 2>/dev/null
    done
  fi
done

# 5. Hosts entries (edited in place: /etc/hosts may be a bind mount).
if grep -q "# $K8S_MARK" /etc/hosts 2>/dev/null; then
  tmp=$(mktemp); grep -v "# $K8S_MARK" /etc/hosts >"$tmp"; cat "$tmp" >/etc/hosts; rm -f "$tmp"
fi

# 6. Sysctls back to the values saved before the cluster changed them.
if [[ -f $K8S_STATE/sysctl.before ]]; then
  while read -r key value; do
    [[ -n $key ]] && sysctl -qw "$key=$value" >/dev/null 2>&1 || log "could not restore $key=$value"
  done <"$K8S_STATE/sysctl.before"
fi

# 7. Files.
rm -rf "$K8S_STATE"
[[ ${K8S_KEEP_DATA:-0} == 1 ]] || rm -rf "$K8S_DATA"
log "done"
