#!/usr/bin/env bash
# OLM (v0 operator-lifecycle-manager) against the cluster KUBECONFIG points at, with every
# component a host process on 127.0.0.1 (nothing is pulled or run as a pod):
#   build [olm|opm|sdk]...    olm + catalog (OLM), opm (operator-registry), operator-sdk and
#                             scorecard-test, built once into $MINOP_CACHE from the module proxy.
#   up                        OLM's CRDs (server-side apply), namespace olm (the global catalog
#                             namespace), olm-operator and catalog-operator on free ports.
#   catalog <bundle dir>...   a file-based catalog of these bundles in one channel (its
#                             entries' replaces/skipRange from each CSV), `opm validate`d and
#                             served by `opm serve` on a free port; CatalogSource olm/minop
#                             points at it (spec.address). A later call serves the new catalog
#                             on a new port, repoints the CatalogSource, then stops the old one.
#   down                      stops everything up and catalog started (by recorded PID).
#   status [-q]
# No packageserver: its APIService would need a backend in the cluster (none on KWOK).
# State: $CLUSTER_DIR/olm/{pids,logs,catalog-N}.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=gobuild.sh
source "$HACK_DIR/gobuild.sh"
# shellcheck source=procs.sh
source "$HACK_DIR/procs.sh"

OLM_BIN="$MINOP_CACHE/olm/$OLM_VERSION/bin"
OLM_CRDS="$MINOP_CACHE/olm/$OLM_VERSION/crds"
OPM_BIN="$MINOP_CACHE/opm/$OPM_VERSION/bin"
SDK_BIN="$MINOP_CACHE/operator-sdk/$OPERATOR_SDK_VERSION/bin"
STATE="$(realpath -m "$CLUSTER_DIR")/olm"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
NS=olm
CATALOG=minop
PACKAGE=minop
CHANNEL=alpha
KUBECTL="$KUBE_BIN/kubectl"

k() { "$KUBECTL" --request-timeout=30s "$@"; }

# -- build -------------------------------------------------------------------------------
# Both operators serve /healthz and /metrics on a hard-coded :8080; opm serve listens on
# every interface. These patches (made at build time to a copy of the downloaded module,
# nothing of theirs is stored here) let OLM_LISTEN_ADDRESS / OPM_LISTEN_HOST choose.
olm_patch() { # <module copy>
  local src="$1/pkg/lib/server/server.go"
  grep -q 'return ":8080"' "$src" || die "OLM $OLM_VERSION: no listen address to patch in $src"
  sed -i -e 's/return ":8080"/return listenAddress(":8080")/' \
    -e 's/return ":8443"/return listenAddress(":8443")/' "$src"
  cat >"$1/pkg/lib/server/zz_minop_listen.go" <<'GO'
package server

import "os"

// listenAddress: OLM_LISTEN_ADDRESS (host:port) when set, so OLM binds where it is told.
func listenAddress(def string) string {
	if a := os.Getenv("OLM_LISTEN_ADDRESS"); a != "" {
		return a
	}
	return def
}
GO
}

opm_patch() { # <module copy>
  local src="$1/cmd/opm/serve/serve.go"
  grep -q 'net.Listen("tcp", ":"+s.port)' "$src" || die "opm $OPM_VERSION: no listener to patch in $src"
  sed -i 's/net.Listen("tcp", ":"+s.port)/net.Listen("tcp", os.Getenv("OPM_LISTEN_HOST")+":"+s.port)/' "$src"
}

# build [olm] [opm] [sdk]: the named tools (default: all).
build() {
  command -v go >/dev/null || die "Go is required (https://go.dev/dl); none found on PATH"
  local what=" ${*:-olm opm sdk} "
  [[ "$what" != *" olm "* ]] || build_olm
  [[ "$what" != *" opm "* ]] || build_opm
  [[ "$what" != *" sdk "* ]] || build_sdk
}

build_olm() {
  local olm=github.com/operator-framework/operator-lifecycle-manager
  BUILD_TAGS=json1 BUILD_PATCH=olm_patch \
    BUILD_LDFLAGS="-X '$olm/pkg/version.OLMVersion=${OLM_VERSION#v}'" \
    module_build "$OLM_BIN" "$olm" "$OLM_VERSION" cmd/olm cmd/catalog
  if [ ! -d "$OLM_CRDS" ]; then
    local dir; dir="$(go mod download -json "$olm@$OLM_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    mkdir -p "$OLM_CRDS.tmp"
    cp "$dir"/deploy/chart/crds/*.yaml "$OLM_CRDS.tmp/"
    chmod u+w "$OLM_CRDS.tmp"/*
    mv "$OLM_CRDS.tmp" "$OLM_CRDS"
  fi
}

build_opm() {
  local reg=github.com/operator-framework/operator-registry
  # sqlite (the deprecated index format opm still links) needs CGO.
  BUILD_TAGS=json1,containers_image_openpgp BUILD_CGO=1 BUILD_PATCH=opm_patch \
    BUILD_LDFLAGS="-X '$reg/cmd/opm/version.opmVersion=$OPM_VERSION'" \
    module_build "$OPM_BIN" "$reg" "$OPM_VERSION" cmd/opm
}

build_sdk() {
  local sdk=github.com/operator-framework/operator-sdk v ld=""
  v="$sdk/internal/version"
  for var in Version GitVersion ImageVersion; do ld+=" -X '$v.$var=$OPERATOR_SDK_VERSION'"; done
  BUILD_TAGS=containers_image_openpgp BUILD_LDFLAGS="$ld -X '$v.KubernetesVersion=$KUBE_VERSION'" \
    module_build "$SDK_BIN" "$sdk" "$OPERATOR_SDK_VERSION" cmd/operator-sdk images/scorecard-test
}

built() { # what `up` and `catalog` run
  all_present "$OLM_BIN" olm catalog && all_present "$OPM_BIN" opm && [ -d "$OLM_CRDS" ]
}

# -- up / down ----------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

healthy() { curl -fsS --max-time 2 "http://$(cat "$STATE/$1.addr")/healthz"; }

up() {
  [ -n "${KUBECONFIG:-}" ] || die "KUBECONFIG is required (the cluster OLM runs against)"
  built || build olm opm
  [ -x "$KUBECTL" ] || "$HACK_DIR/build-bins.sh" k8s
  mkdir -p "$PIDS" "$LOGS"
  if alive olm && alive catalog; then
    log "OLM already running (PIDs in $PIDS)"
    return 0
  fi
  down >/dev/null 2>&1
  rm -rf "$STATE"/catalog-*
  trap 'log "OLM start failed; stopping what was started (logs in $LOGS)"; down >/dev/null 2>&1' EXIT
  local t0=$SECONDS
  # The CSV CRD is larger than client-side apply's last-applied annotation may be.
  k apply --server-side --force-conflicts -f "$OLM_CRDS" >/dev/null
  k wait --for=condition=Established --timeout=60s -f "$OLM_CRDS" >/dev/null
  k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  # writeStatusName="": no OpenShift ClusterOperator to report to.
  local addr
  for name in olm catalog; do
    addr="127.0.0.1:$(free_port)"
    echo "$addr" >"$STATE/$name.addr"
    case "$name" in
      olm) START_BIN=olm start olm env OLM_LISTEN_ADDRESS="$addr" OPERATOR_NAMESPACE="$NS" \
             OPERATOR_NAME=olm-operator "$OLM_BIN/olm" --namespace "$NS" \
             --writeStatusName= --writePackageServerStatusName= ;;
      catalog) START_BIN=catalog start catalog env OLM_LISTEN_ADDRESS="$addr" \
                 "$OLM_BIN/catalog" --namespace "$NS" --writeStatusName= \
                 --kubeconfig "$KUBECONFIG" ;;
    esac
  done
  wait_until 60 "olm-operator /healthz" olm healthy olm
  wait_until 60 "catalog-operator /healthz" catalog healthy catalog
  trap - EXIT
  log "OLM $OLM_VERSION up in $((SECONDS - t0))s: olm-operator $(cat "$STATE/olm.addr"), catalog-operator $(cat "$STATE/catalog.addr"), logs in $LOGS"
}

down() {
  stopped=0
  local f
  for f in "$PIDS"/opm-*; do
    [ -e "$f" ] || continue
    case "$f" in *.bin) continue ;; esac
    stop "$(basename "$f")"
  done
  stop catalog
  stop olm
  if [ "$stopped" -gt 0 ]; then log "OLM stopped ($stopped processes); logs kept in $LOGS"; fi
}

status() {
  local rc=0 name
  for name in olm catalog; do
    if alive "$name"; then [ "${1:-}" = -q ] || echo "$name running (pid $(pid_of "$name"))"
    else [ "${1:-}" = -q ] || echo "$name stopped"; rc=1; fi
  done
  return $rc
}

# -- catalog -------------------------------------------------------------------------------
# channel_entries <bundle dir>...: the olm.channel entries, from each CSV's name, replaces
# and skipRange.
channel_entries() {
  "$REPO_DIR/.venv/bin/python" - "$@" <<'PY'
import json, pathlib, sys, yaml
entries = []
for d in sys.argv[1:]:
    (path,) = pathlib.Path(d, "manifests").glob("*.clusterserviceversion.yaml")
    csv = yaml.safe_load(path.read_text())
    e = {"name": csv["metadata"]["name"]}
    for key in ("replaces", "skipRange"):
        if csv["spec"].get(key):
            e[key] = csv["spec"][key]
    entries.append(e)
print(json.dumps(entries))
PY
}

catalog() {
  [ $# -gt 0 ] || die "usage: $0 catalog <bundle dir>..."
  alive catalog || die "OLM is not running: $0 up first"
  local n=0
  while [ -e "$STATE/catalog-$n" ]; do n=$((n + 1)); done
  local dir="$STATE/catalog-$n"
  mkdir -p "$dir/$PACKAGE"
  {
    "$OPM_BIN/opm" init "$PACKAGE" --default-channel="$CHANNEL" --output=yaml
    local b
    for b in "$@"; do "$OPM_BIN/opm" render "$(realpath "$b")" --output=yaml; done
    printf -- '---\nschema: olm.channel\npackage: %s\nname: %s\nentries: %s\n' \
      "$PACKAGE" "$CHANNEL" "$(channel_entries "$@")"
  } >"$dir/$PACKAGE/catalog.yaml"
  "$OPM_BIN/opm" validate "$dir" || die "opm validate failed on $dir"
  local port old="" f
  port="$(free_port)"
  for f in "$PIDS"/opm-*; do
    case "$f" in *.bin | "$PIDS/opm-*") ;; *) old+=" $(basename "$f")" ;; esac
  done
  START_BIN=opm start "opm-$n" env OPM_LISTEN_HOST=127.0.0.1 "$OPM_BIN/opm" serve "$dir" \
    --port "$port" --pprof-addr= --termination-log=/dev/null
  wait_until 60 "opm serve on 127.0.0.1:$port" "opm-$n" port_busy "$port"
  k apply -f - >/dev/null <<YAML
apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata:
  name: $CATALOG
  namespace: $NS
spec:
  sourceType: grpc
  address: 127.0.0.1:$port
  displayName: minop (local catalog)
  publisher: minop
YAML
  k wait -n "$NS" "catalogsource/$CATALOG" --timeout=120s \
    --for=jsonpath='{.status.connectionState.address}'="127.0.0.1:$port" >/dev/null
  k wait -n "$NS" "catalogsource/$CATALOG" --timeout=120s \
    --for=jsonpath='{.status.connectionState.lastObservedState}'=READY >/dev/null
  for f in $old; do stop "$f"; done
  log "catalog $NS/$CATALOG: $* served on 127.0.0.1:$port"
}

lock() { # one up/down/catalog at a time per state dir
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 300 9 || die "another hack/olm.sh holds $STATE/.lock"
}

case "${1:-}" in
  build) shift; build "$@" ;;
  up) lock; up ;;
  down) lock; down ;;
  catalog) shift; lock; catalog "$@" ;;
  status) status "${2:-}" ;;
  *) die "usage: $0 build | up | down | catalog <bundle dir>... | status [-q]" ;;
esac
