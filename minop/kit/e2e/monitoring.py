"""Checks shared by the plugins' metrics e2e tests (minop.kit.monitoring): the
Prometheus Operator's CRDs, absent and then installed during a test, and the
conditions and Events of the optional ServiceMonitor and PrometheusRule.

The CRDs are cluster-wide: ``without_operator_crds`` lets one such test at a time
run (an exclusive lock shared by every xdist worker on this machine), so one test's
"not installed yet" is never another's "installed".
"""

from __future__ import annotations

import fcntl
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from minop.kit import monitoring
from minop.kit.e2e.deployment import condition, get
from minop.kit.e2e.fixtures import Kubectl
from minop.kit.testing import wait_for
from minop.resource import Kind

KINDS = (monitoring.SERVICE_MONITOR, monitoring.PROMETHEUS_RULE)


def crd_name(kind: Kind) -> str:
    return f"{kind.plural}.{kind.group}"


def open_crd(kind: Kind) -> dict[str, Any]:
    """The kind as the Prometheus Operator serves it, its schema left open: what the
    plugins write is checked by their unit tests, this only makes the API serve it."""
    singular = kind.kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(kind)},
        "spec": {
            "group": kind.group,
            "names": {
                "kind": kind.kind,
                "plural": kind.plural,
                "listKind": f"{kind.kind}List",
                "singular": singular,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": kind.version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@contextmanager
def without_operator_crds(kubectl: Kubectl) -> Iterator[None]:
    """No ServiceMonitor or PrometheusRule CRD until the test installs one; both
    removed again afterwards."""
    lock = Path(tempfile.gettempdir()) / "minop-e2e-prometheus-operator-crds.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for kind in KINDS:
            kubectl("delete", "crd", crd_name(kind), "--ignore-not-found", "--wait=true")
        try:
            yield
        finally:
            for kind in KINDS:
                kubectl("delete", "crd", crd_name(kind), "--ignore-not-found", "--wait=true")


def install_crd(kubectl: Kubectl, kind: Kind) -> None:
    """The Prometheus Operator arrives (its CRD, served)."""
    kubectl("apply", "-f", "-", input=json.dumps(open_crd(kind)))
    kubectl("wait", "--for=condition=Established", f"crd/{crd_name(kind)}", "--timeout=60s")


def warnings(kubectl: Kubectl, ns: str) -> list[str]:
    events = get(kubectl, ns, "events")["items"]
    return [e["reason"] for e in events if e["type"] == "Warning"]


def _condition(kubectl: Kubectl, ns: str, ref: str, o: monitoring.Optional) -> dict[str, Any]:
    return condition(get(kubectl, ns, ref), o.condition)


def assert_crd_missing(kubectl: Kubectl, ns: str, ref: str, o: monitoring.Optional) -> None:
    """``ref`` (e.g. redis/r) reports the missing CRD as o's condition, naming the
    field and the CRD, and a Warning Event."""
    wait_for(lambda: _condition(kubectl, ns, ref, o) or None, 30, o.condition)
    c = _condition(kubectl, ns, ref, o)
    assert (c["status"], c["reason"]) == ("False", "CRDNotInstalled"), c
    assert f"metrics.{o.field}.enabled" in c["message"], c["message"]
    assert crd_name(o.kind) in c["message"], c["message"]
    wait_for(lambda: "CRDNotInstalled" in warnings(kubectl, ns), 30, "a Warning Event")


def wait_applied(kubectl: Kubectl, ns: str, ref: str, o: monitoring.Optional) -> Any:
    """Once o's condition is True: the object (named as its owner)."""
    wait_for(lambda: _condition(kubectl, ns, ref, o).get("status") == "True", 30, o.kind.kind)
    return get(kubectl, ns, f"{o.kind.plural}.{o.kind.group}/{ref.split('/', 1)[1]}")


def wait_deleted(kubectl: Kubectl, ns: str, ref: str, o: monitoring.Optional) -> None:
    """Turned off: the object is gone and the condition says so."""
    what = f"{o.kind.plural}.{o.kind.group}/{ref.split('/', 1)[1]}"
    wait_for(lambda: get(kubectl, ns, what, missing_ok=True) is None, 30, f"{o.kind.kind} deleted")
    assert _condition(kubectl, ns, ref, o)["reason"] == "Disabled"
