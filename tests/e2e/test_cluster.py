"""The test cluster is real: scheduling, StatefulSet ordering, PVCs, RBAC, PodSecurity, audit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import REPO

from minop.testing import wait_for

AUDIT = REPO / ".cluster" / "logs" / "audit.log"
LOCAL = os.environ.get("MINOP_CLUSTER", "local") == "local"


def apply(kubectl, ns, obj):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def get(kubectl, ns, *what):
    return json.loads(kubectl("get", *what, "-n", ns, "-o", "json").stdout)


def pod_template(name):
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
    }


def pod_ready(pod):
    conds = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_deployment_reaches_three_available_replicas(namespace, kubectl):
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template("web"),
            },
        },
    )
    kubectl(
        "wait",
        "-n",
        namespace,
        "--for=jsonpath={.status.availableReplicas}=3",
        "deployment/web",
        "--timeout=60s",
    )


def statefulset(name, replicas):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def test_statefulset_ordered_pvcs_bound_and_scale_down_from_the_top(namespace, kubectl, watch):
    ns = namespace
    apply(
        kubectl,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 6379}]},
        },
    )
    pods = watch("pods", "-n", ns)
    wait_for(lambda: pods._thread.is_alive(), 5, "watch running")
    time.sleep(0.5)  # let the watch establish before the first pod can appear
    apply(kubectl, ns, statefulset("db", 3))
    kubectl(
        "wait",
        "-n",
        ns,
        "--for=jsonpath={.status.readyReplicas}=3",
        "statefulset/db",
        "--timeout=90s",
    )
    wait_for(lambda: len(set(pods.names("ADDED"))) == 3, 10, "three ADDED events")
    assert pods.names("ADDED") == ["db-0", "db-1", "db-2"]
    # OrderedReady: pod i+1 appears only after pod i was Ready
    for i in (1, 2):
        ready_prev = pods.first_index(
            lambda t, o, i=i: o["metadata"]["name"] == f"db-{i - 1}" and pod_ready(o)
        )
        added = pods.first_index(
            lambda t, o, i=i: t == "ADDED" and o["metadata"]["name"] == f"db-{i}"
        )
        assert ready_prev is not None and added is not None and ready_prev < added
    svc = get(kubectl, ns, "service/db")
    assert svc["spec"]["clusterIP"] == "None"

    def bound():
        pvcs = get(kubectl, ns, "pvc")["items"]
        return sorted(p["metadata"]["name"] for p in pvcs if p["status"].get("phase") == "Bound")

    wait_for(lambda: bound() == ["data-db-0", "data-db-1", "data-db-2"], 60, "3 PVCs Bound")

    kubectl("scale", "-n", ns, "statefulset/db", "--replicas=1")
    wait_for(lambda: len(pods.names("DELETED")) == 2, 60, "two pods deleted")
    assert pods.names("DELETED") == ["db-2", "db-1"]
    assert bound() == ["data-db-0", "data-db-1", "data-db-2"]  # PVCs stay


def test_service_account_without_rbac_is_forbidden(namespace, kubectl, kubeconfig):
    import ssl
    import urllib.error
    import urllib.request

    import yaml

    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    server = cfg["clusters"][0]["cluster"]["server"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(
        f"{server}/api/v1/namespaces/kube-system/secrets",
        headers={"Authorization": f"Bearer {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert err.value.code == 403
    # the token itself is valid: the same identity may ask who it is
    assert (
        "nobody"
        in kubectl(
            "auth",
            "whoami",
            f"--token={token}",
            "-o",
            "json",
            "--kubeconfig",
            "/dev/null",
            f"--server={server}",
            "--insecure-skip-tls-verify",
        ).stdout
    )


def test_privileged_pod_refused_in_restricted_namespace(namespace, kubectl):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "priv"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    r = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert r.returncode != 0
    assert "violates PodSecurity" in r.stderr and "privileged" in r.stderr


@pytest.mark.skipif(not LOCAL or not AUDIT.exists(), reason="the local cluster's audit log")
def test_audit_log_records_writes_with_user_agent(namespace, kubectl):
    kubectl("create", "configmap", "audited", "-n", namespace)

    def entry():
        for line in AUDIT.read_text().splitlines():
            e = json.loads(line)
            ref = e.get("objectRef") or {}
            if ref.get("namespace") == namespace and ref.get("name") == "audited":
                return e
        return None

    e = wait_for(entry, 10, "audit entry")
    assert e["verb"] == "create" and e["user"]["username"] == "minop-admin"
    assert e["userAgent"].startswith("kubectl")
