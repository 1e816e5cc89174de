# minop/nginx:1.26 — Debian trixie's nginx 1.26 (it knows `http2 on;`, which the
# operator's bookworm nginx 1.22 does not), otherwise like minop/nginx:1.22: uid/gid
# 101, port 8080, every writable path under /tmp. The operand image of the kind
# stage, so a version difference between the operator's nginx and the pods' is met
# there. Our only debootstrapped root is bookworm: upgraded to trixie in place.
# Also the HTTP/2 client of the real-pod scenarios (curl).
ARG BASE
FROM ${BASE}
RUN groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid 101 --home-dir /nonexistent --shell /usr/sbin/nologin nginx \
 && sed -i 's/ bookworm / trixie /' /etc/apt/sources.list \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get dist-upgrade -y -qq >/dev/null \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null \
 && apt-get autoremove -y -qq --purge >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /etc/nginx/sites-enabled/* \
 && mkdir -p /var/cache/nginx && chown 101:101 /var/cache/nginx \
 && grep -q '^VERSION_CODENAME=trixie$' /etc/os-release \
 && nginx -v 2>&1 | grep -q 'nginx/1\.26\.'
# curl (with HTTP/2): the client of the real-pod scenarios (tests/e2e/test_realpods.py)
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && curl --version | grep -q HTTP2
COPY nginx.conf /etc/nginx/nginx.conf
USER 101:101
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
