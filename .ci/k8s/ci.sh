#!/usr/bin/env bash
# CI's kubernetes step: build the binaries (cached), start the two-node loopback cluster, load the
# project image, create and label the drill namespace, run the drills on the kubernetes backend, then
# run the safety tests (tests/e2e/test_k8s_cluster.py), tear the cluster down (on failure too) and check the host is as it was: no process, iptables rule,
# hosts entry or sysctl of the cluster left. Prints build, start and drill times.
# Then the cluster drills against one-bug variants of the reference target (tests/variants/launch.py in
# an image built from CHAOSDRILL_IMAGE): each must FAIL, or the step fails.
# Usage: ci.sh [PYTEST_ARGS...]   (default: drills -m "phase2 or cluster")
# Env: CHAOSDRILL_IMAGE (the image the pods run; built by .ci/docker-setup.sh).
set -euo pipefail
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
ROOT=$(readlink -f "$HERE/../..")
source "$HERE/env.sh"
cd "$ROOT"
IMAGE=${CHAOSDRILL_IMAGE:-chaosdrill/target:latest}
(($#)) || set -- drills -m "phase2 or cluster"
VARIANT_IMAGE=chaosdrill/target-variants:k8s-ci-$$
# bug:drill pairs: each variant must FAIL that cluster drill
VARIANT_CASES=(duplicate_dispatch_after_restart:cluster_1_pod_rescheduled no_restart_latch:cluster_1_pod_rescheduled
               no_fencing:cluster_2_node_loss no_restart_latch:cluster_3_oom_crash_loop)
sysctls_now() { for k in "${K8S_SYSCTLS[@]}"; do echo "$k $(sysctl -n "$k" 2>/dev/null)"; done; }

# A crashed earlier run: clean first (down.sh is idempotent).
bash "$HERE/down.sh"
before_sysctl=$(sysctls_now)
t=$(date +%s)
BIN=$(bash "$HERE/build.sh" | tail -1)
echo "k8s-ci: binaries ready in $(( $(date +%s) - t )) s ($BIN)"

rc=0
finish() {
  local t=$(date +%s) leftover=""
  docker rmi -f "$VARIANT_IMAGE" >/dev/null 2>&1 || true
  bash "$HERE/down.sh"
  echo "k8s-ci: teardown in $(( $(date +%s) - t )) s"
  pgrep -af -- "$K8S_DATA|$K8S_STATE|127.0.0.1:$K8S_ETCD_PORT" && leftover+=" processes"
  grep -ls ':/k8s.io/' /proc/[0-9]*/cgroup && leftover+=" pod-processes"
  iptables-save 2>/dev/null | grep -q -- "$K8S_MARK" && leftover+=" iptables"
  grep -q "# $K8S_MARK" /etc/hosts && leftover+=" hosts"
  [[ "$(sysctls_now)" == "$before_sysctl" ]] || { leftover+=" sysctls"; diff <(echo "$before_sysctl") <(sysctls_now) || true; }
  findmnt -rn -o TARGET | grep -q -e "^$K8S_DATA" -e "^$K8S_STATE" && leftover+=" mounts"
  if [[ -n $leftover ]]; then echo "k8s-ci: host not restored:$leftover" >&2; exit 1; fi
  echo "k8s-ci: host restored (no process, iptables rule, hosts entry, mount or changed sysctl left)"
}
trap finish EXIT

t=$(date +%s)
eval "$(bash "$HERE/up.sh" "$BIN" | tail -1)"
echo "k8s-ci: cluster up in $(( $(date +%s) - t )) s"
export KUBECONFIG CHAOSDRILL_K8S_HARNESS_HOST
t=$(date +%s)
bash "$HERE/load-image.sh" "$IMAGE"
echo "k8s-ci: image $IMAGE loaded in $(( $(date +%s) - t )) s"
kubectl create namespace chaosdrill >/dev/null
kubectl label namespace chaosdrill chaosdrill.io/drills=allowed >/dev/null

t=$(date +%s)
CHAOSDRILL_REQUIRE_KUBERNETES=1 CHAOSDRILL_IMAGE="$IMAGE" \
  "$ROOT/.venv/bin/pytest" -p no:cacheprovider --chaosdrill-backend kubernetes "$@" || rc=$?
echo "k8s-ci: drills in $(( $(date +%s) - t )) s (pytest exit $rc)"

# Safety on the cluster: the namespace interlock; Ctrl-C and SIGKILL of pytest mid-drill leave nothing
# (after k8s-reap) and touch nothing else.
t=$(date +%s)
CHAOSDRILL_REQUIRE_KUBERNETES=1 CHAOSDRILL_IMAGE="$IMAGE" \
  "$ROOT/.venv/bin/pytest" -p no:cacheprovider -q tests/e2e/test_k8s_cluster.py || rc=1
echo "k8s-ci: safety tests in $(( $(date +%s) - t )) s"

# Not vacuous: each cluster drill catches a service with one bug (each a separate run; each must FAIL).
t=$(date +%s)
printf 'FROM %s\nCOPY launch.py /variants/launch.py\n' "$IMAGE" |
  DOCKER_BUILDKIT=0 docker build -q -t "$VARIANT_IMAGE" -f - "$ROOT/tests/variants" >/dev/null
bash "$HERE/load-image.sh" "$VARIANT_IMAGE"
for case in "${VARIANT_CASES[@]}"; do
  bug=${case%%:*} drill=${case#*:}
  vt=$(mktemp --suffix=.yaml)
  "$ROOT/.venv/bin/python" -c 'import sys; from pathlib import Path; from tests.variants.targets import write_variant_target
write_variant_target(sys.argv[1], Path(sys.argv[2]), image=sys.argv[3], launcher_in_image="/variants/launch.py")' \
    "$bug" "$vt" "$VARIANT_IMAGE"
  vrc=0
  out=$(CHAOSDRILL_REQUIRE_KUBERNETES=1 "$ROOT/.venv/bin/pytest" -p no:cacheprovider drills -m cluster -k "$drill" \
        --chaosdrill-backend kubernetes --chaosdrill-target "$vt" 2>&1) || vrc=$?
  rm -f "$vt"
  if ((vrc == 1)) && grep -qE "^$drill +kubernetes +FAIL " <<<"$out"; then
    echo "k8s-ci: variant $bug: $drill FAILs, as it must"
  else
    echo "k8s-ci: variant $bug: $drill did not FAIL (pytest exit $vrc):" >&2
    tail -n 30 <<<"$out" >&2; rc=1
  fi
done
echo "k8s-ci: variants in $(( $(date +%s) - t )) s"
left=$(kubectl get pods -A -l app.kubernetes.io/managed-by=pytest-chaosdrill --no-headers 2>/dev/null | wc -l)
if ((left)); then echo "k8s-ci: $left drill pods left behind" >&2; kubectl get pods -A -l app.kubernetes.io/managed-by=pytest-chaosdrill >&2; rc=1; fi
exit "$rc"
