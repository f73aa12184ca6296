#!/usr/bin/env bash
# Build the chaosdrill image (venue + proxy + reference target) without any registry:
#   1. base image: BASE_IMAGE if given (e.g. python:3.11-slim where a registry is reachable),
#      else the local debootstrap image from docker/build-base-image.sh (built once, cached);
#   2. wheels of the project (the plugin and okx_demo_api/) and all their deps, built on the host (offline from the wheel cache
#      when it already has everything, from PyPI otherwise);
#   3. `docker build` with only those wheels as the build context (pip --no-index inside).
#
# Env: IMAGE (default chaosdrill/target:latest), BASE_IMAGE, PYTHON (host interpreter whose
#      CPython minor version the wheels target; default .venv/bin/python), CHAOSDRILL_CACHE
#      (default .ci/cache), GIT_COMMIT, BUILD_ID.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${IMAGE:-chaosdrill/target:latest}"
CACHE="${CHAOSDRILL_CACHE:-$ROOT/.ci/cache}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Sub-step timings for CI logs ($EPOCHREALTIME: bash 5, no extra process).
T0=$EPOCHREALTIME
lap() { local now=$EPOCHREALTIME; printf '   [%s: %.1fs]\n' "$1" "$(awk "BEGIN{print $now - $T0}")"; T0=$now; }
# This machine's pip.conf may name extra local indexes that do not exist; pip warns per package.
quiet_pip() { grep -v 'is neither a file nor a directory' >&2 || true; }


if [[ -z "${BASE_IMAGE:-}" ]]; then
    BASE_IMAGE=chaosdrill/base:bookworm
    BASE_IMAGE="$BASE_IMAGE" bash "$ROOT/docker/build-base-image.sh"
    lap "base image"
fi
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker pull "$BASE_IMAGE" || {
    echo "error: base image $BASE_IMAGE is neither local nor pullable;" \
         "leave BASE_IMAGE unset to build one with debootstrap" >&2; exit 1; }
PY_VERSION="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# --- wheels -------------------------------------------------------------------------------
# The project's distributions: the plugin (with its test extra's deps) and the reference target
# (okx_demo_api/, its own distribution), both installed in the image.
PROJECTS=("$ROOT[test]" "$ROOT/okx_demo_api")
WHEELS="$CACHE/wheels"           # every dependency wheel ever built here (the cache)
BUILD_WHEELS="$CACHE/build-wheels"  # the project's build backend, for offline isolated builds
CONTEXT="$CACHE/docker-context"  # what `docker build` sees: deps/ and project/ only
mkdir -p "$WHEELS" "$BUILD_WHEELS"
rm -rf "$CONTEXT" && mkdir -p "$CONTEXT/deps" "$CONTEXT/project"
# The contract's data files (a service reads the reason-code manifest from /opt/chaosdrill/specs).
cp -r "$ROOT/specs" "$CONTEXT/specs"
FRESH="$(mktemp -d "$CACHE/wheels-run.XXXXXX")"
trap 'rm -rf "$FRESH"' EXIT

# Offline first: the cache usually has every wheel; a new or bumped dependency falls back to PyPI.
if "$PYTHON" -m pip wheel -q --no-index --find-links "$WHEELS" --find-links "$BUILD_WHEELS" \
        --wheel-dir "$FRESH" "${PROJECTS[@]}" 2>/dev/null; then
    echo "wheels: built offline from the cache"
else
    echo "wheels: cache incomplete, fetching from the package index"
    rm -f "$FRESH"/*.whl
    "$PYTHON" -m pip wheel -q --wheel-dir "$BUILD_WHEELS" hatchling 2> >(quiet_pip)
    "$PYTHON" -m pip wheel -q --find-links "$WHEELS" --wheel-dir "$FRESH" "${PROJECTS[@]}" 2> >(quiet_pip)
fi
for whl in "$FRESH"/*.whl; do
    case "$(basename "$whl")" in
        pytest_chaosdrill-*|okx_demo_api-*) cp "$whl" "$CONTEXT/project/" ;;
        *) cp "$whl" "$CONTEXT/deps/"; cp -n "$whl" "$WHEELS/" ;;
    esac
done
[[ -n "$(ls "$CONTEXT/project"/pytest_chaosdrill-*.whl 2>/dev/null)" ]] || { echo "error: no pytest_chaosdrill wheel was built" >&2; exit 1; }
[[ -n "$(ls "$CONTEXT/project"/okx_demo_api-*.whl 2>/dev/null)" ]] || { echo "error: no okx_demo_api wheel was built" >&2; exit 1; }
echo "wheels: $(ls "$CONTEXT/deps" | wc -l) dependencies + $(ls "$CONTEXT/project")"
lap "wheels"

# --- image --------------------------------------------------------------------------------
if [[ -z "${GIT_COMMIT:-}" ]]; then
    GIT_COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    # Honest provenance: an image built from a modified tree is not that commit.
    if [[ "$GIT_COMMIT" != unknown ]] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
        GIT_COMMIT="$GIT_COMMIT+dirty"
    fi
fi
BUILD_ID="${BUILD_ID:-local-$(date -u +%Y%m%dT%H%M%SZ)}"
LOG="$CACHE/docker-build.log"
# The legacy builder: Debian's engine has no buildx plugin, and it needs no registry.
if ! DOCKER_BUILDKIT=0 docker build --force-rm -f "$ROOT/docker/Dockerfile" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg PYTHON_VERSION="$PY_VERSION" \
        --build-arg GIT_COMMIT="$GIT_COMMIT" --build-arg BUILD_ID="$BUILD_ID" \
        --build-arg IMAGE_TAG="$IMAGE" -t "$IMAGE" "$CONTEXT" >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "error: docker build failed (full log: $LOG)" >&2
    exit 1
fi
# Each rebuild leaves the previous image untagged; drop those, never anything else.
docker image prune -f --filter label=io.chaosdrill.image=target >/dev/null || true
lap "docker build"
echo "built $IMAGE from $BASE_IMAGE: $(docker image inspect -f '{{.Id}}' "$IMAGE") commit=$GIT_COMMIT build=$BUILD_ID"
