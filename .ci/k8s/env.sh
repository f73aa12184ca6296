# Shared settings of the loopback cluster scripts (sourced by up.sh, down.sh, load-image.sh).
K8S_CACHE=${K8S_CACHE:-/var/cache/chaosdrill-k8s}
K8S_STATE=${K8S_STATE:-/run/chaosdrill-k8s}          # pids, saved sysctls, netns list: gone at reboot
K8S_DATA=${K8S_DATA:-/var/lib/chaosdrill-k8s}        # etcd, containerd and kubelet roots
K8S_KUBECONFIG=${K8S_KUBECONFIG:-$K8S_DATA/admin.kubeconfig}
K8S_API_PORT=${K8S_API_PORT:-16443}
K8S_ETCD_PORT=${K8S_ETCD_PORT:-23790}
K8S_NODES=(chaosdrill-node-a chaosdrill-node-b)
K8S_MARK=chaosdrill-k8s                               # hosts-file and iptables comment marker
K8S_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
             net.bridge.bridge-nf-call-iptables)
# Per node: index i (0, 1) -> pod subnet 10.244.(i+1).0/24 on bridge cdk8s<i>, kubelet port 1025<i>0+.
node_subnet() { echo "10.244.$(( $1 + 1 )).0/24"; }
node_bridge() { echo "cdk8s$1"; }
node_gateway() { echo "10.244.$(( $1 + 1 )).1"; }
node_kubelet_port() { echo $(( 10250 + 100 * $1 )); }
node_dir() { echo "$K8S_DATA/${K8S_NODES[$1]}"; }
node_sock() { echo "$K8S_STATE/${K8S_NODES[$1]}/containerd.sock"; }
