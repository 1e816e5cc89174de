"""Builders of the Redis children and the CRD: pure functions, no cluster."""

from __future__ import annotations

from typing import Any

from minop_redis import children, config, services
from minop_redis.children import Instance
from minop_redis.crd import DEFINITION, EXAMPLE

from minop.kit.crd import undocumented

SEL = {"app.kubernetes.io/instance": "r", "app.kubernetes.io/managed-by": "minop"}
LABELS = {**SEL, "app.kubernetes.io/part-of": "redis"}


def inst(**spec: Any) -> Instance:
    return Instance("r", "ns", spec, LABELS, SEL, "redis:7.2.5")


def sts(size: str = "1Gi", storage_class: str | None = None, **spec: Any) -> dict[str, Any]:
    return children.statefulset(
        inst(**spec), config_hash="c", auth_hash="a", claim_size=size, storage_class=storage_class
    )


def test_statefulset_maps_the_spec() -> None:
    s = sts(
        replicas=3,
        podManagementPolicy="Parallel",
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        pvcRetention={"whenDeleted": "Delete"},
        revisionHistoryLimit=4,
    )["spec"]
    assert s["replicas"] == 3 and s["serviceName"] == "r-headless"
    assert s["podManagementPolicy"] == "Parallel" and s["revisionHistoryLimit"] == 4
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert s["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    assert s["selector"] == {"matchLabels": SEL}
    template = s["template"]
    assert template["metadata"]["labels"] == LABELS  # the pods are observed by these
    assert template["metadata"]["annotations"] == {
        children.CONFIG_HASH: "c",
        children.AUTH_HASH: "a",
    }


def test_defaults_and_on_delete() -> None:
    s = sts()["spec"]
    assert s["replicas"] == 1 and s["podManagementPolicy"] == "OrderedReady"
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert s["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert sts(updateStrategy={"type": "OnDelete"})["spec"]["updateStrategy"] == {
        "type": "OnDelete"
    }


def test_claim_template_is_canonical_and_labelled() -> None:
    claim = sts(size="1024Mi", storage_class="fast")["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"] == {"name": "data", "labels": LABELS}  # PVCs get observed
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"  # as the API returns it
    assert claim["spec"]["storageClassName"] == "fast"
    assert "storageClassName" not in sts()["spec"]["volumeClaimTemplates"][0]["spec"]


def test_pod_security_is_restricted_and_numeric() -> None:
    pod = sts()["spec"]["template"]["spec"]
    sec = pod["securityContext"]
    assert sec["runAsNonRoot"] and sec["runAsUser"] == 999 and sec["fsGroup"] == 999
    assert sec["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    for c in pod["initContainers"] + pod["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    run = next(v for v in pod["volumes"] if v["name"] == "run")
    assert run["emptyDir"]["medium"] == "Memory"  # the generated config holds masterauth


def test_containers_probes_and_mounts() -> None:
    pod = sts(resources={"limits": {"cpu": "0.5", "memory": "1024Mi"}})["spec"]["template"]["spec"]
    init, main = pod["initContainers"][0], pod["containers"][0]
    assert init["command"] == ["sh", f"{children.CONFIG_DIR}/init.sh"]
    assert main["command"][:2] == ["sh", "-c"]  # redis-server or valkey-server
    assert main["command"][-1] == f"{children.RUN_DIR}/redis.conf"
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["REDIS_PRIMARY_HOST"] == "r-0.r-headless.ns.svc"  # stable DNS of pod 0
    probes = {p: main[p]["exec"]["command"][-1] for p in ("readinessProbe", "livenessProbe")}
    assert "grep -qx PONG" in probes["readinessProbe"]  # strict
    assert "LOADING" in probes["livenessProbe"]  # a loading replica is alive
    assert main["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"}}  # canonical
    assert init["resources"] == main["resources"]
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert mounts == {
        "data": "/data",
        "run": "/run/redis",
        "auth": "/etc/redis-auth",
        "config": "/etc/redis",  # init.sh, run again on every start
    }
    secret = next(v for v in pod["volumes"] if v["name"] == "auth")["secret"]
    assert secret == {"secretName": "r-auth", "defaultMode": 0o440}


def test_the_startup_budget_grows_with_the_volume() -> None:
    def budget(size: str) -> int:
        probe = sts(size=size)["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
        return int(probe["periodSeconds"] * probe["failureThreshold"])

    assert budget("64Mi") >= 300  # never less than 5 minutes
    assert budget("10Gi") >= 300 + 10 * 120 > budget("1Gi")


def test_replicas_prefer_different_nodes_unless_the_user_says_otherwise() -> None:
    pod = sts()["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == {"matchLabels": SEL}
    mine = {"nodeAffinity": {"x": 1}}
    pod = sts(affinity=mine, tolerations=[{"key": "k"}], priorityClassName="high")["spec"]
    assert pod["template"]["spec"]["affinity"] == mine
    assert pod["template"]["spec"]["tolerations"] == [{"key": "k"}]
    assert pod["template"]["spec"]["priorityClassName"] == "high"


def test_services_point_at_every_pod_and_at_the_primary() -> None:
    headless = services.headless_service(inst())
    assert headless["metadata"]["name"] == "r-headless"
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"] == SEL
    assert headless["spec"]["publishNotReadyAddresses"] is True
    client = services.client_service(inst())
    assert client["spec"]["selector"] == {**SEL, "statefulset.kubernetes.io/pod-name": "r-0"}


def test_redis_conf_follows_persistence_and_memory() -> None:
    conf = config.redis_conf(
        inst(persistence={"appendOnly": False}, maxMemory="256Mi", maxMemoryPolicy="allkeys-lru")
    )
    assert "appendonly no" in conf and f"maxmemory {256 << 20}" in conf
    assert "maxmemory-policy allkeys-lru" in conf
    assert f"maxmemory {3 << 19}\n" in config.redis_conf(inst(maxMemory="1.5Mi"))
    assert "maxmemory 1048577\n" in config.redis_conf(inst(maxMemory="1048576.5"))  # up
    conf = config.redis_conf(inst())
    assert "appendonly yes" in conf
    assert "appenddirname" not in conf  # 7.0 and later only: init.sh adds it
    assert "maxmemory " not in conf and "maxmemory-policy noeviction" in conf
    data = config.configmap(inst())["data"]
    assert set(data) == {"redis.conf", "init.sh", "client-commands"}


def test_a_primary_with_replicas_needs_one_by_default_to_take_writes() -> None:
    """min-replicas-to-write 1 by default where there are replicas: a primary cut off
    from every replica stops taking writes that a failover would lose."""
    assert "min-replicas-to-write 1\n" in config.redis_conf(inst(replicas=2))
    assert "min-replicas-to-write" not in config.redis_conf(inst(replicas=1))
    assert "min-replicas-to-write" not in config.redis_conf(inst(replicas=3, minReplicasToWrite=0))
    assert "min-replicas-to-write 2\n" in config.redis_conf(inst(replicas=3, minReplicasToWrite=2))


def test_with_failover_a_cut_off_primary_stops_taking_writes_before_a_replica_is_promoted() -> None:
    """min-replicas-max-lag well below downAfterMilliseconds by default: the old primary
    counts no good replica (and refuses writes) before the Sentinels promote another."""
    failover = {"enabled": True}
    assert "min-replicas-max-lag 1\n" in config.redis_conf(inst(replicas=3, sentinel=failover))
    slow = {"enabled": True, "downAfterMilliseconds": 30000}
    assert "min-replicas-max-lag 10\n" in config.redis_conf(inst(replicas=3, sentinel=slow))
    assert "min-replicas-max-lag 10\n" in config.redis_conf(inst(replicas=3))  # no failover
    given = config.redis_conf(inst(replicas=3, sentinel=failover, minReplicasMaxLag=4))
    assert "min-replicas-max-lag 4\n" in given


def test_crd_is_documented_and_has_scale_and_short_name() -> None:
    version = DEFINITION["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert undocumented(schema) == []
    assert DEFINITION["spec"]["names"]["shortNames"] == ["rds"]
    assert DEFINITION["spec"]["names"]["plural"] == "redises"
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    spec = schema["properties"]["spec"]
    rules = " ".join(r["rule"] for r in spec["x-kubernetes-validations"])
    assert "oldSelf.podManagementPolicy" in rules and "oldSelf.storage.storageClassName" in rules
    assert "oldSelf.storage.size" in rules
    assert EXAMPLE["spec"] == {"replicas": 3, "storage": {"size": "1Gi"}}


def test_pod_management_defaults_to_parallel_with_failover_and_keeps_the_live_one() -> None:
    """Parallel with sentinel (a cold start follows the pods' records only then), and
    once created the StatefulSet's own (immutable: enabling sentinel later keeps it);
    init.sh is told which."""
    failover = {"replicas": 3, "sentinel": {"enabled": True}}

    def policies(s: dict[str, Any]) -> tuple[str, str]:
        env = {
            e["name"]: e.get("value") for e in s["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        return s["spec"]["podManagementPolicy"], env["REDIS_POD_MANAGEMENT"]

    assert policies(sts(**failover)) == ("Parallel", "Parallel")
    live = children.statefulset(
        inst(**failover), config_hash="c", auth_hash="a", claim_size="1Gi",
        storage_class=None, policy="OrderedReady",
    )  # fmt: skip
    assert policies(live) == ("OrderedReady", "OrderedReady")
    assert sts(podManagementPolicy="OrderedReady", **failover)["spec"]["podManagementPolicy"] == (
        "OrderedReady"
    )


def test_scaling_changes_nothing_a_running_pod_runs() -> None:
    """kubectl scale restarts no pod: with failover the pod template and the ConfigMap
    part the config hash covers are the same at 3, 4 and 5 replicas (the Sentinel peers
    and the quorum are in the ConfigMap, read when the scripts run)."""
    shapes = set()
    for n in (3, 4, 5):
        i = inst(replicas=n, sentinel={"enabled": True})
        template = sts(replicas=n, sentinel={"enabled": True})["spec"]["template"]
        shapes.add((repr(template), config.config_hash(config.configmap(i)["data"])))
        assert config.configmap(i)["data"]["sentinel-peers"].split() == [
            f"r-{k}.r-headless.ns.svc:26379" for k in range(n)
        ]
        assert config.configmap(i)["data"]["sentinel-quorum"] == str(n // 2 + 1)
    assert len(shapes) == 1


def test_network_policy_admits_the_clients_the_pods_and_the_operator(monkeypatch) -> None:
    """Named clients reach Redis and the Sentinels; the pods each other; the operator's
    pods (in the namespace it runs in) both ports; nobody else. Outside a pod the
    operator has no rule (it reaches no pod IP through a policy anyway)."""
    from minop.kit import netpol

    web = {"podSelector": {"matchLabels": {"app": "web"}}}
    both = [{"protocol": "TCP", "port": 6379}, {"protocol": "TCP", "port": 26379}]
    spec = {"replicas": 3, "sentinel": {"enabled": True}, "networkPolicy": {"from": [web]}}
    monkeypatch.setattr(netpol, "pod_namespace", lambda: "minop-system")
    policy = services.network_policy(inst(**spec))
    assert policy["spec"]["podSelector"] == {"matchLabels": SEL}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    operator = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "minop-system"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "minop"}},
    }
    assert policy["spec"]["ingress"] == [
        {"from": [web], "ports": both},
        {"from": [{"podSelector": {"matchLabels": SEL}}], "ports": both},
        {"from": [operator], "ports": both},
    ]
    monkeypatch.setattr(netpol, "pod_namespace", lambda: None)
    nobody = services.network_policy(inst(replicas=1, networkPolicy={}))["spec"]["ingress"]
    assert nobody == [{"from": [{"podSelector": {"matchLabels": SEL}}], "ports": both[:1]}]


def test_clients_get_every_command_but_the_administration_unless_told() -> None:
    default = config.configmap(inst())["data"]
    assert default["client-commands"] == "+@all -@admin +role"
    custom = config.configmap(inst(auth={"clientCommands": " +@all   -debug "}))["data"]
    assert custom["client-commands"] == "+@all -debug"  # one space: init.sh compares it
    assert config.config_hash(custom) != config.config_hash(default)  # a change rolls the pods
    # the default user's line takes the ConfigMap's rules; the Sentinels' stays discovery
    assert 'default_user "$clients"' in default["init.sh"]
    assert 'default_user "$sentinel_clients"' in default["init.sh"]
