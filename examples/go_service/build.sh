#!/usr/bin/env bash
# Builds the Go example service offline: Go 1.19 from Debian (golang-go) and gorilla/websocket from
# Debian's golang-github-gorilla-websocket-dev (under /usr/share/gocode), GOPATH mode, no module proxy.
# Idempotent; prints the binary's path. A static binary (CGO_ENABLED=0), so it runs in any image.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${GO_SERVICE_BIN:-$here/bin/go_service}"
gocode="${GOCODE:-/usr/share/gocode}"
if ! command -v go >/dev/null; then
  echo "build.sh: go not found (apt-get install golang-go golang-github-gorilla-websocket-dev)" >&2; exit 3
fi
if [ ! -d "$gocode/src/github.com/gorilla/websocket" ]; then
  echo "build.sh: $gocode/src/github.com/gorilla/websocket missing (apt-get install golang-github-gorilla-websocket-dev)" >&2; exit 3
fi
commit="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo not-applicable:no-git)"
mkdir -p "$(dirname "$out")"
cd "$here"
GO111MODULE=off GOPATH="$gocode" GOFLAGS= GOPROXY=off CGO_ENABLED=0 \
  GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/go-build}" \
  go build -trimpath -ldflags "-s -w -X main.gitCommit=$commit -X main.buildID=go-service-$commit" -o "$out" .
# the reason manifest beside the binary: the image's build context (Dockerfile) takes both from bin/
cp "$here/../../specs/status_reason_registries_manifest.json" "$(dirname "$out")/"
echo "$out"
