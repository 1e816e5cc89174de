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
# shellcheck source=../gobuild.sh
source "$HACK_DIR/gobuild.sh"

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

build_etcd() {
  # kubeadm's etcd tag is <etcd version>-<image revision>, e.g. 3.6.8-0.
  local tag v; tag="$(kubeadm_tag etcd)"; v="v${tag%-*}"
  etcd_build "$v" "$COMP_BINS/etcd/$v"
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
