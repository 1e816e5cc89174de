#!/usr/bin/env bash
# `make run`: a local cluster unless KUBECONFIG is set, the CRDs, then the operator.
source "$(dirname "$0")/lib.sh"

if [ -z "${KUBECONFIG:-}" ]; then
  "$HACK_DIR/local-cluster.sh" up >/dev/null
  export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
  log "using the local cluster (it keeps running after Ctrl-C; stop it with: make cluster-down)"
fi
export PATH="$KUBE_BIN:$PATH"
PY="$REPO_DIR/.venv/bin/python"
crds="$("$PY" -m minop crds)"
if [ -n "$crds" ]; then
  kubectl apply --server-side --force-conflicts -f - <<<"$crds" >/dev/null
fi
exec "$PY" -m minop run "$@"
