#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 without containers:
#   etcd -> kube-apiserver -> kube-controller-manager -> kube-scheduler -> KWOK (fake nodes).
# Usage: hack/local-cluster.sh up | down | status [-q] | apiserver-stop | apiserver-start
#   (apiserver-stop/-start: only kube-apiserver, for the chaos suite's API server restart)
# Env:   MINOP_API_PORT (6443), MINOP_ETCD_PORT (2379), MINOP_ETCD_PEER_PORT (2380),
#        MINOP_NODES (3), CLUSTER_DIR (<repo>/.cluster), MINOP_CACHE (~/.cache/minop),
#        MINOP_CLUSTER_PROFILE (default | bench: see PROFILE below),
#        MINOP_FEATURE_GATES (kube-apiserver's --feature-gates, e.g. ShardedListAndWatch=true).
# State in $CLUSTER_DIR: pki/ (kept across runs), etcd/ (wiped by down), pids/, logs/ (kept),
# kubeconfig (admin). Only `up` prints to stdout: the `export KUBECONFIG=...` line.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

CLUSTER_DIR="$(realpath -m "$CLUSTER_DIR")" # a relative CLUSTER_DIR would break KUBECONFIG
API_PORT="${MINOP_API_PORT:-6443}"
ETCD_PORT="${MINOP_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${MINOP_ETCD_PEER_PORT:-$((ETCD_PORT + 1))}"
NODES="${MINOP_NODES:-3}"
SERVICE_CIDR=10.0.0.0/24
POD_CIDR=10.1.0.0/16 # KWOK's default (10.0.0.1/24) would overlap the service range
PKI="$CLUSTER_DIR/pki"
PIDS="$CLUSTER_DIR/pids"
LOGS="$CLUSTER_DIR/logs"
KUBECONFIG_OUT="$CLUSTER_DIR/kubeconfig"
KUBECTL="$KUBE_BIN/kubectl"
# bench (`make bench`): the control plane's own client-side limits would be what a burst of
# 1000 objects measures (kube-controller-manager's --kube-api-qps is 20), so the components
# get high limits and more sync workers, KWOK more pod workers, the nodes room for every
# pod, and the audit log records the admin identity's reads too (the bench counts them).
PROFILE="${MINOP_CLUSTER_PROFILE:-default}"
CM_FLAGS=() SCHED_FLAGS=() KWOK_FLAGS=(--config="$HACK_DIR/kwok-config.yaml")
NODE_PODS=110 AUDIT_POLICY="$HACK_DIR/audit-policy.yaml" AUDIT_MAXSIZE=100
case "$PROFILE" in
  default)
    # Above the defaults (20 qps): a test that creates or edits hundreds of objects (the
    # edit storm) must measure minop, not the controller-manager's backlog of pods.
    CM_FLAGS=(--kube-api-qps=200 --kube-api-burst=400)
    SCHED_FLAGS=(--kube-api-qps=200 --kube-api-burst=400)
    ;;
  bench)
    CM_FLAGS=(--kube-api-qps=1000 --kube-api-burst=2000 --concurrent-deployment-syncs=20
      --concurrent-replicaset-syncs=20 --concurrent-gc-syncs=40)
    SCHED_FLAGS=(--kube-api-qps=1000 --kube-api-burst=2000)
    NODE_PODS=20000 AUDIT_POLICY="$HACK_DIR/audit-policy-bench.yaml" AUDIT_MAXSIZE=4000
    ;;
  *) die "MINOP_CLUSTER_PROFILE=$PROFILE: unknown profile (default, bench)" ;;
esac
# Start order; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" --request-timeout=10s "$@"; }

# shellcheck source=procs.sh
source "$HACK_DIR/procs.sh"

# -- certificates: one CA, openssl only ---------------------------------------------
leaf() { # leaf <stem> <subject> <x509v3 extensions>
  local stem="$PKI/$1"
  openssl req -new -nodes -newkey rsa:2048 -subj "$2" -keyout "$stem.key" -out "$stem.csr" 2>/dev/null
  printf '%s\n' "$3" >"$stem.ext"
  openssl x509 -req -in "$stem.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$stem.ext" -out "$stem.crt" 2>/dev/null
  rm -f "$stem.csr" "$stem.ext"
}

certs() {
  local f fresh=1
  for f in ca apiserver admin controller-manager scheduler; do
    # Regenerate everything when a file is missing or expires within a day.
    openssl x509 -checkend 86400 -noout -in "$PKI/$f.crt" >/dev/null 2>&1 || fresh=0
  done
  [ -f "$PKI/sa.key" ] && [ -f "$PKI/sa.pub" ] || fresh=0
  [ "$fresh" = 0 ] || return 0
  log "creating certificates in $PKI"
  rm -rf "$PKI"
  (
    umask 077
    mkdir -p "$PKI"
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 -subj "/CN=minop-local-ca" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
    local usage="keyUsage=critical,digitalSignature,keyEncipherment"
    # Go clients ignore the CN: every name/IP used to reach the apiserver must be a SAN.
    leaf apiserver "/CN=kube-apiserver" "$usage
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
    leaf admin "/O=system:masters/CN=minop-admin" "$usage
extendedKeyUsage=clientAuth"
    leaf controller-manager "/CN=system:kube-controller-manager" "$usage
extendedKeyUsage=clientAuth"
    leaf scheduler "/CN=system:kube-scheduler" "$usage
extendedKeyUsage=clientAuth"
    # Service-account tokens: the apiserver signs with the private key and verifies with
    # the public one; the controller-manager signs its controllers' tokens with the same key.
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  )
}

kubeconfig() { # kubeconfig <identity> <out>: embedded certs, like `--embed-certs=true`
  local b64="base64 -w0"
  (
    umask 077
    cat >"$2" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: minop-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $($b64 <"$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $($b64 <"$PKI/$1.crt")
    client-key-data: $($b64 <"$PKI/$1.key")
contexts:
- name: minop-local
  context: {cluster: minop-local, user: $1}
current-context: minop-local
YAML
  )
}

api_ready() {
  curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"
}

nodes_untainted() { # Ready alone is not enough: the node-lifecycle controller must lift not-ready
  local names=() i
  for i in $(seq 0 $((NODES - 1))); do names+=("kwok-node-$i"); done
  [ -z "$(k get node "${names[@]}" -o jsonpath='{.items[*].spec.taints}')" ]
}

# The chaos suite's 410 scenario (tests/chaos) watches this kind without a watch cache.
NO_WATCH_CACHE=memcacheds.nocache.chaos.minop.dev

start_apiserver() {
  # --enable-admission-plugins adds NodeRestriction to the defaults (which include PodSecurity,
  # ServiceAccount, DefaultStorageClass). --advertise-address: hosts without a default route
  # cannot pick one. --endpoint-reconciler-type=none: the `kubernetes` Service's Endpoints may
  # not hold a loopback IP, so the default reconciler would fail a write every 10 s.
  # --watch-cache-sizes: one test kind is served from etcd directly, so the chaos suite
  # can make a resumed watch hit etcd compaction (410 Gone) as on a cluster without the cache.
  start kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --secure-port="$API_PORT" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" --service-account-lookup=true \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
    --audit-policy-file="$AUDIT_POLICY" --audit-log-path="$LOGS/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking \
    --audit-log-maxsize="$AUDIT_MAXSIZE" --audit-log-maxbackup=2 --audit-log-maxage=7 \
    --watch-cache-sizes="$NO_WATCH_CACHE#0" \
    ${MINOP_FEATURE_GATES:+--feature-gates="$MINOP_FEATURE_GATES"}
}

# -- up / down / status -----------------------------------------------------------------
up() {
  if all_alive; then
    if api_ready >/dev/null 2>&1; then
      log "local cluster already running (PIDs in $PIDS)"
      echo "export KUBECONFIG=$KUBECONFIG_OUT"
      return 0
    fi
    log "the recorded processes run but the API does not answer; restarting them"
  fi
  stopped=0
  for name in "${COMPONENTS[@]}"; do
    if alive "$name"; then log "stopping the rest of a partly running cluster"; down; break; fi
  done

  local b
  for b in "$KUBE_BIN/kube-apiserver" "$KUBE_BIN/kube-controller-manager" "$KUBE_BIN/kube-scheduler" \
    "$KUBECTL" "$ETCD_BIN/etcd" "$KWOK_BIN/kwok"; do
    [ -x "$b" ] || { "$HACK_DIR/build-bins.sh" k8s etcd kwok; break; }
  done
  for b in openssl curl setsid base64; do
    command -v "$b" >/dev/null || die "$b is required (Debian: apt-get install openssl curl util-linux coreutils)"
  done
  local port
  for port in "$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT"; do
    ! port_busy "$port" || die "127.0.0.1:$port is in use (another cluster?); set MINOP_API_PORT / MINOP_ETCD_PORT / MINOP_ETCD_PEER_PORT"
  done

  local t0=$SECONDS
  # A failed start leaves nothing running: stop whatever this call started.
  trap 'log "start failed; stopping what was started (logs kept in $LOGS)"; down >/dev/null 2>&1' EXIT
  mkdir -p "$PIDS" "$LOGS" "$CLUSTER_DIR/kwok" "$CLUSTER_DIR/flexvolume"
  rm -rf "$CLUSTER_DIR/etcd"
  mkdir -m 700 "$CLUSTER_DIR/etcd"
  # A fresh audit log per cluster (the previous one is kept), so readers never wade
  # through earlier runs. The apiserver rotates it itself at --audit-log-maxsize.
  [ ! -f "$LOGS/audit.log" ] || mv -f "$LOGS/audit.log" "$LOGS/audit.previous.log"
  rm -f "$LOGS"/audit-*.log
  certs
  kubeconfig admin "$KUBECONFIG_OUT"
  kubeconfig controller-manager "$CLUSTER_DIR/controller-manager.kubeconfig"
  kubeconfig scheduler "$CLUSTER_DIR/scheduler.kubeconfig"

  # --unsafe-no-fsync: throwaway data, and fsync dominates etcd latency on slow disks.
  start etcd "$ETCD_BIN/etcd" --name=minop --data-dir="$CLUSTER_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="minop=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true --log-level=warn
  wait_until 30 "etcd health" etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

  start_apiserver
  wait_until 90 "kube-apiserver /readyz" kube-apiserver api_ready

  # '*' = every on-by-default controller: namespace (default ServiceAccounts), node-lifecycle
  # (lifts the not-ready taint), statefulset, PV binder with the host-path provisioner, ...
  start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --controllers='*' \
    --enable-hostpath-provisioner=true --pvclaimbinder-sync-period=5s \
    --flex-volume-plugin-dir="$CLUSTER_DIR/flexvolume" ${CM_FLAGS[@]+"${CM_FLAGS[@]}"}
  start kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false ${SCHED_FLAGS[@]+"${SCHED_FLAGS[@]}"}
  # KWOK v0.7 without stage config uses its built-in stages: node-initialize + heartbeat,
  # pod-ready, pod-complete, pod-delete. A non-zero lease duration makes it renew node
  # Leases (and pick the 20 s status heartbeat); with 0 the nodes would go NotReady.
  # KWOK_WORKDIR keeps it from reading a user's ~/.kwok/kwok.yaml.
  start kwok env KWOK_WORKDIR="$CLUSTER_DIR/kwok" "$KWOK_BIN/kwok" \
    --kubeconfig="$KUBECONFIG_OUT" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr="$POD_CIDR" --node-ip=127.0.0.1 --node-lease-duration-seconds=40 \
    --server-address=127.0.0.1:0 ${KWOK_FLAGS[@]+"${KWOK_FLAGS[@]}"}

  local i
  for i in $(seq 0 $((NODES - 1))); do
    sed -e "s/NAME/kwok-node-$i/g" -e "s/pods: \"110\"/pods: \"$NODE_PODS\"/g" "$HACK_DIR/kwok-node.yaml"
    echo "---"
  done | k apply -f - -f "$HACK_DIR/storageclass.yaml" >/dev/null
  wait_until 60 "nodes Ready" kwok k wait --for=condition=Ready node -l type=kwok --timeout=5s
  wait_until 60 "the not-ready taint to be lifted" kube-controller-manager nodes_untainted
  wait_until 60 "the default ServiceAccount" kube-controller-manager \
    k get serviceaccount default -n default
  all_alive || die "a component exited during start (logs: $LOGS)"
  echo "$PROFILE" >"$CLUSTER_DIR/profile" # what a caller of `up` on a running cluster gets
  trap - EXIT
  log "local cluster up in $((SECONDS - t0))s: API https://127.0.0.1:$API_PORT, $NODES KWOK nodes, logs in $LOGS"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
}

remove_hostpath_dirs() {
  # The host-path provisioner makes /tmp/hostpath_pv/<uuid> dirs; remove this cluster's
  # (other clusters on this host share the parent dir, so not the whole tree).
  local p
  k get pv -o jsonpath='{range .items[*]}{.spec.hostPath.path}{"\n"}{end}' 2>/dev/null |
    while IFS= read -r p; do
      case "$p" in /tmp/hostpath_pv/?*) rm -rf -- "$p" ;; esac
    done || true
}

down() {
  stopped=0
  if alive kube-apiserver; then remove_hostpath_dirs; fi
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[i]}"; done
  rm -rf "$CLUSTER_DIR/etcd" "$CLUSTER_DIR/profile"
  if [ "$stopped" -gt 0 ]; then
    log "local cluster stopped ($stopped processes); logs kept in $LOGS"
  else
    log "no local cluster was running (state: $CLUSTER_DIR)"
  fi
}

all_alive() {
  local name
  for name in "${COMPONENTS[@]}"; do alive "$name" || return 1; done
}

status() { # exit 0 only when every component runs
  local name rc=0
  for name in "${COMPONENTS[@]}"; do
    if alive "$name"; then
      [ "${1:-}" = -q ] || echo "$name running (pid $(pid_of "$name"))"
    else
      [ "${1:-}" = -q ] || echo "$name stopped"
      rc=1
    fi
  done
  return $rc
}

apiserver_restart() { # apiserver-stop | apiserver-start: only kube-apiserver (chaos tests)
  all_alive || [ "$1" = start ] || die "the local cluster is not running"
  case "$1" in
    stop) stopped=0; stop kube-apiserver; log "kube-apiserver stopped" ;;
    start)
      alive kube-apiserver && die "kube-apiserver is already running"
      start_apiserver
      wait_until 90 "kube-apiserver /readyz" kube-apiserver api_ready
      log "kube-apiserver started" ;;
  esac
}

lock() { # one up/down at a time per cluster dir
  mkdir -p "$CLUSTER_DIR"
  exec 9>"$CLUSTER_DIR/.lock"
  flock -w 300 9 || die "another hack/local-cluster.sh holds $CLUSTER_DIR/.lock"
}

case "${1:-}" in
  up) lock; up ;;
  down) lock; down ;;
  status) status "${2:-}" ;;
  apiserver-stop) lock; apiserver_restart stop ;;
  apiserver-start) lock; apiserver_restart start ;;
  *) die "usage: $0 up|down|status [-q]|apiserver-stop|apiserver-start" ;;
esac
