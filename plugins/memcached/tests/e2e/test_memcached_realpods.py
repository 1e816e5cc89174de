"""What only pods that really run can prove for Memcached (kind; skipped with "needs
real pods" on KWOK): it runs with the configured memory and connection limits.
The operator itself runs in-cluster from its image,
installed from config/ (minop.kit.e2e.incluster, the ``operator`` fixture), one copy per
test namespace.
"""

from __future__ import annotations

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import apply, first_through_service, run_in, wait

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]


def test_memcached_runs_with_the_configured_memory_and_connection_limits(
    namespace, kubectl, operator
):
    ns = namespace
    apply(
        kubectl,
        ns,
        "cache.minop.dev/v1alpha1",
        "Memcached",
        "mc",
        size=2,
        memoryLimitMB=48,
        maxConnections=321,
        resources={"limits": {"memory": "128Mi"}},
    )
    wait(kubectl, ns, "memcached/mc", 180)
    pods = get(kubectl, ns, "memcached/mc")["status"]["nodes"]
    assert len(pods) == 2
    # `stats` asked from the other pod, to each pod by its IP and through the Service
    script = 'exec 3<>"/dev/tcp/$0/11211"; printf "stats\\r\\nquit\\r\\n" >&3; timeout 5 cat <&3'
    targets = [get(kubectl, ns, f"pod/{p}")["status"]["podIP"] for p in pods]
    for target in [*targets, f"mc.{ns}.svc.cluster.local"]:
        stats = first_through_service(
            lambda target=target: run_in(
                kubectl, ns, pods[1], "timeout", "10", "bash", "-c", script, target
            ),
            lambda out: "STAT" in out,
            f"stats from {target}",
        )
        assert "STAT limit_maxbytes 50331648" in stats, stats  # 48 MiB
        assert "STAT max_connections 321" in stats, stats
