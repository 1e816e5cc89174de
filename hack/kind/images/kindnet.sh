#!/bin/bash
# kindnet: minop's stand-in for kind's kindnetd (which the module proxy here
# cannot serve), for IPv4 kind clusters. Runs as a hostNetwork DaemonSet pod
# (default-cni.yaml) with NET_ADMIN and, every few seconds:
#   - writes this node's CNI config: ptp veths + host-local addresses from the
#     node's spec.podCIDR (assigned by kube-controller-manager), portmap for hostPorts;
#   - routes every other node's podCIDR via that node's InternalIP;
#   - masquerades pod traffic leaving the pod network (POD_SUBNET).
# Env: NODE_NAME, POD_SUBNET; CONTROL_PLANE_ENDPOINT (host:port, added by kind so
# we need not wait for kube-proxy's service rules).
set -euo pipefail

SA=/var/run/secrets/kubernetes.io/serviceaccount
CNI_CONF=/etc/cni/net.d/10-kindnet.conflist
CHAIN=MINOP-KINDNET-MASQ
server="https://${CONTROL_PLANE_ENDPOINT:-${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}}"

kubectl_() {
  kubectl --server="$server" --certificate-authority="$SA/ca.crt" --token="$(cat "$SA/token")" \
    --request-timeout=10s "$@"
}

write_cni_conf() {  # write_cni_conf <podCIDR>: atomically, only when it changes
  local conf
  conf="$(cat <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kindnet",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": $(cat /sys/class/net/eth0/mtu 2>/dev/null || echo 1500),
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$1"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
)"
  if [ "$(cat "$CNI_CONF" 2>/dev/null)" != "$conf" ]; then
    printf '%s\n' "$conf" >"$CNI_CONF.tmp"
    mv "$CNI_CONF.tmp" "$CNI_CONF"
    echo "wrote $CNI_CONF for podCIDR $1"
  fi
}

ensure_masquerade() {
  iptables -w -t nat -N "$CHAIN" 2>/dev/null || true
  # Within the pod network: keep pod addresses. Anything else: the node's address.
  if ! iptables -w -t nat -C "$CHAIN" -d "$POD_SUBNET" -j RETURN 2>/dev/null; then
    iptables -w -t nat -F "$CHAIN"
    iptables -w -t nat -A "$CHAIN" -d "$POD_SUBNET" -j RETURN
    iptables -w -t nat -A "$CHAIN" -j MASQUERADE
  fi
  iptables -w -t nat -C POSTROUTING -s "$POD_SUBNET" -m addrtype ! --dst-type LOCAL -j "$CHAIN" 2>/dev/null \
    || iptables -w -t nat -A POSTROUTING -s "$POD_SUBNET" -m addrtype ! --dst-type LOCAL -j "$CHAIN"
}

sync_once() {
  local nodes name cidr ip
  nodes="$(kubectl_ get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.podCIDR}{" "}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')" || return 1
  while read -r name cidr ip; do
    [ -n "$name" ] && [ -n "$cidr" ] || continue
    cidr="${cidr%%,*}" ip="${ip%% *}"   # IPv4 only: first podCIDR and address
    if [ "$name" = "$NODE_NAME" ]; then
      write_cni_conf "$cidr"
    elif [ -n "$ip" ]; then
      ip route replace "$cidr" via "$ip"
    fi
  done <<<"$nodes"
  ensure_masquerade
}

/usr/local/sbin/iptables-mode
echo "kindnet on $NODE_NAME: pod subnet $POD_SUBNET, API $server"
while true; do
  sync_once || echo "sync failed; retrying"
  sleep "${KINDNET_RESYNC_SECONDS:-5}"
done
