#!/usr/bin/env bash
# hack/cluster.sh up|down [local|kind]: the test cluster `make cluster-up/down` manage.
source "$(dirname "$0")/lib.sh"

action="${1:-}"; flavour="${2:-local}"
case "$flavour" in
  local) exec "$HACK_DIR/local-cluster.sh" "$action" ;;
  kind)
    [ -x "$HACK_DIR/kind/$action.sh" ] || die "kind: hack/kind/$action.sh not available yet"
    exec "$HACK_DIR/kind/$action.sh" ;;
  existing) die "CLUSTER=existing uses your KUBECONFIG; there is nothing to start or stop" ;;
  *) die "unknown cluster '$flavour' (local, kind, existing)" ;;
esac
