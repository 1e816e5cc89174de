#!/usr/bin/env bash
# hack/exporters.sh [name]: the Prometheus exporters the NGINX, Memcached and Redis plugins
# run as metrics sidecars, built once (static, CGO_ENABLED=0) from the Go module proxy into
# $MINOP_CACHE/<name>/<version>/bin; prints each binary's path. name: nginx-prometheus-exporter,
# memcached_exporter or redis_exporter (default: all three).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=gobuild.sh
source "$HACK_DIR/gobuild.sh"
# shellcheck source=exporters.env
source "$HACK_DIR/exporters.env"

# nginx's and memcached's report their version through prometheus/common (the
# `<name>_build_info` metric); redis_exporter through its main package's BuildVersion
# (`redis_exporter_build_info`, and its --version).
stamp() { echo "-s -w -X github.com/prometheus/common/version.Version=${1#v}"; }
redis_stamp() { echo "-s -w -X main.BuildVersion=${1#v} -X main.BuildCommitSha=module-$1"; }

build() {  # build <name>: the binary's path, built first if missing
  local name="$1" v pkg ld
  case "$name" in
    nginx-prometheus-exporter)
      v="$NGINX_EXPORTER_VERSION"; pkg="github.com/nginxinc/nginx-prometheus-exporter@$v"
      ld="$(stamp "$v")" ;;
    memcached_exporter)
      v="$MEMCACHED_EXPORTER_VERSION"; pkg="github.com/prometheus/memcached_exporter/cmd/memcached_exporter@$v"
      ld="$(stamp "$v")" ;;
    redis_exporter)
      v="$REDIS_EXPORTER_VERSION"; pkg="github.com/oliver006/redis_exporter@$v"
      ld="$(redis_stamp "$v")" ;;
    *) die "unknown exporter $name" ;;
  esac
  local out="$MINOP_CACHE/$name/$v/bin"
  if ! all_present "$out" "$name"; then
    command -v go >/dev/null || die "Go is required (https://go.dev/dl); none found on PATH"
    # one build at a time (parallel kind runs may all ask); the others wait
    mkdir -p "$MINOP_CACHE/$name"
    exec 9>"$MINOP_CACHE/$name/.lock"
    flock 9
    mod_install "$out" "$name" -- -ldflags="$ld" "$pkg"
    exec 9>&-
  fi
  echo "$out/$name"
}

names=("$@"); [ ${#names[@]} -gt 0 ] || names=(nginx-prometheus-exporter memcached_exporter redis_exporter)
for n in "${names[@]}"; do build "$n"; done
