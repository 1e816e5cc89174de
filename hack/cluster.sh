#!/usr/bin/env bash
# hack/cluster.sh up|down|status [local|kind]: the test cluster `make cluster-up/cluster-down` manage.
#   local (default): the container-less control plane of hack/local-cluster.sh.
#   kind:            a kind cluster from images built here (hack/kind/<action>.sh, hack/KIND.md).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

action="${1:-}"; flavour="${2:-local}"
case "$action" in
  up | down | status) ;;
  *) die "usage: $0 up|down|status [local|kind]" ;;
esac
case "$flavour" in
  local) exec "$HACK_DIR/local-cluster.sh" "$action" ;;
  kind) exec "$HACK_DIR/kind/$action.sh" ;;
  existing) die "CLUSTER=existing uses your KUBECONFIG; there is nothing to start or stop" ;;
  *) die "unknown cluster '$flavour' (local, kind, existing)" ;;
esac
