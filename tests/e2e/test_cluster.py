"""The test cluster is real: scheduling, StatefulSet ordering, PVCs, RBAC, PodSecurity, audit.

Cluster-agnostic (KUBECONFIG); only the audit test needs the local control plane.
"""

from __future__ import annotations

import ipaddress
import json
import uuid

import pytest

from minop.kit.e2e.api import ApiError
from minop.kit.e2e.fixtures import RUNNABLE_IMAGE
from minop.kit.testing import wait_for


def apply(kubectl, ns, obj):
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def get(kubectl, ns, *what):
    return json.loads(kubectl("get", *what, "-n", ns, "-o", "json").stdout)


def pod_template(name):
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": RUNNABLE_IMAGE}]},
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
    pods = get(kubectl, namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3 and all(p["spec"].get("nodeName") for p in pods)
    # every pod has an IP, and none from the service range (10.0.0.0/24)
    ips = [ipaddress.ip_address(p["status"]["podIP"]) for p in pods]
    assert len(set(ips)) == 3
    assert not any(ip in ipaddress.ip_network("10.0.0.0/24") for ip in ips)


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
    pods = watch(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=db")
    apply(kubectl, ns, statefulset("db", 3))
    pods.wait(
        lambda evs: (
            {o["metadata"]["name"] for t, o in evs if t != "DELETED" and pod_ready(o)}
            == {"db-0", "db-1", "db-2"}
        ),
        90,
        "3 Ready pods",
    )
    assert pods.names("ADDED") == ["db-0", "db-1", "db-2"]
    # OrderedReady: pod i+1 is created only once pod i is Ready
    for i in (1, 2):
        ready_prev = pods.first_index(
            lambda t, o, i=i: o["metadata"]["name"] == f"db-{i - 1}" and pod_ready(o)
        )
        added = pods.first_index(
            lambda t, o, i=i: t == "ADDED" and o["metadata"]["name"] == f"db-{i}"
        )
        assert ready_prev is not None and added is not None and ready_prev < added, pods.events
    kubectl(
        "wait",
        "-n",
        ns,
        "--for=jsonpath={.status.readyReplicas}=3",
        "statefulset/db",
        "--timeout=60s",
    )

    svc = get(kubectl, ns, "service/db")
    assert svc["spec"]["clusterIP"] == "None"

    def bound():
        pvcs = get(kubectl, ns, "pvc")["items"]
        return sorted(p["metadata"]["name"] for p in pvcs if p["status"].get("phase") == "Bound")

    claims = ["data-db-0", "data-db-1", "data-db-2"]
    wait_for(lambda: bound() == claims, 60, "3 PVCs Bound")
    pvs = get(kubectl, ns, "pv")["items"]  # cluster-scoped: -n is ignored
    mine = [pv for pv in pvs if (pv["spec"].get("claimRef") or {}).get("namespace") == ns]
    assert sorted(pv["spec"]["claimRef"]["name"] for pv in mine) == claims
    assert {pv["spec"]["storageClassName"] for pv in mine} == {"standard"}  # the default class

    kubectl("scale", "-n", ns, "statefulset/db", "--replicas=1")
    pods.wait(lambda evs: len([1 for t, _ in evs if t == "DELETED"]) >= 2, 60, "two pods deleted")
    assert pods.names("DELETED") == ["db-2", "db-1"]
    # ... and db-1's deletion began only once db-2 was gone
    gone2 = pods.first_index(lambda t, o: t == "DELETED" and o["metadata"]["name"] == "db-2")
    term1 = pods.first_index(
        lambda t, o: o["metadata"]["name"] == "db-1" and o["metadata"].get("deletionTimestamp")
    )
    assert gone2 is not None and term1 is not None and gone2 < term1
    kubectl(
        "wait", "-n", ns, "--for=jsonpath={.status.replicas}=1", "statefulset/db", "--timeout=60s"
    )
    assert "db-0" not in pods.names("DELETED")
    assert bound() == claims  # PVCs stay after a scale-down


@pytest.mark.apionly
def test_service_account_without_rbac_is_forbidden(namespace, kubectl, api):
    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    sa = api.as_token(token)
    with pytest.raises(ApiError) as err:
        sa.request("GET", "/api/v1/namespaces/kube-system/pods")
    assert err.value.status == 403
    assert err.value.body["reason"] == "Forbidden"
    assert f"system:serviceaccount:{namespace}:nobody" in err.value.body["message"]
    # the token itself is valid: the same identity may ask who it is
    review = sa.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:nobody"


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
    assert 'violates PodSecurity "restricted' in r.stderr and "privileged" in r.stderr, r.stderr
    assert kubectl("get", "pod", "priv", "-n", namespace, check=False).returncode != 0
    # a pod that meets the restricted profile is admitted (and runs) in the same namespace
    pod["metadata"]["name"] = "fine"
    pod["spec"] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "c",
                "image": RUNNABLE_IMAGE,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    apply(kubectl, namespace, pod)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/fine", "--timeout=60s")


def test_audit_log_records_writes_not_reads(namespace, api, audit_log):
    agent = f"minop-e2e-audit/{uuid.uuid4().hex[:8]}"
    me = api.with_user_agent(agent)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    me.request("POST", path, {"metadata": {"name": "audited"}, "data": {"a": "1"}})
    me.request("GET", f"{path}/audited")  # a read: must not be logged
    me.request("GET", path)
    me.request("PATCH", f"{path}/audited", {"data": {"a": "2"}})
    me.request("DELETE", f"{path}/audited")

    def mine():
        entries = audit_log.entries(lambda e: e.get("userAgent") == agent)
        return entries if any(e["verb"] == "delete" for e in entries) else None

    entries = wait_for(mine, 20, f"audit entries of {agent}")
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    whoami = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
    user = whoami["status"]["userInfo"]
    assert [e["verb"] for e in entries] == ["create", "patch", "delete"]
    for e in entries:
        assert e["level"] == "Metadata" and e["stage"] == "ResponseComplete"
        assert e["objectRef"]["resource"] == "configmaps"
        assert e["objectRef"]["namespace"] == namespace and e["objectRef"]["name"] == "audited"
        assert e["user"]["username"] == user["username"]
        assert e["user"]["groups"] == user["groups"]
        assert "requestObject" not in e and "responseObject" not in e
