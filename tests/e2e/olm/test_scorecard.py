"""operator-sdk scorecard on the bundle: its basic and olm suites, run as pods from the
scorecard-test image built here (hack/kind/scorecard-image.sh), so only where pods run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from minop.packaging import scorecard

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.realpods
BUNDLE = REPO / "bundle"


def test_scorecard_basic_and_olm_suites_pass(kubeconfig: str, namespace: str) -> None:
    config = yaml.safe_load((BUNDLE / "tests" / "scorecard" / "config.yaml").read_text())
    (image,) = {t["image"] for stage in config["stages"] for t in stage["tests"]}
    r = subprocess.run(
        [os.environ["MINOP_OPERATOR_SDK"], "scorecard", str(BUNDLE), "--kubeconfig", kubeconfig,
         "--namespace", namespace, "--selector", "suite in (basic,olm)", "--output", "json",
         "--wait-time", "240s", "--pod-security", "restricted",
         # the test image holds tar and sh too: nothing else to build or pull
         "--untar-image", image, "--storage-image", image],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        results = json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError(f"scorecard printed no result (rc {r.returncode}): {r.stderr}") from e
    states = {
        res["name"]: (res["state"], res.get("errors") or None)
        for item in results["items"]
        for res in item["status"]["results"]
    }
    assert states == {t: ("pass", None) for tests in scorecard.SUITES.values() for t in tests}
    assert r.returncode == 0, r.stderr
