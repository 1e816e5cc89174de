# Go builds shared by hack/build-bins.sh (the local control plane) and
# hack/kind/build-node-bins.sh (the kind node image). Source after lib.sh.

# all_present <dir> <binary>...: every binary is there and executable.
all_present() {
  local dir="$1"; shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# k8s_build <out> <cmd...>: Kubernetes commands (k8s.io/kubernetes/cmd/<cmd>) at
# $KUBE_VERSION, through a wrapper module: k8s.io/kubernetes replaces its staging
# modules with ./staging, which a module download cannot follow, so each is pinned
# to its published v0.X.Y twin. The version variables are stamped so every binary
# reports $KUBE_VERSION (kubeadm derives the image tags it asks for from it).
k8s_build() {
  local out="$1"; shift
  all_present "$out" "$@" && return
  log "building $* $KUBE_VERSION (first time only; the first Kubernetes build takes ~10-25 min on 2 cores)"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local/k8sbuild >/dev/null 2>&1
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

# etcd_build <version> <out>: etcd's server at <version> into <out>/etcd.
etcd_build() {
  local v="$1" out="$2"
  all_present "$out" etcd && return
  log "building etcd $v"
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
  log "etcd in $out"
}

# module_build <out> <module> <version> <pkg>...: commands of a module at a tag (<pkg> relative
# to <module>) into <out>, through a wrapper module that requires it: `go install pkg@version`
# needs the module's version list, which the proxy refuses for operator-framework modules.
# Env: BUILD_TAGS, BUILD_CGO (0|1), BUILD_LDFLAGS, BUILD_PATCH: a function called with a
# writable copy of the module (the wrapper builds that copy instead; `go build -overlay` may
# not replace files in the module cache), for small patches made at build time, never stored.
module_build() {
  local out="$1" module="$2" version="$3"; shift 3
  local names=() p
  for p in "$@"; do names+=("$(basename "$p")"); done
  all_present "$out" "${names[@]}" && return
  log "building ${names[*]} $version (first time only; ~5-15 min each on 2 cores)"
  local work; work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local/wrapper >/dev/null 2>&1
    go mod edit -require="$module@$version"
    { printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for p in "$@"; do printf '\t_ "%s/%s"\n' "$module" "$p"; done
      printf ')\n'; } > tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    if [ -n "${BUILD_PATCH:-}" ]; then
      cp -r "$(go list -m -f '{{.Dir}}' "$module")" src
      chmod -R u+w src
      "$BUILD_PATCH" "$work/src"
      go mod edit -replace="$module=./src"
    fi
    local args=(-trimpath "-ldflags=-s -w ${BUILD_LDFLAGS:-}") pkgs=()
    [ -z "${BUILD_TAGS:-}" ] || args+=("-tags=$BUILD_TAGS")
    for p in "$@"; do pkgs+=("$module/$p"); done
    mkdir -p "$out.tmp"
    CGO_ENABLED="${BUILD_CGO:-0}" nice -n 10 go build "${args[@]}" -o "$out.tmp/" "${pkgs[@]}"
  )
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
  log "${names[*]} in $out"
}

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
