#!/usr/bin/env bash
# Runs the e2e suite against CLUSTER=local (started here and stopped afterwards,
# unless one was already running), kind, or existing (your KUBECONFIG).
source "$(dirname "$0")/lib.sh"

CLUSTER="${CLUSTER:-local}"
started=""
case "$CLUSTER" in
  local)
    export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
    if [ ! -f "$CLUSTER_DIR/pids/kube-apiserver" ] || ! kill -0 "$(cat "$CLUSTER_DIR/pids/kube-apiserver")" 2>/dev/null; then
      "$HACK_DIR/local-cluster.sh" up >/dev/null
      started=local
    fi ;;
  kind)
    "$HACK_DIR/cluster.sh" up kind >/dev/null
    export KUBECONFIG="$CLUSTER_DIR/kind-kubeconfig"
    started=kind ;;
  existing)
    [ -n "${KUBECONFIG:-}" ] || die "CLUSTER=existing needs KUBECONFIG" ;;
  *) die "unknown CLUSTER=$CLUSTER (local, kind, existing)" ;;
esac
[ -z "$started" ] || trap '"$HACK_DIR/cluster.sh" down "$started"' EXIT

# Our kubectl first on PATH, so tests use the version the cluster runs.
export PATH="$KUBE_BIN:$PATH" MINOP_CLUSTER="$CLUSTER"
# shellcheck disable=SC2086
"$REPO_DIR/.venv/bin/python" -m pytest "$REPO_DIR/tests/e2e" -n "${E2E_WORKERS:-4}" \
  --dist worksteal --timeout 600 -p no:cacheprovider ${PYTEST_ARGS:-}
