#!/usr/bin/env bash
# Deletes the kind cluster, then stops dockerd if hack/kind/docker.sh started it.
# Images stay (docker and $MINOP_CACHE/kind/images) so the next `up` is warm.
source "$(dirname "$0")/lib.sh"

if docker_ready && [ -x "$KIND_BIN/kind" ]; then
  if kind_cli get clusters 2>/dev/null | grep -qxF "$KIND_CLUSTER_NAME"; then
    kind_cli delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KIND_KUBECONFIG" >&2
  fi
fi
rm -f "$KIND_KUBECONFIG"
"$KIND_DIR/docker.sh" stop
