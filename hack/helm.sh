#!/usr/bin/env bash
# hack/helm.sh [helm args...]: Helm at $HELM_VERSION, built once into
# $MINOP_CACHE/helm/$HELM_VERSION/bin from the module proxy, then run with the arguments
# (none: only build it and print its path).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=gobuild.sh
source "$HACK_DIR/gobuild.sh"

HELM_BIN="$MINOP_CACHE/helm/$HELM_VERSION/bin"
if ! all_present "$HELM_BIN" helm; then
  command -v go >/dev/null || die "Go is required (https://go.dev/dl); none found on PATH"
  # one build at a time (tests in parallel workers may all ask for it); the others wait
  mkdir -p "$MINOP_CACHE/helm"
  exec 9>"$MINOP_CACHE/helm/.lock"
  flock 9
  # stamped so `helm version` names the version instead of a bare major
  all_present "$HELM_BIN" helm ||
    BUILD_LDFLAGS="-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
      module_build "$HELM_BIN" helm.sh/helm/v4 "$HELM_VERSION" cmd/helm
  exec 9>&-
fi
[ $# -gt 0 ] || { echo "$HELM_BIN/helm"; exit 0; }
exec "$HELM_BIN/helm" "$@"
