# Shared settings for hack/kind/*.sh. Source it; it sources hack/lib.sh (strict mode).
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
KIND_DIR="$HACK_DIR/kind"
# shellcheck source=versions.env
source "$KIND_DIR/versions.env"

KIND_CACHE="$MINOP_CACHE/kind"
# Everything Go-built for the node image and its preloaded images, keyed by version.
NODE_BINS="$KIND_CACHE/node-bins/$KUBE_VERSION"        # kubelet kubeadm kube-proxy (+ control plane, copied)
COMP_BINS="$KIND_CACHE/bins"                           # <name>/<version>/<binary>
PIDS="$CLUSTER_DIR/pids"
LOGS="$CLUSTER_DIR/logs"

KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-minop}"
KIND_KUBECONFIG="$CLUSTER_DIR/kind-kubeconfig"
BASE_IMAGE="minop/debian:bookworm"
NODE_IMAGE="minop/kind-node:$KUBE_VERSION"
# Our own registry-free names for the add-on images (kubeadm's images keep the
# exact registry.k8s.io names kubeadm asks for, see node-image.sh).
LOCAL_REPO="minop.local"

kind_cli() { "$KIND_BIN/kind" "$@"; }

docker_ready() { docker info >/dev/null 2>&1; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# image_label <image> <label>: a label's value, empty if unset or no image.
image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null | sed 's/<no value>//'
}

# timed <name> <cmd...>: run and append "<name> <seconds>" to the timing log, so
# cold/warm durations of each stage can be read back (hack/KIND.md).
timed() {
  local name="$1" t0=$SECONDS; shift
  "$@"
  mkdir -p "$LOGS"
  printf '%s %s %ss\n' "$(date +%FT%T)" "$name" "$((SECONDS - t0))" >>"$LOGS/kind-timings.log"
}
