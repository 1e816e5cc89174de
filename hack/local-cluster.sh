#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 without containers:
# etcd → kube-apiserver → kube-controller-manager → kube-scheduler → KWOK (fake nodes).
# Usage: hack/local-cluster.sh up|down|status
source "$(dirname "$0")/lib.sh"

API_PORT="${MINOP_API_PORT:-6443}"
ETCD_PORT="${MINOP_ETCD_PORT:-2379}"
NODES="${MINOP_NODES:-3}"
PKI="$CLUSTER_DIR/pki"
PIDS="$CLUSTER_DIR/pids"
LOGS="$CLUSTER_DIR/logs"
KUBECONFIG_OUT="$CLUSTER_DIR/kubeconfig"
KUBECTL="$KUBE_BIN/kubectl"

alive() { [ -f "$PIDS/$1" ] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

start() {  # start <name> <cmd...>: background it, record its PID, log to logs/<name>.log
  local name="$1"; shift
  "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name"
}

wait_until() {  # wait_until <seconds> <what> <cmd...>
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs: $LOGS)"
    sleep 0.5
  done
}

# -- certificates (openssl only, one CA) ------------------------------------------
leaf() {  # leaf <file-stem> <subject> <extensions>
  local stem="$PKI/$1"
  openssl req -new -nodes -newkey rsa:2048 -subj "$2" -keyout "$stem.key" -out "$stem.csr" 2>/dev/null
  printf '%s\n' "$3" >"$stem.ext"
  openssl x509 -req -in "$stem.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$stem.ext" -out "$stem.crt" 2>/dev/null
  rm -f "$stem.csr" "$stem.ext"
}

certs() {
  [ -f "$PKI/admin.crt" ] && return
  mkdir -p "$PKI"
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 -subj "/CN=minop-local-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  local client="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  leaf apiserver "/CN=kube-apiserver" "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
  leaf admin "/O=system:masters/CN=minop-admin" "$client"
  leaf controller-manager "/CN=system:kube-controller-manager" "$client"
  leaf scheduler "/CN=system:kube-scheduler" "$client"
  # The apiserver authenticates to nothing here, but kubelet-client flags want a pair.
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

kubeconfig() {  # kubeconfig <identity> <out>
  local out="$2" b64="base64 -w0"
  cat >"$out" <<YAML
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
}

# -- up / down ------------------------------------------------------------------------
up() {
  if alive kube-apiserver; then
    log "local cluster already running"
    echo "export KUBECONFIG=$KUBECONFIG_OUT"
    return
  fi
  "$HACK_DIR/build-bins.sh" k8s etcd kwok
  command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
  down quiet
  mkdir -p "$PIDS" "$LOGS" "$CLUSTER_DIR/etcd"
  certs
  kubeconfig admin "$KUBECONFIG_OUT"
  kubeconfig controller-manager "$CLUSTER_DIR/controller-manager.kubeconfig"
  kubeconfig scheduler "$CLUSTER_DIR/scheduler.kubeconfig"
  local t0=$SECONDS

  start etcd "$ETCD_BIN/etcd" --name=minop --data-dir="$CLUSTER_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls="http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster="minop=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --unsafe-no-fsync=true --log-level=warn
  wait_until 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  # NodeRestriction on top of the defaults (which include PodSecurity, ServiceAccount,
  # DefaultStorageClass); --advertise-address is needed on hosts without a default route.
  start kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --secure-port="$API_PORT" \
    --advertise-address=127.0.0.1 --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" --service-account-lookup=true \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --audit-policy-file="$HACK_DIR/audit-policy.yaml" --audit-log-path="$LOGS/audit.log" \
    --audit-log-format=json --audit-log-maxsize=200 --audit-log-maxbackup=1 \
    --audit-log-mode=blocking --cert-dir="$PKI/generated"
  wait_until 90 kube-apiserver "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" get --raw /readyz

  start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range=10.0.0.0/24 --controllers='*' --enable-hostpath-provisioner=true \
    --pvclaimbinder-sync-period=5s
  start kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false
  # KWOK v0.7 falls back to built-in stages (node ready + heartbeat, pod ready, pod delete).
  start kwok "$KWOK_BIN/kwok" --kubeconfig="$KUBECONFIG_OUT" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake --cidr=10.1.0.0/16 \
    --node-ip=127.0.0.1 --node-lease-duration-seconds=40 --server-address=127.0.0.1:0

  local k=("$KUBECTL" --kubeconfig "$KUBECONFIG_OUT")
  for i in $(seq 0 $((NODES - 1))); do
    sed "s/NAME/kwok-node-$i/" "$HACK_DIR/kwok-node.yaml" | "${k[@]}" apply -f - >/dev/null
  done
  "${k[@]}" apply -f "$HACK_DIR/storageclass.yaml" >/dev/null
  wait_until 60 "nodes Ready" "${k[@]}" wait --for=condition=Ready node --all --timeout=1s
  wait_until 60 "the default ServiceAccount" "${k[@]}" get serviceaccount default -n default
  log "local cluster up in $((SECONDS - t0))s ($NODES KWOK nodes); logs in $LOGS"
  echo "export KUBECONFIG=$KUBECONFIG_OUT"
}

down() {
  local quiet="${1:-}" stopped=0
  # Reverse start order; only the PIDs we recorded, never by process name.
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [ -f "$PIDS/$name" ] || continue
    local pid; pid="$(cat "$PIDS/$name")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
    rm -f "$PIDS/$name"
  done
  rm -rf "$CLUSTER_DIR/etcd" /tmp/hostpath_pv
  [ -n "$quiet" ] || log "local cluster stopped ($stopped processes); logs kept in $LOGS"
}

status() {
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    if alive "$name"; then echo "$name running (pid $(cat "$PIDS/$name"))"; else echo "$name stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
