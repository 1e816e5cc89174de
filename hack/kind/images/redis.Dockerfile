# minop/redis:7 — Debian's redis-server 7 as uid/gid 999 (the uid of the
# official image, which the redis plugin's pods run as), data in /data.
ARG BASE
FROM ${BASE}
RUN groupadd --system --gid 999 redis \
 && useradd --system --uid 999 --gid 999 --home-dir /data --shell /usr/sbin/nologin redis \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /data && chown 999:999 /data \
 && redis-server --version | grep -q ' v=7\.'
WORKDIR /data
USER 999:999
EXPOSE 6379
# Without a config file: listen everywhere, no protected mode (the pod network is the boundary).
CMD ["redis-server", "--protected-mode", "no"]
