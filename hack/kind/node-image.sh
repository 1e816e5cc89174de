#!/usr/bin/env bash
# Builds kind's node image for $KUBE_VERSION entirely from local material (no
# registry is reachable, and `kind build node-image` always pulls its base
# image, kindnetd and the storage images): $NODE_IMAGE = minop/kind-node:<k8s>.
#
#  1. programs: hack/kind/build-node-bins.sh (Go module proxy, cached)
#  2. the images kubeadm and kind need, under the exact names kubeadm asks for
#     (`kubeadm config images list`), built here:
#       registry.k8s.io/{kube-apiserver,kube-controller-manager,kube-scheduler}
#       (FROM scratch + the binary), kube-proxy (Debian + iptables), etcd,
#       coredns/coredns, pause (our own static pause); and for kind's default
#       CNI and storage: minop.local/kindnet, minop.local/local-path-provisioner,
#       minop.local/local-path-helper (referenced by /kind/manifests/*.yaml)
#  3. the node root filesystem: hack/kind/node/Dockerfile FROM minop/debian
#  4. the images imported into the node's containerd store (namespace k8s.io,
#     pinned, not unpacked: containerd unpacks on first use inside the node's
#     /var volume), then `docker commit`.
# Cached by a hash of every input (label minop.inputs; tarball in
# $MINOP_CACHE/kind/images). Usage: hack/kind/node-image.sh [--force]
source "$(dirname "$0")/lib.sh"

force="${1:-}"
mkdir -p "$LOGS"
docker_ready || "$KIND_DIR/docker.sh" start
"$KIND_DIR/base-image.sh"
timed node-bins "$KIND_DIR/build-node-bins.sh"

mapfile -t KUBEADM_IMAGES < <("$KIND_DIR/build-node-bins.sh" --print-images)
[ ${#KUBEADM_IMAGES[@]} -ge 6 ] || die "kubeadm listed no images: ${KUBEADM_IMAGES[*]}"
kubeadm_image() { printf '%s\n' "${KUBEADM_IMAGES[@]}" | grep -E "/$1:" | head -1; }
tag_of() { echo "${1##*:}"; }
ETCD_IMAGE="$(kubeadm_image etcd)"; COREDNS_IMAGE="$(kubeadm_image coredns)"; PAUSE_IMAGE="$(kubeadm_image pause)"
ETCD_V="v$(tag_of "$ETCD_IMAGE")"; ETCD_V="${ETCD_V%-*}"

# Programs, by where build-node-bins.sh caches them.
BIN_ETCD="$COMP_BINS/etcd/$ETCD_V/etcd"
BIN_COREDNS="$COMP_BINS/coredns/$(tag_of "$COREDNS_IMAGE")/coredns"
BIN_PAUSE="$("$KIND_DIR/build-node-bins.sh" --print-pause-dir)/pause"
CTRD="$COMP_BINS/containerd/$CONTAINERD_VERSION"
BIN_CRICTL="$COMP_BINS/crictl/$CRICTL_VERSION/crictl"
BIN_LOCALPATH="$COMP_BINS/local-path-provisioner/$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner"

KINDNET_IMAGE="$LOCAL_REPO/kindnet:$KUBE_VERSION"
PROVISIONER_IMAGE="$LOCAL_REPO/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION"
HELPER_IMAGE="$LOCAL_REPO/local-path-helper:bookworm"

# static_image <image> <user> <entrypoint-json|""> <file>:<path-in-image>...
# A FROM-scratch image holding static Go binaries plus the few files programs
# expect of a root filesystem (passwd/group, /tmp), made with `docker import`
# from a tarball we write: no Dockerfile, no base to pull.
static_image() {
  local image="$1" user="$2" entry="$3"; shift 3
  local hash; hash="$( { stamp_hash "${@%%:*}"; inputs_hash "$KIND_DIR/node-image.sh"; } | sha256sum | cut -c1-16)"
  [ "$(image_label "$image" minop.inputs)" = "$hash" ] && return
  log "image $image"
  local root; root="$(mktemp -d)"
  mkdir -p "$root/etc" "$root/tmp" "$root/usr/local/bin"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
  echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
  local f
  for f in "$@"; do install -D -m 0755 "${f%%:*}" "$root/${f#*:}"; done
  local changes=(-c "LABEL minop.inputs=$hash" -c "ENV PATH=/usr/local/bin:/usr/bin:/bin" -c "USER $user")
  [ -z "$entry" ] || changes+=(-c "ENTRYPOINT $entry")
  tar -C "$root" --owner=0 --group=0 --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
  rm -rf "$root"
}

build_component_images() {
  local k="$KUBE_VERSION"
  static_image "registry.k8s.io/kube-apiserver:$k" 0 "" "$NODE_BINS/kube-apiserver:usr/local/bin/kube-apiserver"
  static_image "registry.k8s.io/kube-controller-manager:$k" 0 "" "$NODE_BINS/kube-controller-manager:usr/local/bin/kube-controller-manager"
  static_image "registry.k8s.io/kube-scheduler:$k" 0 "" "$NODE_BINS/kube-scheduler:usr/local/bin/kube-scheduler"
  static_image "$ETCD_IMAGE" 0 "" "$BIN_ETCD:usr/local/bin/etcd"
  # kubeadm's CoreDNS Deployment passes only args; the upstream image's entrypoint is /coredns.
  static_image "$COREDNS_IMAGE" 0 '["/coredns"]' "$BIN_COREDNS:coredns"
  # pause runs as 65535 like upstream's.
  static_image "$PAUSE_IMAGE" 65535:65535 '["/pause"]' "$BIN_PAUSE:pause"
  static_image "$PROVISIONER_IMAGE" 0 '["/usr/local/bin/local-path-provisioner"]' \
    "$BIN_LOCALPATH:usr/local/bin/local-path-provisioner"
  dockerfile_image "registry.k8s.io/kube-proxy:$k" "$KIND_DIR/images/kube-proxy.Dockerfile" \
    "$KIND_DIR/images/iptables-mode" "$NODE_BINS/kube-proxy"
  dockerfile_image "$KINDNET_IMAGE" "$KIND_DIR/images/kindnet.Dockerfile" \
    "$KIND_DIR/images/iptables-mode" "$KIND_DIR/images/kindnet.sh" "$NODE_BINS/kubectl"
  # The storage helper only runs `sh -c "mkdir/rm ..."`: our Debian base does.
  docker tag "$BASE_IMAGE" "$HELPER_IMAGE"
}

preload_images() {  # everything the node's containerd must hold before kind starts it
  printf '%s\n' "${KUBEADM_IMAGES[@]}" "$KINDNET_IMAGE" "$PROVISIONER_IMAGE" "$HELPER_IMAGE"
}

# Stage 1: the node's root filesystem from hack/kind/node/Dockerfile.
build_rootfs() {
  local image="$1" ctx; ctx="$(mktemp -d)"
  cp -a "$KIND_DIR/node/Dockerfile" "$KIND_DIR/node/files" "$ctx/"
  mkdir -p "$ctx/bin/usr/bin" "$ctx/bin/usr/local/bin"
  cp "$NODE_BINS"/{kubelet,kubeadm,kubectl} "$ctx/bin/usr/bin/"
  cp "$CTRD"/{containerd,containerd-shim-runc-v2,ctr} "$BIN_CRICTL" "$ctx/bin/usr/local/bin/"
  echo -n "$KUBE_VERSION" >"$ctx/files/kind/version"
  sed -i "s#@SANDBOX_IMAGE@#$PAUSE_IMAGE#" "$ctx/files/etc/containerd/config.toml"
  sed -i "s#@KINDNET_IMAGE@#$KINDNET_IMAGE#" "$ctx/files/kind/manifests/default-cni.yaml"
  sed -i "s#@PROVISIONER_IMAGE@#$PROVISIONER_IMAGE#; s#@HELPER_IMAGE@#$HELPER_IMAGE#g" \
    "$ctx/files/kind/manifests/default-storage.yaml"
  log "building node root filesystem (apt-get inside docker build; ~2 min)"
  docker_build "$image" rootfs "$ctx"
  rm -rf "$ctx"
}

# Stage 2: import the images into containerd inside a container of stage 1,
# then commit. containerd runs just for the import; --no-unpack keeps the
# snapshots out of the image (overlayfs cannot nest on docker's overlay2 here).
build_node() {
  local hash="$1" stage1="$NODE_IMAGE-rootfs"
  build_component_images
  build_rootfs "$stage1"
  local work cid; work="$(mktemp -d "${TMPDIR:-/tmp}/minop-node.XXXXXX")"
  mapfile -t imgs < <(preload_images)
  log "saving ${#imgs[@]} images for preloading"
  docker save -o "$work/preload.tar" "${imgs[@]}"
  # containerd as the child of a shell that waits for it (so it is reaped and
  # the container stops when it exits). Its log and the tarball sit in a bind
  # mount and /run, /tmp are tmpfs: none of that ends up in the commit.
  cid="$(docker run -d --privileged --tmpfs /run --tmpfs /tmp -v "$work:/build" \
    --entrypoint /bin/sh "$stage1" -c 'containerd >/build/containerd.log 2>&1 & echo $! >/build/containerd.pid; wait $!')"
  # shellcheck disable=SC2064
  trap "docker rm -f '$cid' >/dev/null 2>&1; rm -rf '$work'" EXIT
  local i
  for i in $(seq 1 60); do docker exec "$cid" ctr version >/dev/null 2>&1 && break; sleep 0.5; done
  docker exec "$cid" ctr version >/dev/null 2>&1 || { cat "$work/containerd.log" >&2; die "containerd did not start in the build container"; }
  log "importing into the node's containerd store (k8s.io namespace)"
  docker exec "$cid" ctr -n k8s.io images import --no-unpack --all-platforms \
    --label io.cri-containerd.pinned=pinned /build/preload.tar >/dev/null 2>>"$work/ctr.log" \
    || { cat "$work/ctr.log" >&2; die "ctr images import failed"; }
  local have ref missing=()
  have="$(docker exec "$cid" ctr -n k8s.io images list -q 2>/dev/null)"
  for i in "${imgs[@]}"; do
    # containerd spells names without a registry host as docker.io/...
    ref="$i"; case "${i%%/*}" in *.*|*:*) ;; *) ref="docker.io/$i" ;; esac
    grep -qxF "$ref" <<<"$have" || missing+=("$i")
  done
  [ ${#missing[@]} -eq 0 ] || die "not in the node's containerd store after import: ${missing[*]}"
  docker exec "$cid" sh -c 'kill "$(cat /build/containerd.pid)"'
  docker wait "$cid" >/dev/null
  docker commit \
    -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' \
    -c "LABEL minop.inputs=$hash minop.kubernetes=$KUBE_VERSION" \
    "$cid" "$NODE_IMAGE" >/dev/null
  docker rm -f "$cid" >/dev/null; rm -rf "$work"; trap - EXIT
  docker rmi "$stage1" >/dev/null
  log "$NODE_IMAGE built ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | numfmt --to=iec))"
}

hash="$( { derived_hash "$HACK_DIR/versions.env" "$KIND_DIR/versions.env" "$KIND_DIR/node" \
            "$KIND_DIR/images" "$KIND_DIR/node-image.sh" "$KIND_DIR/pause"
          stamp_hash "$NODE_BINS" "$COMP_BINS/etcd/$ETCD_V" "$(dirname "$BIN_COREDNS")" "$(dirname "$BIN_PAUSE")" \
            "$CTRD" "$(dirname "$BIN_CRICTL")" "$(dirname "$BIN_LOCALPATH")"
        } | sha256sum | cut -c1-16)"
[ "$force" != --force ] || docker rmi "$NODE_IMAGE" >/dev/null 2>&1 || true
timed node-image ensure_image "$NODE_IMAGE" "$hash" build_node "$hash"
echo "$NODE_IMAGE"
