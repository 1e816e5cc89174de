#!/usr/bin/env bash
# make image: wheels of minop and every plugin, then `docker build` (BASE overridable,
# e.g. BASE=minop/debian:bookworm for an image built here without any registry).
source "$(dirname "$0")/lib.sh"

IMAGE="${IMAGE:?IMAGE is required, e.g. quay.io/minop/minop:v0.1.0}"
BASE="${BASE:-python:3.11-slim-bookworm}"
command -v docker >/dev/null || die "docker is required for make image"
rm -rf "$REPO_DIR/build/wheels"
"$REPO_DIR/.venv/bin/pip" wheel -q -w "$REPO_DIR/build/wheels" "$REPO_DIR" "$REPO_DIR"/plugins/*/
docker build --build-arg "BASE=$BASE" --label minop.image=operator -t "$IMAGE" \
  -f "$REPO_DIR/Dockerfile" "$REPO_DIR"
# every rebuild leaves the previous build untagged: drop those, and only those
docker image prune -f --filter label=minop.image=operator >/dev/null
log "built $IMAGE from $BASE"
