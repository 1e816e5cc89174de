"""The chaos suite's detectors fire: a plugin that creates twice is caught."""

from __future__ import annotations

import json
from typing import Any

import chaos_plugins as cp
from chaosops import OperatorProcess, double_creates, plugin_env, until

DOUBLE = f"{cp.DOUBLE.kind.plural}.{cp.DOUBLE.kind.group}"


def test_the_double_create_detector_catches_a_plugin_that_creates_twice(
    kubectl: Any, api: Any, namespace: str, tmp_path: Any
) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(cp.DOUBLE.crd))
    kubectl("wait", "--for=condition=Established", f"crd/{DOUBLE}", "--timeout=60s")
    kind = cp.DOUBLE.kind
    body = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": "twice"},
        "spec": {"size": 1},
    }
    created = api.request("POST", api.resource_path(DOUBLE, namespace), body)
    op = OperatorProcess(tmp_path, ["-n", namespace, "--plugin", "chaos-double"],
                         plugin_env(tmp_path)).start()  # fmt: skip
    try:
        found = until(lambda: double_creates(tmp_path), 90, "the double create detected")
    finally:
        op.stop()
    assert {uid for uid, _, _ in found} == {created["metadata"]["uid"]}
