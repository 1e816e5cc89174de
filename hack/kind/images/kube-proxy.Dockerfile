# registry.k8s.io/kube-proxy:<k8s version>: kube-proxy needs iptables,
# ip6tables, conntrack and nft beside it (upstream bases it on distroless-iptables).
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables conntrack nftables ipset kmod >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY iptables-mode /usr/local/sbin/iptables-mode
COPY kube-proxy /usr/local/bin/kube-proxy.bin
# kubeadm's DaemonSet runs /usr/local/bin/kube-proxy: pick the iptables backend first.
RUN printf '#!/bin/sh\n/usr/local/sbin/iptables-mode\nexec /usr/local/bin/kube-proxy.bin "$@"\n' >/usr/local/bin/kube-proxy \
 && chmod 0755 /usr/local/bin/kube-proxy
