#!/usr/bin/env bash
# The scorecard-test image for `operator-sdk scorecard` on kind: minop.local/scorecard-test
# from hack/kind/images/scorecard-test.Dockerfile, tagged with the name the bundle's
# tests/scorecard/config.yaml gives it (upstream's, which cannot be pulled here) and loaded
# into the kind cluster. Prints that name.
source "$(dirname "$0")/lib.sh"

bin="$MINOP_CACHE/operator-sdk/$OPERATOR_SDK_VERSION/bin/scorecard-test"
[ -x "$bin" ] || "$HACK_DIR/olm.sh" build sdk
ours="$LOCAL_REPO/scorecard-test:$OPERATOR_SDK_VERSION"
upstream="$("$REPO_DIR/.venv/bin/python" -c '
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
(image,) = {t["image"] for s in cfg["stages"] for t in s["tests"]}
print(image)
' "$REPO_DIR/bundle/tests/scorecard/config.yaml")"
"$KIND_DIR/base-image.sh" >&2
dockerfile_image "$ours" "$KIND_DIR/images/scorecard-test.Dockerfile" "$bin"
docker tag "$ours" "$upstream"
"$KIND_DIR/load.sh" "$ours" "$upstream"
echo "$upstream"
