#!/usr/bin/env bash
# hack/kind/load.sh IMAGE...: copy locally built images into the kind nodes'
# containerd (nothing is pulled). For the operator's image: `make image` then this.
source "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || die "usage: $0 IMAGE..."
for img in "$@"; do
  image_exists "$img" || die "no local image $img (build it first)"
done
kind_cli load docker-image --name "$KIND_CLUSTER_NAME" "$@" >&2
