"""Redis production knobs on KWOK: the read-only replicas Service, the
PodDisruptionBudget, the NetworkPolicy, persistence and extra directives in the ConfigMap, and the
directives the operator owns refused at admission."""

from __future__ import annotations

import json

import pytest
from test_redis import apply_redis, get, live_pods, operator, redis_crd, wait_ready  # noqa: F401
from test_redis_failover import ROLE, endpoints

from minop.kit.testing import wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")


def test_replicas_service_budget_and_config(namespace, kubectl):
    ns = namespace
    spec = {
        "replicas": 3,
        "podDisruptionBudget": {"maxUnavailable": 2},
        "persistence": {"appendFsync": "always", "save": [{"seconds": 60, "changes": 10}]},
        "config": {"notify-keyspace-events": "Ex"},
    }
    with operator(ns):
        assert apply_redis(kubectl, ns, "r", **spec).returncode == 0
        wait_ready(kubectl, ns, "r")
        # pod 0 is the primary (no failover): the others are the replicas Service's
        wait_for(
            lambda: (
                {n: p["metadata"]["labels"].get(ROLE) for n, p in live_pods(kubectl, ns).items()}
                == {"r-0": "master", "r-1": "replica", "r-2": "replica"}
            ),
            30,
            "role labels",
        )
        live = live_pods(kubectl, ns)
        want = sorted(live[n]["status"]["podIP"] for n in ("r-1", "r-2"))
        wait_for(lambda: endpoints(kubectl, ns, "r-replicas") == want, 30, "replicas Service")
        assert get(kubectl, ns, "pdb/r")["spec"]["maxUnavailable"] == 2
        conf = get(kubectl, ns, "configmap/r-config")["data"]["redis.conf"]
        assert "appendfsync always\n" in conf and "save 60 10\n" in conf
        assert "notify-keyspace-events Ex\n" in conf
        # the config edited by hand (another field manager) is put back
        tampered = {"data": {"redis.conf": "protected-mode no\n"}}
        kubectl(
            "patch",
            "configmap/r-config",
            "-n",
            ns,
            "--field-manager=intruder",
            "--type=merge",
            "-p",
            json.dumps(tampered),
        )
        wait_for(
            lambda: get(kubectl, ns, "configmap/r-config")["data"]["redis.conf"] == conf,
            20,
            "redis.conf restored",
        )

        # no budget when asked for none; no NetworkPolicy until asked for one
        assert get(kubectl, ns, "networkpolicy/r", missing_ok=True) is None
        web = {"podSelector": {"matchLabels": {"app": "web"}}}
        patch = {
            "spec": {"podDisruptionBudget": {"enabled": False}, "networkPolicy": {"from": [web]}}
        }
        kubectl("patch", "redis/r", "-n", ns, "--type=merge", "-p", json.dumps(patch))
        wait_for(lambda: get(kubectl, ns, "pdb/r", missing_ok=True) is None, 30, "PDB deleted")
        policy = wait_for(
            lambda: get(kubectl, ns, "networkpolicy/r", missing_ok=True), 30, "NetworkPolicy"
        )
        # the named clients, and the pods each other (the operator runs outside a pod here)
        assert [rule["from"] for rule in policy["spec"]["ingress"]] == [
            [web],
            [{"podSelector": {"matchLabels": policy["spec"]["podSelector"]["matchLabels"]}}],
        ]
        kubectl("patch", "redis/r", "-n", ns, "--type=json",
                "-p", '[{"op": "remove", "path": "/spec/networkPolicy"}]')  # fmt: skip
        wait_for(
            lambda: get(kubectl, ns, "networkpolicy/r", missing_ok=True) is None,
            30,
            "NetworkPolicy deleted",
        )


@pytest.mark.apionly
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"maxmemory": "1gb"}, "the operator sets this directive"),
        ({"replicaof": "evil 6379"}, "the operator sets this directive"),
        ({"tls-port": "6380"}, "the operator sets this directive"),
        ({"Hz": "10"}, "lower-case words"),
        ({"hz": "10\nrequirepass x"}, "one line"),
    ],
)
def test_owned_or_malformed_directives_are_refused_naming_the_field(
    namespace, kubectl, config, message
):
    r = apply_redis(kubectl, namespace, "bad", config=config)
    assert r.returncode != 0 and "spec.config" in r.stderr and message in r.stderr, r.stderr
