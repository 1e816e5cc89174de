# Shared helpers for hack/ scripts. Source it; it sets strict mode.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

MINOP_CACHE="${MINOP_CACHE:-$HOME/.cache/minop}"
KUBE_BIN="$MINOP_CACHE/k8s/$KUBE_VERSION/bin"
ETCD_BIN="$MINOP_CACHE/etcd/$ETCD_VERSION/bin"
KWOK_BIN="$MINOP_CACHE/kwok/$KWOK_VERSION/bin"
KIND_BIN="$MINOP_CACHE/kind/$KIND_VERSION/bin"
CLUSTER_DIR="${CLUSTER_DIR:-$REPO_DIR/.cluster}"

log() { printf '[hack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[hack] error: %s\n' "$*" >&2; exit 1; }

# Go builds here never fetch a toolchain: the machine's Go must do.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
