# Debian roots made by debootstrap from the mirror apt uses on this machine
# (nothing else is reachable). Source it after hack/lib.sh.

# The Debian mirror apt uses on this machine (deb822 .sources or one-line format),
# so debootstrap and apt inside images reach the same, allowed, mirror.
debian_mirror() {
  local m
  m="$( { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
          sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+[a-z]\+[[:space:]].*/\2/p' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
        } | tr ' ' '\n' | grep -E '/debian/?$' | head -1 || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  log "installing debootstrap from Debian"
  # Other builds on this machine may hold dpkg's lock: wait for it, do not fail.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    --no-install-recommends debootstrap >/dev/null
}

# debootstrap_minbase <suite> <root> <log> [package...]: a minbase Debian <suite>
# in <root> (new or empty), with the packages installed, apt's
# package cache and lists dropped. The log is kept; its tail is shown on failure.
debootstrap_minbase() {
  local suite="$1" root="$2" logf="$3"; shift 3
  local mirror include=(); mirror="$(debian_mirror)"
  [ $# -eq 0 ] || include=("--include=$(IFS=,; echo "$*")")
  ensure_debootstrap
  log "debootstrap $suite (minbase${*:+ + $*}) from $mirror"
  debootstrap --variant=minbase "${include[@]}" "$suite" "$root" "$mirror" >"$logf" 2>&1 \
    || { tail -20 "$logf" >&2; die "debootstrap of $suite failed (log: $logf)"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
}
