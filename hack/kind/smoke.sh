#!/usr/bin/env bash
# Proves a kind cluster from up.sh works with real pods, using only local images:
#   - a pod from minop/debian (sleep) becomes Running, non-root, restricted;
#   - a PVC on the default StorageClass binds and is writable from the pod;
#   - DNS resolves kubernetes.default from a pod;
#   - minop/redis:7, minop/nginx:1.22, minop/memcached:1.6 serve through
#     Services, reached from another pod, each running as its non-root uid.
# Usage: hack/kind/smoke.sh   (after hack/kind/up.sh; cleans up its namespace)
source "$(dirname "$0")/lib.sh"

NS=minop-kind-smoke
k() { "$KUBE_BIN/kubectl" --kubeconfig "$KIND_KUBECONFIG" "$@"; }
t0=$SECONDS
mapfile -t apps < <("$KIND_DIR/app-images.sh")
"$KIND_DIR/load.sh" "$BASE_IMAGE" "${apps[@]}"
k delete namespace "$NS" --ignore-not-found --wait >/dev/null
k create namespace "$NS" >/dev/null
k label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
trap 'k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT

pod_sc='{"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}'
ctr_sc='{"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}'
k apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: debian}
spec:
  securityContext: $(echo "$pod_sc" | sed 's/}$/, "runAsUser": 1000, "fsGroup": 1000}/')
  containers:
  - name: sleep
    image: $BASE_IMAGE
    imagePullPolicy: Never
    command: [sleep, infinity]
    securityContext: $ctr_sc
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: v1
kind: Pod
metadata: {name: redis, labels: {app: redis}}
spec:
  securityContext: $pod_sc
  containers:
  - {name: redis, image: minop/redis:7, imagePullPolicy: Never, securityContext: $ctr_sc}
---
apiVersion: v1
kind: Pod
metadata: {name: nginx, labels: {app: nginx}}
spec:
  securityContext: $pod_sc
  containers:
  - {name: nginx, image: "minop/nginx:1.22", imagePullPolicy: Never, securityContext: $ctr_sc}
---
apiVersion: v1
kind: Pod
metadata: {name: memcached, labels: {app: memcached}}
spec:
  securityContext: $pod_sc
  containers:
  - name: memcached
    image: "minop/memcached:1.6"
    imagePullPolicy: Never
    args: [memcached, -m, "48", -c, "321"]
    securityContext: $ctr_sc
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec: {selector: {app: redis}, ports: [{port: 6379}]}
---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec: {selector: {app: nginx}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: memcached}
spec: {selector: {app: memcached}, ports: [{port: 11211}]}
YAML

k -n "$NS" wait --for=condition=Ready pod --all --timeout=180s >/dev/null \
  || { k -n "$NS" get pods,pvc; k -n "$NS" describe pods | tail -40; die "pods not Ready"; }
ok() { log "ok: $*"; }
ok "pods Running: $(k -n "$NS" get pods -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase} {end}')"

[ "$(k -n "$NS" get pvc data -o jsonpath='{.status.phase}')" = Bound ] || die "PVC not Bound"
k -n "$NS" exec debian -- sh -c 'echo hello >/data/f && cat /data/f' | grep -qx hello || die "PVC not writable"
ok "PVC bound on StorageClass $(k -n "$NS" get pvc data -o jsonpath='{.spec.storageClassName}') and writable"

dns="$(k -n "$NS" exec debian -- getent hosts kubernetes.default)" || die "DNS: kubernetes.default did not resolve"
[ "$(awk '{print $1}' <<<"$dns")" = "$(k get svc kubernetes -o jsonpath='{.spec.clusterIP}')" ] || die "DNS: wrong answer $dns"
ok "DNS: $dns"

# From the debian pod through each Service (bash /dev/tcp: no client tools needed).
tcp() {  # tcp <host> <port> <request>: the reply to one request
  k -n "$NS" exec debian -- timeout 10 bash -c \
    'exec 3<>/dev/tcp/$0/$1; printf "$2" >&3; timeout 2 cat <&3 || true' "$1" "$2" "$3"
}
tcp redis 6379 'PING\r\n' | grep -q '^+PONG' || die "redis did not answer PING through its Service"
ok "redis: PONG through Service redis"
tcp nginx 80 'GET /healthz HTTP/1.0\r\nHost: nginx\r\n\r\n' | head -1 | grep -q ' 200 ' || die "nginx /healthz not 200"
ok "nginx: /healthz 200 through Service nginx (port 80 -> 8080)"
stats="$(tcp memcached 11211 'stats settings\r\nquit\r\n')"
grep -q 'STAT maxbytes 50331648' <<<"$stats" && grep -q 'STAT maxconns 321' <<<"$stats" \
  || die "memcached stats did not report -m 48 -c 321: $stats"
ok "memcached: stats settings report maxbytes 48 MiB, maxconns 321"
for p in debian redis nginx memcached; do
  ok "$p runs as uid $(k -n "$NS" exec "$p" -- sh -c 'id -u' 2>/dev/null || k -n "$NS" exec "$p" -- id -u)"
done
log "smoke test passed in $((SECONDS - t0))s"
