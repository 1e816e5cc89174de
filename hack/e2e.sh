#!/usr/bin/env bash
# Runs the e2e suite (tests/e2e and plugins/*/tests/e2e) against a cluster:
#   CLUSTER=local (default): the local control plane; started here and stopped at the end
#     (also on failure) unless one was already running, which is reused and left running.
#     Tests marked `realpods` are skipped (KWOK pods never run anything), loudly. The fast
#     subset of tests/chaos runs too (make chaos runs all of it).
#   CLUSTER=kind: a kind cluster from images built here (hack/kind/up.sh), with the
#     operator and application images loaded; deleted at the end unless it was running.
#   CLUSTER=existing: whatever KUBECONFIG points at.
# Then the OLM stage on the same cluster (tests/e2e/olm): hack/olm.sh runs OLM on the host,
# the tests install minop from a catalog, upgrade and uninstall it (and, where pods run,
# operator-sdk scorecard); OLM is stopped again afterwards.
# Env: E2E_WORKERS (4), PYTEST_ARGS (extra pytest arguments; a later -m wins),
#      E2E_SUITE: all (default for local and kind) | main (default for existing) | olm,
#      E2E_APIONLY: 1 (default) | 0: leaves out the tests marked apionly (admission, RBAC,
#        the CLI: nothing about them differs between clusters), as make test does on kind
#        after they ran on the local cluster.
# The exit status is pytest's.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

CLUSTER_DIR="$(realpath -m "$CLUSTER_DIR")" # a relative CLUSTER_DIR would break KUBECONFIG
CLUSTER="${CLUSTER:-local}"
# The OLM stage by default on the clusters started here (local, kind): someone else's
# cluster may run an OLM of its own.
if [ "$CLUSTER" = existing ]; then SUITE="${E2E_SUITE:-main}"; else SUITE="${E2E_SUITE:-all}"; fi
case "$SUITE" in all | main | olm) ;; *) die "unknown E2E_SUITE=$SUITE (all, main, olm)" ;; esac
PY="$REPO_DIR/.venv/bin/python"
[ -x "$PY" ] || die "no $PY: run make venv"
started=""
case "$CLUSTER" in
  local)
    if "$HACK_DIR/local-cluster.sh" status -q; then
      log "reusing the running local cluster (left running afterwards)"
    else
      started=local
    fi
    export KUBECONFIG="$CLUSTER_DIR/kubeconfig" MINOP_CLUSTER_DIR="$CLUSTER_DIR"
    export MINOP_AUDIT_LOG="$CLUSTER_DIR/logs/audit.log" ;;
  kind)
    # up.sh reuses a running cluster; then it is left running like a local one.
    if "$HACK_DIR/kind/docker.sh" status | grep -q '^dockerd running' \
        && [ -f "$CLUSTER_DIR/kind-kubeconfig" ]; then
      "$HACK_DIR/kind/up.sh" >/dev/null
      log "reusing the running kind cluster (left running afterwards)"
    else
      started=kind
    fi
    export KUBECONFIG="$CLUSTER_DIR/kind-kubeconfig"
    export MINOP_AUDIT_LOG="$CLUSTER_DIR/kind-audit/audit.log" ;;
  existing)
    [ -n "${KUBECONFIG:-}" ] || die "CLUSTER=existing needs KUBECONFIG" ;;
  *) die "unknown CLUSTER=$CLUSTER (local, kind, existing)" ;;
esac
cleanup() {
  [ "$SUITE" = main ] || "$HACK_DIR/olm.sh" down || true
  [ -z "$started" ] || "$HACK_DIR/cluster.sh" down "$started" || true
}
trap cleanup EXIT
if [ -n "$started" ]; then
  # Set before starting, so a start that fails half-way is cleaned up too.
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "$HACK_DIR/cluster.sh" up "$started" >/dev/null
fi

dirs=("$REPO_DIR/tests/e2e")
for d in "$REPO_DIR"/plugins/*/tests/e2e; do
  [ ! -d "$d" ] || dirs+=("$d")
done
# The chaos suite's fast subset (tests marked chaos_fast; make chaos runs it all) needs the
# local control plane (etcd, the audit policy, the apiserver's flags).
[ "$CLUSTER" != local ] || dirs+=("$REPO_DIR/tests/chaos")
# -rs: every skipped test and its reason in the summary (e.g. "needs real pods");
# --durations: the 15 slowest setups, calls and teardowns, to see where the time goes.
# --dist load --maxschedchunk 1: tests are handed out one by one in collection order,
# which conftest.py makes slowest first, so the long ones overlap.
args=(-p xdist -p timeout --dist load --maxschedchunk 1 --timeout 600 -p no:cacheprovider -rs --durations=15)
if [ "${E2E_APIONLY:-1}" = 0 ]; then
  args+=(-m "not apionly")
  log "leaving out the tests marked apionly (E2E_APIONLY=0): they ran on the local cluster"
fi

# Our kubectl first on PATH, so tests use the version the cluster runs.
export PATH="$KUBE_BIN:$PATH" MINOP_CLUSTER="$CLUSTER"
rc=0
since="$(date -u '+%Y-%m-%d %H:%M:%S')"
if [ "$SUITE" != olm ]; then
  # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words by design
  "$PY" -m pytest "${dirs[@]}" --ignore="$REPO_DIR/tests/e2e/olm" -n "${E2E_WORKERS:-4}" \
    "${args[@]}" ${PYTEST_ARGS:-} || rc=$?
fi
if [ "$SUITE" != main ]; then
  # After the main suite: OLM's operators act on every namespace.
  t0=$SECONDS
  "$HACK_DIR/olm.sh" up
  # scorecard runs pods: only where they run
  export MINOP_OPERATOR_SDK="$MINOP_CACHE/operator-sdk/$OPERATOR_SDK_VERSION/bin/operator-sdk"
  version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_DIR/pyproject.toml")"
  # The upgrade's next version (patch + 1) and its operator image: on kind the working
  # tree's image under that name too, so the upgraded Deployment really rolls.
  next="${version%.*}.$((${version##*.} + 1))"
  export MINOP_OLM_NEXT_VERSION="$next" MINOP_OLM_NEXT_IMAGE="quay.io/minop/minop:v$next"
  if [ "$CLUSTER" = kind ]; then
    [ -x "$MINOP_OPERATOR_SDK" ] || "$HACK_DIR/olm.sh" build sdk
    docker tag minop/minop:dev "$MINOP_OLM_NEXT_IMAGE"
    "$HACK_DIR/kind/load.sh" "$MINOP_OLM_NEXT_IMAGE"
    "$HACK_DIR/kind/scorecard-image.sh" >/dev/null
  fi
  # shellcheck disable=SC2086
  "$PY" -m pytest "$REPO_DIR/tests/e2e/olm" -n 2 "${args[@]}" ${PYTEST_ARGS:-} || rc=$?
  "$HACK_DIR/olm.sh" down
  log "OLM stage on $CLUSTER: $((SECONDS - t0))s"
fi
if [ "$CLUSTER" = kind ]; then
  # Every image a test runs must have been built here: any pull attempt is a failure.
  # shellcheck source=kind/lib.sh
  pulls="$(source "$HACK_DIR/kind/lib.sh" && for n in $(kind_cli get nodes --name "$KIND_CLUSTER_NAME"); do
    docker exec "$n" journalctl -u containerd --since "$since" -o cat --no-pager; done \
    | grep -o 'PullImage \\"[^\\]*' | sort | uniq -c || true)"
  if [ -n "$pulls" ]; then
    log "FAILED: containerd was asked to pull images (nothing can be pulled here):"
    printf '%s\n' "$pulls" >&2
    rc=1
  else
    log "no image pull was attempted on the kind nodes"
  fi
fi
if [ "$CLUSTER" = local ]; then
  log "SKIPPED: needs real pods — the realpods tests did not run on KWOK; run make e2e CLUSTER=kind"
fi
exit "$rc"
