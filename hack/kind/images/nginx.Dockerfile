# minop/nginx:1.22 — Debian's nginx running as uid/gid 101 (the uid of
# nginxinc/nginx-unprivileged, which the nginx plugin's pods run as), port
# 8080, every writable path under /tmp so the root filesystem can be read-only.
ARG BASE
FROM ${BASE}
RUN groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid 101 --home-dir /nonexistent --shell /usr/sbin/nologin nginx \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /etc/nginx/sites-enabled/* \
 && mkdir -p /var/cache/nginx && chown 101:101 /var/cache/nginx \
 && nginx -v 2>&1 | grep -q 'nginx/1\.22\.'
COPY nginx.conf /etc/nginx/nginx.conf
USER 101:101
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
