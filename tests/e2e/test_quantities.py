"""Quantities in every plugin's CRD: what the pattern lets through but no parser reads
(``1e1.5``) and what is out of range is refused at admission, naming the field; what is
valid is accepted (server-side dry run: nothing is created, no operator needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("plugin_crds")]
Kubectl = Callable[..., Any]

REDIS = ("cache.minop.dev/v1alpha1", "Redis")
MEMCACHED = ("cache.minop.dev/v1alpha1", "Memcached")
NGINX = ("web.minop.dev/v1alpha1", "NginxServer")


def apply(kubectl: Kubectl, ns: str, kind: tuple[str, str], spec: dict[str, Any]) -> Any:
    obj = {"apiVersion": kind[0], "kind": kind[1], "metadata": {"name": "q"}, "spec": spec}
    return kubectl(
        "apply", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(obj), check=False
    )


@pytest.mark.parametrize(
    ("kind", "spec", "field", "message"),
    [
        (REDIS, {"maxMemory": "1e1.5"}, "spec.maxMemory", "must be a quantity"),
        (REDIS, {"maxMemory": "-1Gi"}, "spec.maxMemory", "at least 1Mi"),
        (REDIS, {"maxMemory": "0.5"}, "spec.maxMemory", "at least 1Mi"),
        (REDIS, {"maxMemory": "1023Ki"}, "spec.maxMemory", "at least 1Mi"),
        (REDIS, {"storage": {"size": "1e1.5"}}, "spec.storage.size", "must be a quantity"),
        (
            REDIS,
            {"sentinel": {"resources": {"requests": {"cpu": "1e1.5"}}}},
            "spec.sentinel.resources.requests[cpu]",
            "must be a quantity",
        ),
        (
            REDIS,
            {"resources": {"limits": {"memory": "1e1.5"}}},
            "spec.resources.limits[memory]",
            "must be a quantity",
        ),
        (
            MEMCACHED,
            {"resources": {"limits": {"cpu": "1e1.5"}}},
            "spec.resources.limits[cpu]",
            "must be a quantity",
        ),
        (
            MEMCACHED,
            {"resources": {"requests": {"memory": "2E-0.5"}}},
            "spec.resources.requests[memory]",
            "must be a quantity",
        ),
        (
            NGINX,
            {"resources": {"requests": {"memory": "1e1.5"}}},
            "spec.resources.requests[memory]",
            "must be a quantity",
        ),
    ],
)
def test_quantities_no_parser_reads_or_out_of_range_are_refused_naming_the_field(
    namespace, kubectl, kind, spec, field, message
):
    r = apply(kubectl, namespace, kind, spec)
    assert r.returncode != 0, f"{spec} was accepted"
    assert field in r.stderr and message in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        (REDIS, {"maxMemory": "1Mi", "resources": {"limits": {"memory": "1e9"}}}),
        (REDIS, {"maxMemory": 1048576, "storage": {"size": "1.5Gi"}}),
        (REDIS, {"sentinel": {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}}),
        (MEMCACHED, {"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}),
        (NGINX, {"resources": {"requests": {"cpu": 1, "memory": "64Mi"}}}),
    ],
)
def test_valid_quantities_are_accepted(namespace, kubectl, kind, spec):
    r = apply(kubectl, namespace, kind, spec)
    assert r.returncode == 0, r.stderr
