#!/usr/bin/env bash
# make chaos: the whole chaos suite (tests/chaos, README there) on the local control plane,
# started here and stopped at the end unless one was already running (then reused and left
# running). The scenarios that restart kube-apiserver run after the others, one at a time.
# Writes tests/chaos/results/<date>-<commit>.md; the exit status is non-zero when a test
# failed or no figures were recorded.
# Env: CHAOS_WORKERS (3), PYTEST_ARGS (extra pytest arguments).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

CLUSTER_DIR="$(realpath -m "$CLUSTER_DIR")"
PY="$REPO_DIR/.venv/bin/python"
[ -x "$PY" ] || die "no $PY: run make venv"
started=""
"$HACK_DIR/local-cluster.sh" status -q || started=local
raw="$(mktemp)"
trap 'rm -f "$raw"; [ -z "$started" ] || "$HACK_DIR/cluster.sh" down local || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "$started" ]; then
  "$HACK_DIR/cluster.sh" up local >/dev/null
else
  log "reusing the running local cluster (left running afterwards)"
fi
export KUBECONFIG="$CLUSTER_DIR/kubeconfig" MINOP_CLUSTER_DIR="$CLUSTER_DIR" MINOP_CLUSTER=local
export MINOP_AUDIT_LOG="$CLUSTER_DIR/logs/audit.log" PATH="$KUBE_BIN:$PATH"
export MINOP_CHAOS=all MINOP_CHAOS_RESULTS="$raw" MINOP_CHAOS_DATE="$(date -u +%Y-%m-%d)"

commit="$(git -C "$REPO_DIR" rev-parse --short HEAD)"
git -C "$REPO_DIR" diff --quiet HEAD -- minop plugins tests hack || commit="$commit-dirty"
args=(-p xdist -p timeout --timeout 1800 -p no:cacheprovider -rs -q)
rc=0
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of words by design
"$PY" -m pytest "$REPO_DIR/tests/chaos" "${args[@]}" -n "${CHAOS_WORKERS:-3}" --dist worksteal \
  -m "not chaos_serial" ${PYTEST_ARGS:-} || rc=$?
# shellcheck disable=SC2086
"$PY" -m pytest "$REPO_DIR/tests/chaos" "${args[@]}" -n 0 -m chaos_serial ${PYTEST_ARGS:-} || rc=$?
out="$REPO_DIR/tests/chaos/results/$MINOP_CHAOS_DATE-$commit.md"
mkdir -p "$(dirname "$out")"
"$PY" "$REPO_DIR/tests/chaos/results.py" "$raw" "$out" "$commit" || rc=$?
log "results: ${out#"$REPO_DIR"/}"
exit "$rc"
