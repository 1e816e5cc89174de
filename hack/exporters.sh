#!/usr/bin/env bash
# hack/exporters.sh [name]: the Prometheus exporters the NGINX and Memcached plugins run as
# metrics sidecars, built once (static, CGO_ENABLED=0) from the Go module proxy into
# $MINOP_CACHE/<name>/<version>/bin; prints each binary's path. name: nginx-prometheus-exporter
# or memcached_exporter (default: both).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=gobuild.sh
source "$HACK_DIR/gobuild.sh"
# shellcheck source=exporters.env
source "$HACK_DIR/exporters.env"

# Both report their version through prometheus/common (the `<name>_build_info` metric).
stamp() { echo "-s -w -X github.com/prometheus/common/version.Version=${1#v}"; }

build() {  # build <name>: the binary's path, built first if missing
  local name="$1" v pkg
  case "$name" in
    nginx-prometheus-exporter)
      v="$NGINX_EXPORTER_VERSION"; pkg="github.com/nginxinc/nginx-prometheus-exporter@$v" ;;
    memcached_exporter)
      v="$MEMCACHED_EXPORTER_VERSION"; pkg="github.com/prometheus/memcached_exporter/cmd/memcached_exporter@$v" ;;
    *) die "unknown exporter $name" ;;
  esac
  local out="$MINOP_CACHE/$name/$v/bin"
  if ! all_present "$out" "$name"; then
    command -v go >/dev/null || die "Go is required (https://go.dev/dl); none found on PATH"
    # one build at a time (parallel kind runs may all ask); the others wait
    mkdir -p "$MINOP_CACHE/$name"
    exec 9>"$MINOP_CACHE/$name/.lock"
    flock 9
    mod_install "$out" "$name" -- -ldflags="$(stamp "$v")" "$pkg"
    exec 9>&-
  fi
  echo "$out/$name"
}

names=("$@"); [ ${#names[@]} -gt 0 ] || names=(nginx-prometheus-exporter memcached_exporter)
for n in "${names[@]}"; do build "$n"; done
