from minop_redis import children
from minop_redis.crd import DEFINITION

from minop.crd import undocumented

SEL = {"app.kubernetes.io/instance": "r"}


def sts(**spec):
    return children.statefulset(
        "r", "ns", spec, "redis:7", SEL, SEL, claim_size="1Gi", config_hash="h", with_auth=False
    )


def test_statefulset_maps_the_spec():
    s = sts(
        replicas=3,
        podManagementPolicy="Parallel",
        updateStrategy={"type": "RollingUpdate", "partition": 2},
        pvcRetention={"whenDeleted": "Delete"},
        storage={"storageClassName": "fast"},
    )["spec"]
    assert s["replicas"] == 3 and s["serviceName"] == "r-headless"
    assert s["podManagementPolicy"] == "Parallel"
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert s["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    claim = s["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "fast"
    pod = s["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 999 and pod["securityContext"]["fsGroup"] == 999
    assert "podAntiAffinity" in pod["affinity"]  # replicas prefer different nodes


def test_on_delete_has_no_rolling_update_block():
    s = sts(updateStrategy={"type": "OnDelete"})["spec"]
    assert s["updateStrategy"] == {"type": "OnDelete"}


def test_client_service_targets_the_primary():
    svc = children.client_service("r", SEL)
    assert svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == "r-0"
    assert children.headless_service("r", SEL)["spec"]["clusterIP"] == "None"


def test_config_follows_persistence_and_memory():
    conf = children.redis_conf(
        {
            "persistence": {"appendOnly": False},
            "maxMemory": "256mb",
            "maxMemoryPolicy": "allkeys-lru",
        }
    )
    assert "appendonly no" in conf and "maxmemory 256mb" in conf
    assert "maxmemory-policy allkeys-lru" in conf


def test_every_crd_field_is_documented():
    schema = DEFINITION["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undocumented(schema) == []
