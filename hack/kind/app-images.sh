#!/usr/bin/env bash
# The images the operator and its plugins run, built here (nothing is pulled):
#   minop/redis:7 (uid 999), minop/nginx:1.22 (uid 101, port 8080), minop/nginx:1.26
#   (the same from trixie), minop/memcached:1.6 (uid 11211): Debian's packages FROM
#   minop/debian;
#   minop/redis:6.0-bullseye, minop/redis:8.0-trixie, minop/valkey:8.1-trixie: the
#   other Debian releases' servers, imported from hack/debian-root.sh roots (the
#   Redis plugin's pods set their uid; init.sh adapts to the version);
#   the operator image (hack/image.sh FROM minop/debian);
#   minop/nginx-prometheus-exporter:1.4.0, minop/memcached-exporter:0.15.0,
#   minop/redis-exporter:1.97.0: the metrics sidecars, each its static binary
#   (hack/exporters.sh) alone FROM scratch.
# Each is also tagged with the name the bundle's relatedImages give it (the plugins'
# defaults, e.g. redis:7.2.5, and the operator's quay.io/minop/minop:<version>), so the
# manifests and every CR without spec.image run unchanged on kind: the kubelet finds a
# non-latest tag already present and never pulls. Those tags stand in for the upstream
# images, which cannot be reached here (the programs are Debian bookworm's versions).
# The NGINX default (upstream's 1.27) stands in as minop/nginx:1.26: newer than the
# operator's own nginx (bookworm's 1.22), as upstream's is, so every NginxServer without
# spec.image meets the version difference the pods' own `nginx -t` exists for; the
# scenarios that need the older nginx name minop/nginx:1.22 in spec.image.
# Prints every image name (ours and the aliases), one a line.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../exporters.env
source "$HACK_DIR/exporters.env"

CSV="$REPO_DIR/bundle/manifests/minop.clusterserviceversion.yaml"

related_image() {  # related_image <name>: the CSV's relatedImages entry of that name
  "$REPO_DIR/.venv/bin/python" -c '
import sys, yaml
csv = yaml.safe_load(open(sys.argv[1]))
print(next(i["image"] for i in csv["spec"]["relatedImages"] if i["name"] == sys.argv[2]))
' "$CSV" "$1"
}

alias_image() {  # alias_image <ours> <relatedImages name>: tag and print both names
  local alias; alias="$(related_image "$2")"
  docker tag "$1" "$alias"
  printf '%s\n%s\n' "$1" "$alias"
}

# root_image <image> <suite> <package>...: the cached Debian root with the packages,
# imported as an image.
root_image() {
  local image="$1"; shift
  local hash
  hash="$( { inputs_hash "$HACK_DIR/debian-root.sh" "$HACK_DIR/debian.sh"; echo "$*"; } \
    | sha256sum | cut -c1-16)"
  ensure_image "$image" "$hash" import_root "$image" "$hash" "$@"
}

import_root() {
  local image="$1" hash="$2"; shift 2
  local root; root="$("$HACK_DIR/debian-root.sh" "$@")"
  log "image $image (Debian $1: ${*:2})"
  tar -C "$root" -c . | docker import -c "LABEL minop.inputs=$hash" \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'WORKDIR /data' -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
}

run() {
  dockerfile_image minop/redis:7 "$KIND_DIR/images/redis.Dockerfile"
  dockerfile_image minop/nginx:1.22 "$KIND_DIR/images/nginx.Dockerfile" "$KIND_DIR/images/nginx.conf"
  dockerfile_image minop/nginx:1.26 "$KIND_DIR/images/nginx-trixie.Dockerfile" "$KIND_DIR/images/nginx.conf"
  dockerfile_image minop/memcached:1.6 "$KIND_DIR/images/memcached.Dockerfile"
  local nginx_exporter memcached_exporter redis_exporter
  nginx_exporter="$("$HACK_DIR/exporters.sh" nginx-prometheus-exporter)"
  memcached_exporter="$("$HACK_DIR/exporters.sh" memcached_exporter)"
  redis_exporter="$("$HACK_DIR/exporters.sh" redis_exporter)"
  dockerfile_image "minop/nginx-prometheus-exporter:${NGINX_EXPORTER_VERSION#v}" \
    "$KIND_DIR/sidecars/nginx-exporter.Dockerfile" "$nginx_exporter"
  dockerfile_image "minop/memcached-exporter:${MEMCACHED_EXPORTER_VERSION#v}" \
    "$KIND_DIR/sidecars/memcached-exporter.Dockerfile" "$memcached_exporter"
  dockerfile_image "minop/redis-exporter:${REDIS_EXPORTER_VERSION#v}" \
    "$KIND_DIR/sidecars/redis-exporter.Dockerfile" "$redis_exporter"
  root_image minop/redis:6.0-bullseye bullseye redis-server
  root_image minop/redis:8.0-trixie trixie redis-server
  root_image minop/valkey:8.1-trixie trixie valkey-server
  # The working tree's operator: docker's layer cache keeps a rebuild short.
  IMAGE=minop/minop:dev BASE="$BASE_IMAGE" "$HACK_DIR/image.sh" >"$LOGS/operator-image.log" 2>&1 \
    || { tail -30 "$LOGS/operator-image.log" >&2; die "operator image build failed"; }
  alias_image minop/redis:7 redis
  alias_image minop/nginx:1.26 nginx
  printf '%s\n' minop/nginx:1.22
  alias_image minop/memcached:1.6 memcached
  alias_image minop/minop:dev minop
  alias_image "minop/nginx-prometheus-exporter:${NGINX_EXPORTER_VERSION#v}" nginx-exporter
  alias_image "minop/memcached-exporter:${MEMCACHED_EXPORTER_VERSION#v}" memcached-exporter
  alias_image "minop/redis-exporter:${REDIS_EXPORTER_VERSION#v}" redis-exporter
  printf '%s\n' minop/redis:6.0-bullseye minop/redis:8.0-trixie minop/valkey:8.1-trixie
}

[ -x "$REPO_DIR/.venv/bin/python" ] || die "no .venv: run make venv"
docker_ready || "$KIND_DIR/docker.sh" start >&2
"$KIND_DIR/base-image.sh" >&2
mkdir -p "$LOGS"
timed app-images run
