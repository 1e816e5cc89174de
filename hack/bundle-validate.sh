#!/usr/bin/env bash
# Validates bundle/ with the operator-framework validators (what `operator-sdk bundle
# validate --select-optional suite=operatorframework` runs; operator-sdk itself cannot
# be built from the module proxy here). Fails on any error or warning, read from the
# output rather than trusted from an exit code.
source "$(dirname "$0")/lib.sh"

src="$HACK_DIR/bundle-validate"
key="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
bin="$MINOP_CACHE/bundle-validate/$key/bundle-validate"
if [ ! -x "$bin" ]; then
  log "building the bundle validator (first time only)"
  mkdir -p "$(dirname "$bin")"
  (cd "$src" && go build -trimpath -ldflags="-s -w" -o "$bin.tmp" .) && mv "$bin.tmp" "$bin"
fi
minor="$(echo "$KUBE_VERSION" | sed 's/^v\([0-9]*\.[0-9]*\).*/\1/')"
out="$("$bin" "$REPO_DIR/bundle" "$minor" 2>&1)" || true
echo "$out"
if grep -qE '^(ERROR|WARN)' <<<"$out" || ! grep -q '^bundle is valid' <<<"$out"; then
  die "bundle validation failed"
fi
