"""Redis specs the API server refuses, naming the field; storage growth expands the PVCs
(the StatefulSet's claim template is immutable) and shrinking is refused; the operator
works with only the least-privilege RBAC minop derives for the plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_redis import (
    apply_redis,
    condition,
    get,
    operator,
    patch_redis,
    pvcs,
    redis_crd,  # noqa: F401 (the fixture)
    redis_hooks,
    wait_ready,
)

from minop.kit.testing import OperatorRunner, wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")


@pytest.mark.apionly
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"replicas": -1}, "spec.replicas"),
        ({"podManagementPolicy": "Sometimes"}, "spec.podManagementPolicy"),
        ({"updateStrategy": {"type": "Canary"}}, "spec.updateStrategy.type"),
        (
            {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
            "spec.updateStrategy.rollingUpdate",
        ),
        ({"updateStrategy": {"rollingUpdate": {"partition": -1}}}, "partition"),
        ({"pvcRetention": {"whenScaled": "Keep"}}, "spec.pvcRetention.whenScaled"),
        ({"storage": {"size": "lots"}}, "spec.storage.size"),
        ({"storage": {"size": "0"}}, "spec.storage.size"),
        ({"maxMemoryPolicy": "random"}, "spec.maxMemoryPolicy"),
        ({"passwordSecretRef": {"key": "password"}}, "spec.passwordSecretRef.name"),
    ],
)
def test_invalid_spec_is_rejected_naming_the_field(namespace, kubectl, spec, field):
    r = apply_redis(kubectl, namespace, "bad", **spec)
    assert r.returncode != 0 and field in r.stderr, r.stderr
    assert get(kubectl, namespace, "redis/bad", missing_ok=True) is None


def test_immutable_fields_and_storage_growth(namespace, kubectl, expandable_storage_class):
    ns = namespace
    storage = {"size": "1Gi", "storageClassName": expandable_storage_class}
    with operator(ns):
        r = apply_redis(kubectl, ns, "r", replicas=2, storage=storage)
        assert r.returncode == 0, r.stderr
        wait_ready(kubectl, ns, "r")
        wait_for(lambda: pvcs(kubectl, ns) == ["data-r-0", "data-r-1"], 60, "PVCs Bound")

        for spec, field, message in (
            ({"podManagementPolicy": "OrderedReady"}, "spec.podManagementPolicy", "immutable"),
            (
                {"storage": {"storageClassName": "other"}},
                "spec.storage.storageClassName",
                "immutable",
            ),
            ({"storage": {"size": "512Mi"}}, "spec.storage.size", "cannot shrink"),
        ):
            r = patch_redis(kubectl, ns, "r", spec)
            assert r.returncode != 0 and field in r.stderr and message in r.stderr, r.stderr

        # growing: the existing claims are expanded, the template stays as created
        assert patch_redis(kubectl, ns, "r", {"storage": {"size": "2Gi"}}).returncode == 0

        def requested():
            return {
                p["metadata"]["name"]: p["spec"]["resources"]["requests"]["storage"]
                for p in get(kubectl, ns, "pvc")["items"]
            }

        grown = {"data-r-0": "2Gi", "data-r-1": "2Gi"}
        wait_for(lambda: requested() == grown, 30, "PVCs expanded")
        claim = get(kubectl, ns, "statefulset/r")["spec"]["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        events = [
            e for e in get(kubectl, ns, "events")["items"] if e["reason"] == "ExpandingVolume"
        ]
        assert {e["message"].split(":")[0] for e in events} == set(grown)
        # a new pod's claim starts from the template and is grown too
        assert patch_redis(kubectl, ns, "r", {"replicas": 3}).returncode == 0
        wait_for(lambda: requested().get("data-r-2") == "2Gi", 60, "the new PVC expanded")
        wait_ready(kubectl, ns, "r")
        assert condition(kubectl, ns, "r", "Degraded")["status"] == "False"


def test_max_memory_above_the_memory_limit_is_reported(namespace, kubectl):
    ns = namespace
    with operator(ns):
        limits = {"limits": {"memory": "256Mi"}}
        r = apply_redis(kubectl, ns, "r", maxMemory="1Gi", resources=limits)
        assert r.returncode == 0, r.stderr
        wait_for(
            lambda: (condition(kubectl, ns, "r", "Degraded") or {}).get("status") == "True",
            30,
            "Degraded",
        )
        assert "spec.maxMemory" in condition(kubectl, ns, "r", "Degraded")["message"]
        assert patch_redis(kubectl, ns, "r", {"maxMemory": "200Mi"}).returncode == 0
        wait_for(lambda: condition(kubectl, ns, "r", "Degraded")["status"] == "False", 30, "healed")
        config = get(kubectl, ns, "configmap/r-config")["data"]["redis.conf"]
        assert f"maxmemory {200 << 20}" in config


def test_the_derived_least_privilege_rbac_is_enough(
    namespace, kubectl, kubeconfig, tmp_path, expandable_storage_class
):
    """The operator as a ServiceAccount with only the Role `minop rbac` derives for
    this namespace: creating, growing storage (PVC patch; StorageClasses cannot be
    read through a namespaced Role) and rotating the password all work."""
    ns = namespace
    kubectl("create", "serviceaccount", "op", "-n", ns)
    args = ["--plugin", "redis", "-n", ns, "--operator-namespace", ns, "--service-account", "op"]
    rbac = subprocess.run(
        [sys.executable, "-m", "minop", "rbac", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kubectl("apply", "-f", "-", input=rbac)
    token = kubectl("create", "token", "op", "-n", ns, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "op", "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": cluster["name"], "user": "op"}}],
        "current-context": "op",
    }
    path = tmp_path / "op.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    kubectl("create", "secret", "generic", "pw", "-n", ns, "--from-literal=password=one")
    with OperatorRunner({"redis": redis_hooks}, namespaces=[ns], kubeconfig=str(path)):
        ref = {"name": "pw"}
        storage = {"size": "1Gi", "storageClassName": expandable_storage_class}
        r = apply_redis(kubectl, ns, "r", replicas=2, passwordSecretRef=ref, storage=storage)
        assert r.returncode == 0, r.stderr
        wait_ready(kubectl, ns, "r")
        wait_for(lambda: pvcs(kubectl, ns) == ["data-r-0", "data-r-1"], 60, "PVCs Bound")
        assert patch_redis(kubectl, ns, "r", {"storage": {"size": "2Gi"}}).returncode == 0
        wait_for(
            lambda: (
                {
                    p["spec"]["resources"]["requests"]["storage"]
                    for p in get(kubectl, ns, "pvc")["items"]
                }
                == {"2Gi"}
            ),
            30,
            "PVCs expanded by the ServiceAccount",
        )
        before = get(kubectl, ns, "statefulset/r")["status"]["updateRevision"]
        kubectl("patch", "secret/pw", "-n", ns, "-p", '{"stringData":{"password":"two"}}')
        wait_for(
            lambda: get(kubectl, ns, "statefulset/r")["status"]["updateRevision"] != before,
            30,
            "the rotation's roll",
        )
        wait_ready(kubectl, ns, "r")
        assert condition(kubectl, ns, "r", "Degraded")["status"] == "False"
