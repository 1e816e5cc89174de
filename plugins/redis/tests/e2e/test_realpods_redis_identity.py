"""A Redis with failover under the IDs OpenShift's restricted-v2 SCC assigns a namespace
(a UID from its range, group 0, that fsGroup) runs on kind with real pods: every
container runs as that user, the pods replicate and the Sentinels agree. The same on
local processes, with a crash failover: test_redis_real_sentinel_ids.py."""

from __future__ import annotations

import pytest
from test_redis_realpods import redis_with_password

from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
PW = "identity-e2e"
IDS = {"runAsUser": 1000680000, "runAsGroup": 0, "fsGroup": 1000680000}


def test_redis_with_failover_runs_under_an_assigned_uid(namespace, kubectl, client):
    ns = namespace
    redis_with_password(
        kubectl, ns, PW, replicas=3, sentinel={"enabled": True}, podSecurityContext=IDS
    )
    for i in range(3):
        for container in ("redis", "sentinel"):
            ids = kubectl("exec", "-n", ns, f"r-{i}", "-c", container, "--", "id").stdout.strip()
            assert ids.startswith("uid=1000680000 gid=0"), f"r-{i}/{container}: {ids}"
            assert "1000680000" in ids.split("groups=")[1], f"r-{i}/{container}: {ids}"

    def cli(i: int, *args: str, port: str = "6379") -> str:
        host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
        return client(
            "timeout", "5", "redis-cli", "-h", host, "-p", port, "-a", PW, "--no-auth-warning",
            *args,
        ).strip()  # fmt: skip

    primary = next(i for i in range(3) if "role:master" in cli(i, "INFO", "replication"))
    assert cli(primary, "SET", "k", "v") == "OK"
    for i in range(3):
        wait_for(lambda i=i: cli(i, "GET", "k") == "v", 30, f"k on r-{i}", 1)

    def sentinels_agree() -> bool:
        views = {cli(i, "SENTINEL", "get-master-addr-by-name", "r", port="26379") for i in range(3)}
        return len(views) == 1 and f"r-{primary}." in views.pop()

    wait_for(sentinels_agree, 60, "every Sentinel naming the primary", 1)
