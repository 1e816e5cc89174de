#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy and
# caches them under $MINOP_CACHE (default ~/.cache/minop), keyed by version.
# Usage: hack/build-bins.sh [k8s] [etcd] [kwok] [kind]   (default: k8s etcd kwok)
source "$(dirname "$0")/lib.sh"
# shellcheck source=gobuild.sh
source "$HACK_DIR/gobuild.sh"

build_k8s() {
  k8s_build "$KUBE_BIN" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  etcd_build "$ETCD_VERSION" "$ETCD_BIN"
}

go_install() {  # go_install <dir> <name> <pkg@version>
  local out="$1" name="$2" pkg="$3"
  if all_present "$out" "$name"; then return; fi
  log "building $pkg"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags="-s -w" "$pkg"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(k8s etcd kwok)
command -v go >/dev/null || die "Go is required (https://go.dev/dl); none found on PATH"
for t in "${targets[@]}"; do
  case "$t" in
    k8s) build_k8s ;;
    etcd) build_etcd ;;
    kwok) go_install "$KWOK_BIN" kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ;;
    kind) go_install "$KIND_BIN" kind "sigs.k8s.io/kind@$KIND_VERSION" ;;
    *) die "unknown component $t (k8s, etcd, kwok, kind)" ;;
  esac
done
