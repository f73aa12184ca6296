#!/usr/bin/env bash
# Build a local Debian bookworm + Python 3 base image without any container registry:
# debootstrap a minimal root filesystem from a Debian mirror, then `docker import` it.
# Cached: does nothing when the image already exists (FORCE=1 rebuilds).
#
# Env: BASE_IMAGE (default chaosdrill/base:bookworm), DEBIAN_MIRROR (default
#      http://deb.debian.org/debian), DEBIAN_SUITE (default bookworm), FORCE=1.
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-chaosdrill/base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# python3-venv brings ensurepip's bundled pip wheel, so no python3-pip (and no PEP 668 fight):
# the target image installs into its own venv.
PACKAGES="${BASE_PACKAGES:-python3,python3-venv,ca-certificates}"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "base image $BASE_IMAGE exists: skipping (FORCE=1 rebuilds)"
    exit 0
fi

command -v debootstrap >/dev/null || { echo "error: debootstrap not installed (apt-get install -y debootstrap)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "error: debootstrap needs root" >&2; exit 1; }

ROOTFS="$(mktemp -d /var/tmp/chaosdrill-rootfs.XXXXXX)"
# debootstrap leaves mounts (proc, sys) if it dies half way; unmount before deleting.
cleanup() {
    for m in proc sys dev/pts dev; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT

echo "debootstrap $DEBIAN_SUITE ($PACKAGES) from $DEBIAN_MIRROR into $ROOTFS"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$DEBIAN_SUITE" "$ROOTFS" "$DEBIAN_MIRROR" \
        > "$ROOTFS.log" 2>&1; then
    tail -n 30 "$ROOTFS.log" >&2
    echo "error: debootstrap failed (full log: $ROOTFS.log)" >&2
    exit 1
fi
rm -f "$ROOTFS.log"

# Trim what a runtime image never reads: package caches, docs, man pages, locales.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old

PY_VERSION="$(chroot "$ROOTFS" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL io.chaosdrill.image=base io.chaosdrill.python=$PY_VERSION io.chaosdrill.debian-suite=$DEBIAN_SUITE" \
    - "$BASE_IMAGE" >/dev/null
echo "built $BASE_IMAGE (python $PY_VERSION): $(docker image inspect -f '{{.Id}} {{.Size}} bytes' "$BASE_IMAGE")"
