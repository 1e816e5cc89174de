#!/usr/bin/env bash
# A cached minimal Debian root with some packages, for checks that run the real
# programs of a Debian release (e.g. bullseye's redis-server 6.0, trixie's nginx).
# Usage: hack/debian-root.sh <bullseye|bookworm|trixie> <package>...
#   Prints the root's path: $MINOP_CACHE/rootfs/<suite>-<hash of the sorted package list>.
#   Built once (debootstrap, minbase) in a temporary directory renamed into place,
#   so the path printed is always complete; concurrent callers wait on a lock.
#   Run a program from it with minop.kit.localpod.debian_programs (its own ld.so
#   and libraries; configs and data stay on the host) or with chroot.
source "$(dirname "$0")/lib.sh"
source "$HACK_DIR/debian.sh"

[ $# -ge 2 ] || die "usage: $0 <bullseye|bookworm|trixie> <package>..."
suite="$1"; shift
case "$suite" in bullseye|bookworm|trixie) ;; *) die "unsupported suite '$suite' (bullseye, bookworm or trixie)" ;; esac
[ "$(id -u)" = 0 ] || die "debootstrap needs root"

packages="$(printf '%s\n' "$@" | sort -u | paste -sd' ')"
key="$suite-$(printf '%s' "$packages" | sha256sum | cut -c1-12)"
top="$MINOP_CACHE/rootfs"
root="$top/$key"
mkdir -p "$top"
exec 9>"$top/.$key.lock"
flock 9
if [ ! -d "$root" ]; then
  tmp="$(mktemp -d "$top/.$key.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  # shellcheck disable=SC2086  # the package list is words
  debootstrap_minbase "$suite" "$tmp/root" "$tmp/debootstrap.log" $packages
  printf '%s\n' "$suite" "$packages" >"$tmp/root/.minop-packages"
  mv -T "$tmp/root" "$root"
fi
echo "$root"
