#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy and
# caches them under $MINOP_CACHE (default ~/.cache/minop), keyed by version.
# Usage: hack/build-bins.sh [k8s] [etcd] [kwok] [kind]   (default: k8s etcd kwok)
source "$(dirname "$0")/lib.sh"

build_k8s() {
  local out="$KUBE_BIN" tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  if all_present "$out" "${tools[@]}"; then return; fi
  log "building Kubernetes $KUBE_VERSION (first time only; ~15-25 min on 2 cores)"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local/k8sbuild >/dev/null 2>&1
    local gomod minor staging
    gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    minor="v0.${KUBE_VERSION#v1.}"
    # Every staging module k8s.io/kubernetes replaces with ./staging must be pinned
    # to its published v0.X.Y twin; the list changes per release, so derive it.
    staging="$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")"
    [ -n "$staging" ] || die "no staging replaces found in $gomod"
    local args=()
    for m in $staging; do args+=("-replace=$m=$m@$minor"); done
    go mod edit "${args[@]}" -require="k8s.io/kubernetes@$KUBE_VERSION"
    # The main module's go/godebug lines choose the binaries' GODEBUG defaults.
    go mod edit -go="$(sed -n 's/^go //p' "$gomod")"
    local gd; gd="$(sed -n 's/^godebug //p' "$gomod")"
    [ -z "$gd" ] || go mod edit -godebug="$gd"
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy -e >/dev/null 2>&1 || true
    local date ld=""; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    local major="1" mnr; mnr="$(echo "$KUBE_VERSION" | cut -d. -f2)"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      ld+=" -X '$pkg.gitVersion=$KUBE_VERSION' -X '$pkg.gitMajor=$major' -X '$pkg.gitMinor=$mnr'"
      ld+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$date' -X '$pkg.gitCommit=module-$KUBE_VERSION'"
    done
    mkdir -p "$out.tmp"
    go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ld -s -w" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  )
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
  log "Kubernetes binaries in $out"
}

build_etcd() {
  local out="$ETCD_BIN"
  if all_present "$out" etcd; then return; fi
  log "building etcd $ETCD_VERSION"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local/etcdbuild >/dev/null 2>&1
    # etcd's server module has replace lines, so it cannot be `go install`ed;
    # a wrapper module requiring it at the tag resolves its siblings at the same tag.
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    mkdir -p "$out.tmp"
    go build -trimpath -ldflags="-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
  log "etcd in $out"
}

go_install() {  # go_install <dir> <name> <pkg@version>
  local out="$1" name="$2" pkg="$3"
  if all_present "$out" "$name"; then return; fi
  log "building $pkg"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags="-s -w" "$pkg"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

all_present() {
  local dir="$1"; shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
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
