#!/usr/bin/env bash
# Installs the Debian programs the real-program checks run (redis-server, nginx,
# memcached, sasl2-bin) when missing. Their services are not started: tests run their own
# copies as a non-root user on loopback ports. As root, also the other Debian
# releases' servers (hack/debian-root.sh, cached), before the tests run in parallel and
# outside make unit's per-test timeout (a cold debootstrap takes minutes on a busy machine).
source "$(dirname "$0")/lib.sh"

roots() {
  [ "$(id -u)" = 0 ] || { log "not root: the checks of other Debian releases' servers will skip"; return; }
  "$HACK_DIR/debian-root.sh" bullseye redis-server >/dev/null
  "$HACK_DIR/debian-root.sh" trixie redis-server >/dev/null
  "$HACK_DIR/debian-root.sh" trixie valkey-server >/dev/null
  "$HACK_DIR/debian-root.sh" trixie memcached >/dev/null
  "$HACK_DIR/debian-root.sh" trixie nginx >/dev/null
}

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v memcached >/dev/null || need+=(memcached)
# the SASL check makes its sasldb with saslpasswd2
[ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
[ ${#need[@]} -eq 0 ] && { roots; exit 0; }
[ "$(id -u)" = 0 ] || die "need root to apt-get install ${need[*]} (or install them yourself)"
log "installing ${need[*]} from Debian"
# policy-rc.d 101 keeps the packages' init scripts from starting system services.
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
roots
