# minop/memcached:1.6 — Debian's memcached as uid/gid 11211 (the official
# image's "memcache" user, which the memcached plugin's pods run as).
ARG BASE
FROM ${BASE}
RUN groupadd --system --gid 11211 memcache \
 && useradd --system --uid 11211 --gid 11211 --home-dir /nonexistent --shell /usr/sbin/nologin memcache \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && memcached -V | grep -q '^memcached 1\.6\.'
USER 11211:11211
EXPOSE 11211
CMD ["memcached"]
