"""Redis with failover (spec.sentinel) on KWOK: the objects, Services, labels and status
the operator keeps. Failing over needs running Sentinels: test_realpods.py (kind)."""

from __future__ import annotations

import pytest
from test_redis import apply_redis, get, live_pods, operator, redis_crd, wait_ready  # noqa: F401

from minop.kit.testing import wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")
ROLE = "redis.minop.dev/role"
SENTINEL = {"enabled": True}


def endpoints(kubectl, ns: str, service: str) -> list[str]:
    out = []
    for s in get(kubectl, ns, "endpointslices")["items"]:
        if s["metadata"]["labels"].get("kubernetes.io/service-name") == service:
            out += [e["addresses"][0] for e in s.get("endpoints") or []]
    return sorted(out)


def test_sentinels_services_and_the_primary_label(namespace, kubectl):
    ns = namespace
    with operator(ns):
        spec = {"replicas": 3, "sentinel": SENTINEL, "minReplicasToWrite": 1}
        assert apply_redis(kubectl, ns, "r", **spec).returncode == 0
        wait_ready(kubectl, ns, "r")

        pod = get(kubectl, ns, "statefulset/r")["spec"]["template"]["spec"]
        sentinel = next(c for c in pod["containers"] if c["name"] == "sentinel")
        assert sentinel["ports"] == [
            {"name": "sentinel", "containerPort": 26379, "protocol": "TCP"}
        ]
        # a CPU request keeps Sentinel's timer on time (late by 2 s: TILT, no failover);
        # the API server's default, visible in the spec; no limit, which would throttle it
        requests = {"cpu": "100m", "memory": "32Mi"}
        assert get(kubectl, ns, "redis/r")["spec"]["sentinel"]["resources"] == {
            "requests": requests
        }
        assert sentinel["resources"] == {"requests": requests}
        # the peers and the quorum follow spec.replicas: in the ConfigMap, so a scale
        # restarts no pod (test_redis_scale.py)
        data = get(kubectl, ns, "configmap/r-config")["data"]
        assert data["sentinel-quorum"] == "2"  # a majority of 3
        assert data["sentinel-peers"].split() == [
            f"r-{i}.r-headless.{ns}.svc:26379" for i in range(3)
        ]
        conf = data["redis.conf"]
        # a third of downAfterMilliseconds (5 s): a cut-off primary stops taking writes
        # before the Sentinels promote another
        assert "min-replicas-to-write 1\n" in conf and "min-replicas-max-lag 1\n" in conf

        # clients: the primary only, by the role label; the Sentinels; every pod by name
        client = get(kubectl, ns, "service/r")["spec"]
        assert client["selector"][ROLE] == "master"
        assert [p["port"] for p in client["ports"]] == [6379]
        sentinels = get(kubectl, ns, "service/r-sentinel")["spec"]
        assert [p["port"] for p in sentinels["ports"]] == [26379] and ROLE not in sentinels[
            "selector"
        ]
        headless = get(kubectl, ns, "service/r-headless")["spec"]
        assert [p["port"] for p in headless["ports"]] == [6379, 26379]
        live = live_pods(kubectl, ns)
        ips = sorted(p["status"]["podIP"] for p in live.values())
        wait_for(lambda: endpoints(kubectl, ns, "r-sentinel") == ips, 30, "Sentinel endpoints")

        # KWOK runs no Sentinel: nobody is named primary, so no pod gets the label and the
        # client Service has no endpoint (never a guess that could be a second primary)
        def status():
            return get(kubectl, ns, "redis/r").get("status") or {}

        wait_for(lambda: len(status().get("members") or []) == 3, 30, "status.members")
        assert [m["role"] for m in status()["members"]] == ["unknown"] * 3
        assert status().get("primary") is None
        assert all(ROLE not in p["metadata"].get("labels", {}) for p in live.values())
        assert endpoints(kubectl, ns, "r") == []

        # a pod carrying the label is what the Service selects and status reports
        kubectl("label", "pod", "r-1", "-n", ns, f"{ROLE}=master")
        wait_for(lambda: status().get("primary") == "r-1", 30, "status.primary")
        ip = live["r-1"]["status"]["podIP"]
        wait_for(lambda: endpoints(kubectl, ns, "r") == [ip], 30, "client Service -> r-1")
        table = kubectl("get", "rds", "r", "-n", ns).stdout.splitlines()
        assert "PRIMARY" in table[0].split() and "r-1" in table[1].split()


@pytest.mark.apionly
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"replicas": 3, "minReplicasToWrite": 3}, "spec.minReplicasToWrite"),
        ({"minReplicasMaxLag": 0}, "spec.minReplicasMaxLag"),
        ({"sentinel": {"enabled": True, "quorum": 0}}, "spec.sentinel.quorum"),
        ({"sentinel": {"downAfterMilliseconds": 10}}, "spec.sentinel.downAfterMilliseconds"),
    ],
)
def test_invalid_failover_settings_are_refused_naming_the_field(namespace, kubectl, spec, field):
    r = apply_redis(kubectl, namespace, "bad", **spec)
    assert r.returncode != 0 and field in r.stderr, r.stderr
