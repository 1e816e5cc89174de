#!/usr/bin/env bash
# minop/debian:bookworm, the base of every image we build: no registry is
# reachable, so `FROM debian` cannot be pulled; debootstrap makes the same
# minimal Debian from the mirror apt already uses on this machine.
# Cached: skipped if the image (or its saved tarball in $MINOP_CACHE/kind/images) exists.
# Usage: hack/kind/base-image.sh
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/debian.sh"

build_base() {
  local root; root="$(mktemp -d "${TMPDIR:-/tmp}/minop-debian.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" RETURN
  debootstrap_minbase bookworm "$root" "$LOGS/debootstrap.log"
  # Host-neutral: no copy of this host's resolver/hostname.
  : >"$root/etc/resolv.conf"; rm -f "$root/etc/hostname"
  # Images built FROM this one run apt-get non-interactively and must not keep docs.
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/doc/*/copyright\n' \
    >"$root/etc/dpkg/dpkg.cfg.d/01-minop-nodoc"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/01-minop-norecommends"
  tar -C "$root" -c . | docker import \
    -c "LABEL minop.inputs=$1 org.opencontainers.image.source=debootstrap:bookworm" \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  log "$BASE_IMAGE imported ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"
}

mkdir -p "$LOGS"
docker_ready || "$KIND_DIR/docker.sh" start
hash="$(inputs_hash "$KIND_DIR/base-image.sh" "$HACK_DIR/debian.sh")"
timed base-image ensure_image "$BASE_IMAGE" "$hash" build_base "$hash"
