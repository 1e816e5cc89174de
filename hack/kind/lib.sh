# Shared settings for hack/kind/*.sh. Source it; it sources hack/lib.sh (strict mode).
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
KIND_DIR="$HACK_DIR/kind"
# shellcheck source=versions.env
source "$KIND_DIR/versions.env"

KIND_CACHE="$MINOP_CACHE/kind"
# Everything Go-built for the node image and its preloaded images, keyed by version.
NODE_BINS="$KIND_CACHE/node-bins/$KUBE_VERSION"        # kubelet kubeadm kube-proxy (+ control plane, copied)
COMP_BINS="$KIND_CACHE/bins"                           # <name>/<version>/<binary>
PIDS="$CLUSTER_DIR/pids"
LOGS="$CLUSTER_DIR/logs"

KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-minop}"
KIND_KUBECONFIG="$CLUSTER_DIR/kind-kubeconfig"
KIND_AUDIT_DIR="$CLUSTER_DIR/kind-audit"
BASE_IMAGE="minop/debian:bookworm"
NODE_IMAGE="minop/kind-node:$KUBE_VERSION"
# Our own registry-free names for the add-on images (kubeadm's images keep the
# exact registry.k8s.io names kubeadm asks for, see node-image.sh).
LOCAL_REPO="minop.local"

kind_cli() { "$KIND_BIN/kind" "$@"; }

docker_ready() { docker info >/dev/null 2>&1; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# image_label <image> <label>: a label's value, empty if unset or no image.
image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null | sed 's/<no value>//'
}

# timed <name> <cmd...>: run and append "<name> <seconds>" to the timing log, so
# cold/warm durations of each stage can be read back (hack/KIND.md).
timed() {
  local name="$1" t0=$SECONDS; shift
  "$@"
  mkdir -p "$LOGS"
  printf '%s %s %ss\n' "$(date +%FT%T)" "$name" "$((SECONDS - t0))" >>"$LOGS/kind-timings.log"
}

# inputs_hash <file|dir>... : a short hash of the named build inputs (contents
# and paths, relative to the repository: every clone shares the cache), so an
# image rebuilds exactly when one of its inputs changes.
inputs_hash() {
  find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sed "s#  $REPO_DIR/#  #" \
    | sha256sum | cut -c1-16
}

# stamp_hash <dir>...: like inputs_hash but from path, size and mtime only, for
# directories of large built binaries (our builds replace them, never edit in
# place); reading ~700 MB of binaries on every run cost ~15 s.
stamp_hash() {
  find "$@" -type f -printf '%p %s %T@\n' | sort | sha256sum | cut -c1-16
}

# derived_hash <file|dir>...: inputs_hash for images built FROM $BASE_IMAGE,
# which must also rebuild when the base does.
derived_hash() {
  { inputs_hash "$@"; docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } | sha256sum | cut -c1-16
}

# docker_build <image> <hash> <context dir>: the classic builder (local images
# only, never a registry lookup), quiet unless it fails.
docker_build() {
  local image="$1" hash="$2" ctx="$3" out
  if ! out="$(DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE_IMAGE" \
      --label "minop.inputs=$hash" -t "$image" "$ctx" 2>&1)"; then
    printf '%s\n' "$out" | tail -40 >&2
    die "docker build of $image failed"
  fi
}

# dockerfile_image <image> <dockerfile> <file>...: docker build FROM our base,
# with the named files as the whole build context.
dockerfile_image() {
  local image="$1" dockerfile="$2"; shift 2
  local hash; hash="$(derived_hash "$dockerfile" "$@")"
  [ "$(image_label "$image" minop.inputs)" = "$hash" ] && return
  log "image $image"
  local ctx; ctx="$(mktemp -d)"
  cp "$dockerfile" "$ctx/Dockerfile"
  local f; for f in "$@"; do cp "$f" "$ctx/"; done
  docker_build "$image" "$hash" "$ctx"
  rm -rf "$ctx"
}

# ensure_image <image> <hash> <build-fn> [args...]: make sure <image> exists and
# was built from inputs hashing to <hash> (label minop.inputs). Order: the image
# in dockerd; else a `docker save` tarball in $KIND_CACHE/images (survives a
# wiped /var/lib/docker, e.g. on CI where only ~/.cache is kept); else build it
# with <build-fn> and save the tarball for next time.
ensure_image() {
  local image="$1" hash="$2"; shift 2
  local tar="$KIND_CACHE/images/${image//[\/:]/_}-$hash.tar"
  if [ "$(image_label "$image" minop.inputs)" = "$hash" ]; then
    return
  fi
  if [ -f "$tar" ]; then
    log "loading $image from $tar"
    docker load -q -i "$tar" >/dev/null
    [ "$(image_label "$image" minop.inputs)" = "$hash" ] && return
    log "cached tarball did not hold $image@$hash; rebuilding"
  fi
  "$@"
  [ "$(image_label "$image" minop.inputs)" = "$hash" ] || die "build of $image did not label it minop.inputs=$hash"
  mkdir -p "$(dirname "$tar")"
  rm -f "$KIND_CACHE/images/${image//[\/:]/_}-"*.tar
  docker save -o "$tar.tmp" "$image" && mv "$tar.tmp" "$tar"
}
