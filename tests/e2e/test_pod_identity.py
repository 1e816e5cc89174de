"""``podSecurityContext`` in every workload plugin's CRD: whom the pods run as. Other IDs
are accepted; root, a negative group, or IDs beside ``assignedByPlatform`` are refused at
admission naming the field (server-side dry run: nothing is created)."""

from __future__ import annotations

import pytest
from test_quantities import MEMCACHED, NGINX, REDIS, apply

pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("plugin_crds")]
OPENSHIFT = {"runAsUser": 1000680000, "runAsGroup": 0, "fsGroup": 1000680000}


@pytest.mark.parametrize("kind", [REDIS, MEMCACHED, NGINX], ids=lambda k: k[1])
def test_pod_identity_is_accepted_or_refused_naming_the_field(namespace, kubectl, kind):
    for ok in (OPENSHIFT, {"assignedByPlatform": True}, {"fsGroup": 0}):
        r = apply(kubectl, namespace, kind, {"podSecurityContext": ok})
        assert r.returncode == 0, f"{ok}: {r.stderr}"
    for bad, field, message in (
        ({"runAsUser": 0}, "spec.podSecurityContext.runAsUser", "greater than or equal to 1"),
        ({"runAsGroup": -1}, "spec.podSecurityContext.runAsGroup", "greater than or equal to 0"),
        (
            {"assignedByPlatform": True, "fsGroup": 5},
            "spec.podSecurityContext.assignedByPlatform",
            "assignedByPlatform leaves runAsUser, runAsGroup and fsGroup to the platform",
        ),
    ):
        r = apply(kubectl, namespace, kind, {"podSecurityContext": bad})
        assert r.returncode != 0, f"{bad} was accepted"
        assert field in r.stderr and message in r.stderr, r.stderr
