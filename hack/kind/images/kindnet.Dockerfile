# kindnet (see kindnet.sh): Debian + the network tools it drives + kubectl.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY kubectl /usr/local/bin/kubectl
COPY iptables-mode /usr/local/sbin/iptables-mode
COPY kindnet.sh /usr/local/bin/kindnet
ENTRYPOINT ["/usr/local/bin/kindnet"]
