"""operator-sdk scorecard's test configuration for the bundle (tests/scorecard/config.yaml):
the basic suite and the olm suite, run from the scorecard-test image."""

from __future__ import annotations

from typing import Any

CONFIG_DIR = "tests/scorecard/"
# Annotations that tell operator-sdk where the bundle keeps its scorecard configuration.
ANNOTATIONS = {
    "operators.operatorframework.io.test.mediatype.v1": "scorecard+v1",
    "operators.operatorframework.io.test.config.v1": CONFIG_DIR,
}
SUITES = {
    "basic": ["basic-check-spec"],
    "olm": [
        "olm-bundle-validation",
        "olm-crds-have-validation",
        "olm-crds-have-resources",
        "olm-spec-descriptors",
        "olm-status-descriptors",
    ],
}


def config(image: str) -> dict[str, Any]:
    """The Configuration (scorecard.operatorframework.io/v1alpha3); ``image`` is the
    scorecard-test image of the operator-sdk release that runs it."""
    if not image or ":" not in image.rsplit("/", 1)[-1]:
        raise ValueError(f"scorecard image: need a tagged image reference, got {image!r}")
    tests = [
        {
            "entrypoint": ["scorecard-test", test],
            "image": image,
            "labels": {"suite": suite, "test": f"{test}-test"},
        }
        for suite, names in SUITES.items()
        for test in names
    ]
    return {
        "apiVersion": "scorecard.operatorframework.io/v1alpha3",
        "kind": "Configuration",
        "metadata": {"name": "config"},
        "stages": [{"parallel": True, "tests": tests}],
        "storage": {"spec": {"mountPath": {}}},
    }
