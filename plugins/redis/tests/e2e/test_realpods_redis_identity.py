"""A Redis under the IDs OpenShift's restricted-v2 SCC assigns a namespace (a UID from
its range, group 0, that fsGroup) runs on kind with real pods: the kubelet, the image
and the volumes' group ownership (the data volume, the Secrets) let it start as that
user and replicate. With failover (the Sentinels, record.sh, the hand-over) on local
processes, and a crash failover: test_redis_real_sentinel_ids.py."""

from __future__ import annotations

import pytest
from test_redis_realpods import redis_with_password

from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
PW = "identity-e2e"
IDS = {"runAsUser": 1000680000, "runAsGroup": 0, "fsGroup": 1000680000}


def test_redis_runs_under_an_assigned_uid(namespace, kubectl, client):
    ns = namespace
    redis_with_password(kubectl, ns, PW, replicas=2, podSecurityContext=IDS)
    for i in range(2):
        ids = kubectl("exec", "-n", ns, f"r-{i}", "-c", "redis", "--", "id").stdout.strip()
        assert ids.startswith("uid=1000680000 gid=0"), f"r-{i}: {ids}"
        assert "1000680000" in ids.split("groups=")[1], f"r-{i}: {ids}"

    def cli(i: int, *args: str) -> str:
        host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
        return client("timeout", "5", "redis-cli", "-h", host, "-a", PW, "--no-auth-warning",
                      *args).strip()  # fmt: skip

    assert cli(0, "SET", "k", "v") == "OK"
    wait_for(lambda: cli(1, "GET", "k") == "v", 30, "k on r-1", 1)
    # the data volume: written by that user (the append-only files)
    listing = kubectl("exec", "-n", ns, "r-1", "-c", "redis", "--", "ls", "-ln", "/data").stdout
    assert "1000680000" in listing, listing
