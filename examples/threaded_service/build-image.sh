#!/usr/bin/env bash
# Build the threaded example service's image without any registry:
#   base  chaosdrill/base:bookworm (docker/build-base-image.sh makes it with debootstrap);
#   wheels requests + websocket-client (and their deps) built on the host, offline first from the
#          project's wheel cache, the package index only when the cache lacks one;
#   build the legacy builder (no buildx on Debian's engine) over a context of wheels/ + the package.
# Env: IMAGE (default $THREADED_SERVICE_IMAGE, else chaosdrill/example-threaded:latest, the target file's), BASE_IMAGE, PYTHON, CHAOSDRILL_CACHE.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
IMAGE="${IMAGE:-${THREADED_SERVICE_IMAGE:-chaosdrill/example-threaded:latest}}"
BASE_IMAGE="${BASE_IMAGE:-chaosdrill/base:bookworm}"
CACHE="${CHAOSDRILL_CACHE:-$ROOT/.ci/cache}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
export PIP_DISABLE_PIP_VERSION_CHECK=1

docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || {
    echo "error: base image $BASE_IMAGE is not built; run docker/build-base-image.sh first" >&2; exit 1; }
PY_VERSION="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/wheels" "$CACHE/wheels"
REQS=(requests websocket-client)
if "$PYTHON" -m pip wheel -q --no-index --find-links "$CACHE/wheels" --wheel-dir "$CONTEXT/wheels" "${REQS[@]}" 2>/dev/null; then
    echo "wheels: offline from $CACHE/wheels"
else
    echo "wheels: cache incomplete, using the package index"
    "$PYTHON" -m pip wheel -q --find-links "$CACHE/wheels" --wheel-dir "$CONTEXT/wheels" "${REQS[@]}" \
        2> >(grep -v 'is neither a file nor a directory' >&2 || true)
    cp -n "$CONTEXT/wheels"/*.whl "$CACHE/wheels/"
fi
echo "wheels: $(cd "$CONTEXT/wheels" && ls | tr '\n' ' ')"
mkdir -p "$CONTEXT/threaded_service"
cp "$HERE"/*.py "$CONTEXT/threaded_service/"
cp "$HERE/Dockerfile" "$CONTEXT/Dockerfile"

GIT_COMMIT="${GIT_COMMIT:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo not-applicable:no-git)}"
if [[ "$GIT_COMMIT" != not-applicable* ]] && ! git -C "$ROOT" diff --quiet HEAD -- "$HERE" 2>/dev/null; then
    GIT_COMMIT="$GIT_COMMIT+dirty"
fi
BUILD_ID="${BUILD_ID:-threaded_service-$(date -u +%Y%m%dT%H%M%SZ)}"
DOCKER_BUILDKIT=0 docker build --force-rm -q -f "$CONTEXT/Dockerfile" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg PYTHON_VERSION="$PY_VERSION" \
    --build-arg GIT_COMMIT="$GIT_COMMIT" --build-arg BUILD_ID="$BUILD_ID" --build-arg IMAGE_TAG="$IMAGE" \
    -t "$IMAGE" "$CONTEXT"
# Each rebuild leaves the previous image untagged; drop those, never anything else.
docker image prune -f --filter label=io.chaosdrill.image=example-threaded >/dev/null || true
echo "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
