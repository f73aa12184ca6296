#!/usr/bin/env bash
# Docker for the container backend, on a fresh Debian bookworm machine or again on a warm one:
#   1. packages: docker.io (engine + containerd + runc + tini), docker-compose (v1; bookworm has no
#      compose v2 plugin), debootstrap; skipped when already installed;
#   2. dockerd in the background (log: $DOCKERD_LOG) unless an engine already answers; waits for it
#      with a deadline; overlay2, falls back to vfs if overlay2 cannot start;
#   3. reaps io.chaosdrill.managed resources older than an hour (left by killed runs);
#   4. the base image (debootstrap + docker import, cached), the chaosdrill image (wheels cached) and
#      the example service's image (examples/threaded_service, offline from the same wheel cache).
# Image tags: CHAOSDRILL_IMAGE (default chaosdrill/target:latest) and THREADED_SERVICE_IMAGE (default
# chaosdrill/example-threaded:latest), the names the tests and the target files read.
# Prints how long each step took. Idempotent: safe to run twice, fast the second time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/chaosdrill-dockerd.log}"
DOCKERD_WAIT_S="${DOCKERD_WAIT_S:-60}"

T_ALL=$EPOCHREALTIME
step() { printf '\n== docker-setup: %s\n' "$*"; T_STEP=$EPOCHREALTIME; }
done_step() { printf '== done in %ss\n' "$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $T_STEP}")"; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }

step "packages (docker.io, docker-compose, debootstrap)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" iptables ca-certificates >/dev/null
else
    echo "already installed"
fi
done_step

step "docker engine"
engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
start_dockerd() {
    # setsid + nohup: the daemon outlives this script and the CI step that ran it.
    as_root setsid nohup dockerd "$@" >>"$DOCKERD_LOG" 2>&1 < /dev/null &
    local pid=$! deadline=$((SECONDS + DOCKERD_WAIT_S))
    until engine_up; do
        if ! kill -0 "$pid" 2>/dev/null && ! pgrep -x dockerd >/dev/null; then
            echo "dockerd${*:+ $*} exited; last log lines:" >&2; tail -n 15 "$DOCKERD_LOG" >&2; return 1
        fi
        ((SECONDS < deadline)) || { echo "dockerd did not answer within ${DOCKERD_WAIT_S}s" >&2; tail -n 15 "$DOCKERD_LOG" >&2; return 1; }
        sleep 0.5
    done
}
if engine_up; then
    echo "engine already running"
elif pgrep -x dockerd >/dev/null; then
    # A daemon is starting (e.g. a parallel run of this script): wait for it, do not start a second.
    deadline=$((SECONDS + DOCKERD_WAIT_S))
    until engine_up; do ((SECONDS < deadline)) || { echo "dockerd running but not answering" >&2; exit 1; }; sleep 0.5; done
else
    echo "starting dockerd (log: $DOCKERD_LOG)"
    start_dockerd || { echo "retrying with --storage-driver=vfs"; start_dockerd --storage-driver=vfs; }
fi
docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}} (API {{.Server.APIVersion}})'
docker info --format 'storage {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null || true
done_step

step "reap leftovers of killed runs (io.chaosdrill.managed=true, older than 1h)"
PY="$ROOT/.venv/bin/python"
if [[ "${CHAOSDRILL_CI_SHARED_ENGINE:-0}" == 1 ]]; then
    # An engine other runs use too: what they left is theirs to reap (chaosdrill docker-reap).
    echo "skipped: CHAOSDRILL_CI_SHARED_ENGINE=1"
elif [[ -x "$PY" ]] && "$PY" -c 'import pytest_chaosdrill.backends.docker_engine' 2>/dev/null; then
    "$PY" -c 'from pytest_chaosdrill.backends.docker_engine import reap; r = reap(older_than_s=3600); print("removed:", ", ".join(r) or "nothing")'
else
    echo "skipped: project venv not installed yet"
fi
done_step

step "base image (debootstrap bookworm + docker import; cached)"
bash "$ROOT/docker/build-base-image.sh"
done_step

step "chaosdrill image (wheels on the host, offline docker build)"
IMAGE="${CHAOSDRILL_IMAGE:-chaosdrill/target:latest}" bash "$ROOT/docker/build-images.sh"
done_step

step "example service image (examples/threaded_service; wheels from the cache the step above filled)"
IMAGE="${THREADED_SERVICE_IMAGE:-chaosdrill/example-threaded:latest}" bash "$ROOT/examples/threaded_service/build-image.sh"
done_step

printf '\n== docker-setup: total %ss\n' "$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $T_ALL}")"
