#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet offline from
# Debian bookworm's `kubernetes` source package with Debian's golang-go, and install the
# host packages a loopback cluster needs (etcd-server, containerd, runc, CNI plugins).
# Binaries are cached under $K8S_CACHE/<source version>/bin, so a warm machine reuses them.
# Prints the directory that holds the binaries on its last line.
set -euo pipefail
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
K8S_CACHE=${K8S_CACHE:-/var/cache/chaosdrill-k8s}
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
log() { echo "k8s-build: $*" >&2; }
export DEBIAN_FRONTEND=noninteractive

need_pkgs=()
for p in golang-go etcd-server containerd runc containernetworking-plugins rsync jq gcc libc6-dev dpkg-dev iptables; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  apt-get update -q >&2
  apt-get install -y -q "${need_pkgs[@]}" >&2
fi

# Source package version, read from apt's deb-src index (added for the run if missing).
SRC_LIST=/etc/apt/sources.list.d/chaosdrill-k8s-src.sources
version=$(apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/{print $2; exit}')
if [[ -z $version ]]; then
  cat >"$SRC_LIST" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -q >&2
  version=$(apt-cache showsrc kubernetes | awk '/^Version:/{print $2; exit}')
fi
[[ -n $version ]] || { log "no 'kubernetes' source package in apt's deb-src index"; exit 1; }
OUT=$K8S_CACHE/$version/bin
# The upstream version (1.20.5+really1.20.2-1.1+deb12u1 -> 1.20.2), stamped into the binaries so the
# API server reports it (a GOPATH build has no git metadata: it would say v0.0.0-master).
upstream=${version##*really}; upstream=${upstream%%-*}
LDFLAGS="-s -w"
# component-base's version (the binaries' own) and client-go's (the API server's /version answers with it)
for VPKG in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $VPKG.gitVersion=v$upstream -X $VPKG.gitMajor=${upstream%%.*} -X $VPKG.gitMinor=$(cut -d. -f2 <<<"$upstream") -X $VPKG.gitTreeState=clean"
done
# Binaries of another stamp (an older build.sh) are built again.
if [[ $(cat "$OUT/.ldflags" 2>/dev/null) != "$LDFLAGS" ]]; then rm -f "$OUT"/kube*; fi
if [[ -x $OUT/kubelet && -x $OUT/kube-apiserver && -x $OUT/kube-controller-manager \
      && -x $OUT/kube-scheduler && -f $OUT/pause.tar ]]; then
  log "cached: $OUT"; echo "$OUT"; exit 0
fi

start=$(date +%s)
SRC=$K8S_CACHE/src
mkdir -p "$SRC" "$OUT"
tree=$(ls -d "$SRC"/kubernetes-*/ 2>/dev/null | head -1 || true)
if [[ -z $tree ]]; then
  (cd "$SRC" && apt-get source -q kubernetes >&2)
  tree=$(ls -d "$SRC"/kubernetes-*/ | head -1)
fi
tree=${tree%/}

export GOPATH=$K8S_CACHE/gopath GO111MODULE=off GOFLAGS= CGO_ENABLED=1
export GOCACHE=$K8S_CACHE/gocache HOME=${HOME:-/root}
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$tree" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
if [[ ! -f pkg/generated/openapi/zz_generated.openapi.go ]]; then
  log "make gen_openapi"
  make gen_openapi >&2
fi
for b in "${BINS[@]}"; do
  [[ -x $OUT/$b ]] && continue
  t=$(date +%s)
  log "go build $b"
  go build -ldflags "$LDFLAGS" -o "$OUT/$b.tmp" "./cmd/$b" >&2
  mv "$OUT/$b.tmp" "$OUT/$b"
  log "$b built in $(( $(date +%s) - t )) s"
done

echo "$LDFLAGS" >"$OUT/.ldflags"

# The sandbox (pause) image, built from the tree's pause.c: no registry is reached.
if [[ ! -f $OUT/pause.tar ]]; then
  d=$(mktemp -d)
  gcc -Os -static -o "$d/pause" build/pause/linux/pause.c
  mkdir -p "$d/rootfs" && cp "$d/pause" "$d/rootfs/pause"
  python3 "$HERE/oci_image.py" \
    "$d/rootfs" "$OUT/pause.tar" registry.k8s.io/pause:chaosdrill /pause
  rm -rf "$d"
fi
log "built in $(( $(date +%s) - start )) s"
echo "$OUT"
