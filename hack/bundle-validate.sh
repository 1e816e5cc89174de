#!/usr/bin/env bash
# make bundle-validate: operator-sdk's own `bundle validate` on bundle/ with the optional
# operatorframework suite (OperatorHub, good practices, deprecated APIs for our Kubernetes
# minor, standard capabilities and categories). Any error or warning fails, read from the
# JSON result rather than trusted from the exit code.
source "$(dirname "$0")/lib.sh"

sdk="$MINOP_CACHE/operator-sdk/$OPERATOR_SDK_VERSION/bin/operator-sdk"
[ -x "$sdk" ] || "$HACK_DIR/olm.sh" build sdk
minor="$(echo "$KUBE_VERSION" | sed 's/^v\([0-9]*\.[0-9]*\).*/\1/')"
out="$("$sdk" bundle validate "$REPO_DIR/bundle" --select-optional suite=operatorframework \
  --optional-values="k8s-version=$minor" --output json-alpha1 2>/dev/null)" || true
python3 - "$out" <<'PY' || die "bundle validation failed"
import json, sys
try:
    result = json.loads(sys.argv[1])
except ValueError:
    sys.exit(f"operator-sdk printed no result: {sys.argv[1]!r}")
findings = [o for o in result.get("outputs") or [] if o["type"] != "info"]
for o in findings:
    print(f"{o['type'].upper():8} {o['message']}")
if findings or not result.get("passed"):
    sys.exit(f"{len(findings)} findings")
print("operator-sdk bundle validate (suite=operatorframework): no errors, no warnings")
PY
