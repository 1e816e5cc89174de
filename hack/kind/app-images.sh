#!/usr/bin/env bash
# The images the operator and its plugins run, built here (nothing is pulled):
#   minop/redis:7 (uid 999), minop/nginx:1.22 (uid 101, port 8080), minop/nginx:1.26
#   (the same from trixie), minop/memcached:1.6 (uid 11211): Debian's packages FROM
#   minop/debian;
#   the operator image (hack/image.sh FROM minop/debian).
# Each is also tagged with the name the bundle's relatedImages give it (the plugins'
# defaults, e.g. redis:7.2.5, and the operator's quay.io/minop/minop:<version>), so the
# manifests and every CR without spec.image run unchanged on kind: the kubelet finds a
# non-latest tag already present and never pulls. Those tags stand in for the upstream
# images, which cannot be reached here (the programs are Debian bookworm's versions).
# minop/nginx:1.26 is newer than the operator's nginx, as upstream's 1.27 is: the
# real-pod scenarios that need a newer nginx name it in spec.image.
# Prints every image name (ours and the aliases), one a line.
source "$(dirname "$0")/lib.sh"

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

run() {
  dockerfile_image minop/redis:7 "$KIND_DIR/images/redis.Dockerfile"
  dockerfile_image minop/nginx:1.22 "$KIND_DIR/images/nginx.Dockerfile" "$KIND_DIR/images/nginx.conf"
  dockerfile_image minop/nginx:1.26 "$KIND_DIR/images/nginx-trixie.Dockerfile" "$KIND_DIR/images/nginx.conf"
  dockerfile_image minop/memcached:1.6 "$KIND_DIR/images/memcached.Dockerfile"
  # The working tree's operator: docker's layer cache keeps a rebuild short.
  IMAGE=minop/minop:dev BASE="$BASE_IMAGE" "$HACK_DIR/image.sh" >"$LOGS/operator-image.log" 2>&1 \
    || { tail -30 "$LOGS/operator-image.log" >&2; die "operator image build failed"; }
  alias_image minop/redis:7 redis
  alias_image minop/nginx:1.22 nginx
  printf '%s\n' minop/nginx:1.26
  alias_image minop/memcached:1.6 memcached
  alias_image minop/minop:dev minop
}

[ -x "$REPO_DIR/.venv/bin/python" ] || die "no .venv: run make venv"
docker_ready || "$KIND_DIR/docker.sh" start >&2
"$KIND_DIR/base-image.sh" >&2
mkdir -p "$LOGS"
timed app-images run
