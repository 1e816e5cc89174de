#!/usr/bin/env bash
# Builds, from the Go module proxy, every program the kind node image and the
# images preloaded into it need, and caches each under $MINOP_CACHE/kind keyed
# by version (a second run is a no-op):
#   node-bins/<k8s>/   kubelet kubeadm kube-proxy (+ the control plane's
#                      kube-apiserver, kube-controller-manager, kube-scheduler,
#                      kubectl, built by hack/build-bins.sh k8s)
#   bins/etcd/<v>/, bins/coredns/<v>/   at the versions kubeadm asks for
#   bins/containerd/<v>/, bins/crictl/<v>/, bins/local-path-provisioner/<v>/,
#   bins/pause/<v>-<src hash>/
# Usage: hack/kind/build-node-bins.sh [component...]  (default: all)
#        hack/kind/build-node-bins.sh --print-images     kubeadm's image list
#        hack/kind/build-node-bins.sh --print-pause-dir  where the current pause is
source "$(dirname "$0")/lib.sh"

all_present() {
  local dir="$1"; shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# k8s_build <out> <cmd...>: Kubernetes commands (k8s.io/kubernetes/cmd/<cmd>)
# through a wrapper module, the way hack/build-bins.sh builds the control plane:
# k8s.io/kubernetes replaces its staging modules with ./staging, which a module
# download cannot follow, so each is pinned to its published v0.X.Y twin. The
# version variables are stamped so kubeadm and the kubelet report $KUBE_VERSION
# (kubeadm derives the image tags it asks for from it).
k8s_build() {
  local out="$1"; shift
  all_present "$out" "$@" && return
  log "building $* $KUBE_VERSION (first time only; ~10-15 min on 2 cores)"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local/k8snodebuild >/dev/null 2>&1
    local gomod minor staging args=()
    gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    minor="v0.${KUBE_VERSION#v1.}"
    staging="$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")"
    [ -n "$staging" ] || die "no staging replaces found in $gomod"
    for m in $staging; do args+=("-replace=$m=$m@$minor"); done
    go mod edit "${args[@]}" -require="k8s.io/kubernetes@$KUBE_VERSION"
    # The main module's go/godebug lines choose the binaries' GODEBUG defaults.
    go mod edit -go="$(sed -n 's/^go //p' "$gomod")"
    local gd; gd="$(sed -n 's/^godebug //p' "$gomod")"
    [ -z "$gd" ] || go mod edit -godebug="$gd"
    { printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
      printf ')\n'; } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    local date ld="" pkgs=() mnr; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    mnr="$(echo "$KUBE_VERSION" | cut -d. -f2)"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      ld+=" -X '$pkg.gitVersion=$KUBE_VERSION' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=$mnr'"
      ld+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$date' -X '$pkg.gitCommit=module-$KUBE_VERSION'"
    done
    for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    mkdir -p "$out.tmp"
    go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ld -s -w" -o "$out.tmp/" "${pkgs[@]}"
  )
  rm -rf "$work"
  mkdir -p "$out"
  for c in "$@"; do mv "$out.tmp/$c" "$out/$c"; done
  rm -rf "$out.tmp"
}

build_kube() {
  "$HACK_DIR/build-bins.sh" k8s   # kube-apiserver, -controller-manager, -scheduler, kubectl
  k8s_build "$NODE_BINS" kubelet kubeadm kube-proxy
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$NODE_BINS/$b" ] || cp "$KUBE_BIN/$b" "$NODE_BINS/$b"
  done
}

# kubeadm_image <name>: the exact image reference kubeadm $KUBE_VERSION asks for
# (e.g. registry.k8s.io/etcd:3.6.8-0), from kubeadm itself, never guessed.
kubeadm_images() {
  [ -x "$NODE_BINS/kubeadm" ] || build_kube >&2
  "$NODE_BINS/kubeadm" config images list --kubernetes-version "$KUBE_VERSION" 2>/dev/null
}
kubeadm_image() { kubeadm_images | grep -E "/$1:" | head -1; }
kubeadm_tag() { local i; i="$(kubeadm_image "$1")"; echo "${i##*:}"; }

# mod_install <out> <binary...> -- <go install args...>: `go install pkg@version`
# into a cache dir; only for modules without replace directives.
mod_install() {
  local out="$1" bins=(); shift
  while [ "$1" != "--" ]; do bins+=("$1"); shift; done; shift
  all_present "$out" "${bins[@]}" && return
  log "building ${bins[*]} ($out)"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath "$@"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

build_etcd() {
  # kubeadm's etcd tag is <etcd version>-<image revision>, e.g. 3.6.8-0.
  local tag v out; tag="$(kubeadm_tag etcd)"; v="v${tag%-*}"
  out="$COMP_BINS/etcd/$v"
  all_present "$out" etcd && return
  log "building etcd $v (kubeadm $KUBE_VERSION asks for etcd:$tag)"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local/etcdbuild >/dev/null 2>&1
    # etcd's server module has replace lines, so it cannot be `go install`ed;
    # a wrapper module requiring it at the tag resolves its siblings at the same tag.
    go mod edit -require="go.etcd.io/etcd/server/v3@$v"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    mkdir -p "$out.tmp"
    go build -trimpath -ldflags="-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
}

build_coredns() {
  local v; v="$(kubeadm_tag coredns)"
  mod_install "$COMP_BINS/coredns/$v" coredns -- -ldflags="-s -w" "github.com/coredns/coredns@$v"
}

build_containerd() {
  # Same build tags as kind's node image (no aufs/zfs/btrfs/devmapper snapshotters);
  # with them nothing needs cgo, so the binaries are static.
  local v="$CONTAINERD_VERSION" p=github.com/containerd/containerd/v2
  mod_install "$COMP_BINS/containerd/$v" containerd containerd-shim-runc-v2 ctr -- \
    -tags "no_aufs no_zfs no_btrfs no_devmapper" \
    -ldflags="-s -w -X $p/version.Version=$v -X $p/version.Revision=module-$v -X $p/version.Package=$p" \
    "$p/cmd/containerd@$v" "$p/cmd/containerd-shim-runc-v2@$v" "$p/cmd/ctr@$v"
}

build_crictl() {
  local v="$CRICTL_VERSION"
  mod_install "$COMP_BINS/crictl/$v" crictl -- \
    -ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${v#v}" "sigs.k8s.io/cri-tools/cmd/crictl@$v"
}

build_local_path() {
  local v="$LOCAL_PATH_PROVISIONER_VERSION"
  mod_install "$COMP_BINS/local-path-provisioner/$v" local-path-provisioner -- \
    -ldflags="-s -w -X main.VERSION=$v" "github.com/rancher/local-path-provisioner@$v"
}

pause_dir() {
  local v; v="$(kubeadm_tag pause)"
  echo "$COMP_BINS/pause/$v-$(inputs_hash "$KIND_DIR/pause")"
}

build_pause() {
  local v out; v="$(kubeadm_tag pause)"; out="$(pause_dir)"
  all_present "$out" pause && return
  log "building pause $v"
  mkdir -p "$out.tmp"
  go build -C "$KIND_DIR/pause" -trimpath -ldflags="-s -w -X main.version=$v" -o "$out.tmp/pause" .
  # One build per pause version: drop those of older sources (node-image.sh looks it up by version).
  rm -rf "$COMP_BINS/pause/$v"-????????????????
  mv "$out.tmp" "$out"
}

command -v go >/dev/null || die "Go is required; none found on PATH"
case "${1:-}" in
  --print-images) kubeadm_images; exit ;;
  --print-pause-dir) pause_dir; exit ;;
esac
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(kube etcd coredns containerd crictl local-path pause)
for t in "${targets[@]}"; do
  case "$t" in
    kube) build_kube ;;
    etcd) build_etcd ;;
    coredns) build_coredns ;;
    containerd) build_containerd ;;
    crictl) build_crictl ;;
    local-path) build_local_path ;;
    pause) build_pause ;;
    *) die "unknown component $t" ;;
  esac
done
