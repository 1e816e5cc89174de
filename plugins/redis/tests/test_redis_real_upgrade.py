"""An operator upgrade updates the ConfigMap with the scripts at once, the pods only
when the StatefulSet rolls them (a partition or OnDelete may hold that for days): a pod
an earlier plugin version made must keep working under the new scripts."""

from __future__ import annotations

import pytest
from redis_pod import wait
from redis_pods import FIRST
from test_redis_real_failover import three_with_sentinels


def test_an_earlier_versions_pod_restarts_and_is_recreated_under_the_new_scripts(
    make_cluster, server
):
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    old = c.pods[2]
    old.earlier = True
    c.primary.cli("set", "k", "v", password=FIRST)
    old.crash()  # its server restarts: init.sh again, with the old environment
    wait(lambda: old.probe(), f"{old.name} ready again after its restart", 30)
    old.recreate()  # its init container: the old environment, no data volume
    wait(lambda: c.replicating(FIRST), "replication with the earlier pod back", 30)
    assert old.cli("get", "k", password=FIRST).strip() == "v"
