#!/usr/bin/env bash
# Whether dockerd and the kind cluster run, and its nodes. Exit 1 when the cluster does not run.
source "$(dirname "$0")/lib.sh"

"$KIND_DIR/docker.sh" status
docker_ready && [ -x "$KIND_BIN/kind" ] || exit 1
kind_cli get clusters 2>/dev/null | grep -qxF "$KIND_CLUSTER_NAME" || { echo "kind cluster $KIND_CLUSTER_NAME: absent"; exit 1; }
echo "kind cluster $KIND_CLUSTER_NAME: KUBECONFIG=$KIND_KUBECONFIG"
"$KUBE_BIN/kubectl" --kubeconfig "$KIND_KUBECONFIG" get nodes -o wide
