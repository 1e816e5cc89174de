#!/usr/bin/env bash
# kind cluster for the e2e suite, from images built on this machine only:
# Docker engine (docker.sh) -> node image (node-image.sh) -> kind CLI ->
# `kind create cluster` -> nodes and CoreDNS Ready -> application images loaded.
# Idempotent: a running cluster with the current node image is reused.
# Prints the KUBECONFIG line on stdout; everything else goes to stderr.
# Env: KIND_CLUSTER_NAME (minop), KIND_CONFIG (hack/kind/cluster.yaml),
#      KIND_APP_IMAGES=0 to skip building/loading the operator and application images.
# The API server's audit log lands in $KIND_AUDIT_DIR/audit.log (fresh per cluster).
source "$(dirname "$0")/lib.sh"

t0=$SECONDS
mkdir -p "$LOGS" "$CLUSTER_DIR"
"$KIND_DIR/docker.sh" start
"$KIND_DIR/node-image.sh" >/dev/null
"$HACK_DIR/build-bins.sh" kind
KUBECTL=("$KUBE_BIN/kubectl" --kubeconfig "$KIND_KUBECONFIG")
node_container="$KIND_CLUSTER_NAME-control-plane"

cluster_current() {  # the cluster exists, runs, and uses the node image we just built
  kind_cli get clusters 2>/dev/null | grep -qxF "$KIND_CLUSTER_NAME" || return 1
  [ "$(docker inspect -f '{{.State.Running}}' "$node_container" 2>/dev/null)" = true ] || return 1
  [ "$(docker inspect -f '{{.Image}}' "$node_container")" = "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")" ]
}

create() {
  if kind_cli get clusters 2>/dev/null | grep -qxF "$KIND_CLUSTER_NAME"; then
    log "kind cluster $KIND_CLUSTER_NAME is stale (stopped or older node image); recreating"
    kind_cli delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KIND_KUBECONFIG" >&2
  fi
  log "creating kind cluster $KIND_CLUSTER_NAME from $NODE_IMAGE"
  rm -rf "$KIND_AUDIT_DIR"; mkdir -p "$KIND_AUDIT_DIR"
  sed -e "s#@REPO@#$REPO_DIR#g" -e "s#@AUDIT_DIR@#$KIND_AUDIT_DIR#g" \
    "${KIND_CONFIG:-$KIND_DIR/cluster.yaml}" >"$CLUSTER_DIR/kind-config.yaml"
  kind_cli create cluster --name "$KIND_CLUSTER_NAME" --image "$NODE_IMAGE" \
    --config "$CLUSTER_DIR/kind-config.yaml" --kubeconfig "$KIND_KUBECONFIG" \
    2>&1 | tee "$LOGS/kind-create.log" >&2
}

if cluster_current; then
  log "kind cluster $KIND_CLUSTER_NAME already running"
  kind_cli export kubeconfig --name "$KIND_CLUSTER_NAME" --kubeconfig "$KIND_KUBECONFIG" 2>/dev/null
else
  timed cluster-create create
fi

wait_ready() {
  "${KUBECTL[@]}" wait --for=condition=Ready node --all --timeout=180s >/dev/null
  "${KUBECTL[@]}" -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null
  "${KUBECTL[@]}" -n local-path-storage rollout status deployment/local-path-provisioner --timeout=180s >/dev/null
  # Workloads in `default` need its ServiceAccount (created asynchronously).
  until "${KUBECTL[@]}" get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done
}
timed cluster-ready wait_ready || die "cluster not ready; see: KUBECONFIG=$KIND_KUBECONFIG kubectl get pods -A"

if [ "${KIND_APP_IMAGES:-1}" != 0 ]; then
  mapfile -t apps < <("$KIND_DIR/app-images.sh")
  timed app-images-load "$KIND_DIR/load.sh" "${apps[@]}"
fi
log "kind cluster $KIND_CLUSTER_NAME ready in $((SECONDS - t0))s"
echo "export KUBECONFIG=$KIND_KUBECONFIG"
