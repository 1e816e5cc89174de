"""The NGINX operator against a real API server (KWOK runs the pods)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import minop_nginx.hooks as nginx
import pytest
from conftest import OTHER_IMAGE
from test_memcached import (
    apply_cr,
    assert_owned,
    assert_restricted_pod_template,
    check_drift_repair,
    check_invalid,
    condition,
    get,
    live_pods,
    patch_spec,
    pod_ready,
    restricted,
    rs_names,
    wait_rolled,
)

from minop.kit.testing import OperatorRunner, wait_for

pytestmark = pytest.mark.usefixtures("plugin_crds")
NGX = "web.minop.dev/v1alpha1"
HASH = "minop.dev/config-hash"
GOOD = "server { listen 8080; location = /healthz { return 200; } }"
BAD = "server { listen 8080; nonsense on; }"


def apply_ngx(kubectl, ns: str, name: str, **spec: Any):
    return apply_cr(kubectl, ns, NGX, "NginxServer", name, spec)


def template_hash(kubectl, ns: str, name: str) -> str | None:
    dep = get(kubectl, ns, f"deployment/{name}", missing_ok=True)
    return dep and dep["spec"]["template"]["metadata"]["annotations"][HASH]


def ngx_condition(kubectl, ns: str, name: str, ctype: str) -> dict:
    return condition(get(kubectl, ns, f"nginxserver/{name}"), ctype)


def settled(kubectl, ns: str, name: str, n: int) -> bool:
    """Ready, and the status true to the pods."""
    obj = get(kubectl, ns, f"nginxserver/{name}")
    st = obj.get("status", {})
    pods = live_pods(kubectl, ns, name)
    return (
        len(pods) == n
        and all(pod_ready(p) for p in pods)
        and st.get("podNames") == [p["metadata"]["name"] for p in pods]
        and st.get("availableReplicas") == n
        and st.get("replicas") == n
        and st.get("observedGeneration") == obj["metadata"]["generation"]
        and condition(obj, "Ready").get("status") == "True"
    )


def wait_degraded(kubectl, ns: str, name: str) -> str:
    wait_for(
        lambda: ngx_condition(kubectl, ns, name, "Degraded").get("status") == "True",
        30,
        f"{name} Degraded",
    )
    return str(ngx_condition(kubectl, ns, name, "Degraded")["message"])


def test_nginx_lifecycle(namespace, kubectl):
    ns = namespace
    restricted(kubectl, ns)
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        assert apply_ngx(kubectl, ns, "web", replicas=2).returncode == 0
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        wait_for(lambda: settled(kubectl, ns, "web", 2), 30, "status true to the pods")

        obj = get(kubectl, ns, "nginxserver/web")
        children = ("deployment/web", "service/web", "configmap/web-config", "pdb/web")
        assert_owned(kubectl, ns, obj, *children)
        dep = get(kubectl, ns, "deployment/web")
        assert_restricted_pod_template(dep)
        pod = dep["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == "nginxinc/nginx-unprivileged:1.27"
        assert pod["containers"][0]["ports"][0]["containerPort"] == 8080
        assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == {"tmp", "cache", "run"}
        assert "listen 8080;" in get(kubectl, ns, "configmap/web-config")["data"]["server.conf"]
        assert get(kubectl, ns, "service/web")["spec"]["type"] == "ClusterIP"
        table = kubectl("get", "ngx", "-n", ns).stdout.splitlines()
        assert table[0].split() == ["NAME", "REPLICAS", "AVAILABLE", "AGE"]
        assert table[1].split()[:3] == ["web", "2", "2"]

        # scale through the spec, then through the scale subresource
        patch_spec(kubectl, ns, "nginxserver/web", {"replicas": 3})
        wait_for(lambda: settled(kubectl, ns, "web", 3), 60, "3 pods")
        kubectl("scale", "nginxserver/web", "-n", ns, "--replicas=1")
        wait_for(lambda: settled(kubectl, ns, "web", 1), 60, "1 pod")
        wait_for(lambda: get(kubectl, ns, "pdb/web", missing_ok=True) is None, 20, "PDB removed")

        # an image change rolls the pods onto a new ReplicaSet
        old = rs_names(kubectl, ns, "web")
        patch_spec(kubectl, ns, "nginxserver/web", {"image": OTHER_IMAGE["nginx"]})
        wait_rolled(
            kubectl,
            ns,
            "web",
            old,
            lambda p: p["spec"]["containers"][0]["image"] == OTHER_IMAGE["nginx"],
        )
        wait_for(lambda: settled(kubectl, ns, "web", 1), 60, "settled after the image roll")

        # a configuration change rolls them through the template's hash annotation
        old, before = rs_names(kubectl, ns, "web"), template_hash(kubectl, ns, "web")
        patch_spec(kubectl, ns, "nginxserver/web", {"healthcheckPath": "/alive"})
        wait_rolled(
            kubectl,
            ns,
            "web",
            old,
            lambda p: p["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/alive",
        )
        assert template_hash(kubectl, ns, "web") != before
        assert (
            "location = /alive" in get(kubectl, ns, "configmap/web-config")["data"]["server.conf"]
        )
        wait_for(lambda: settled(kubectl, ns, "web", 1), 60, "settled after the config roll")

        # the Service follows serviceType both ways
        patch_spec(kubectl, ns, "nginxserver/web", {"serviceType": "NodePort"})
        wait_for(
            lambda: get(kubectl, ns, "service/web")["spec"]["type"] == "NodePort", 20, "NodePort"
        )
        patch_spec(kubectl, ns, "nginxserver/web", {"serviceType": "ClusterIP"})
        wait_for(
            lambda: get(kubectl, ns, "service/web")["spec"]["type"] == "ClusterIP",
            20,
            "ClusterIP again",
        )
        wait_for(lambda: settled(kubectl, ns, "web", 1), 30, "settled after the Service change")

        check_drift_repair(kubectl, ns, "web", "configmap/web-config")

        # deletion: the garbage collector removes every child with the owner
        patch_spec(kubectl, ns, "nginxserver/web", {"replicas": 2})
        wait_for(lambda: get(kubectl, ns, "pdb/web", missing_ok=True), 20, "PDB back")
        kubectl("delete", "nginxserver/web", "-n", ns)
        for child in children:
            wait_for(
                lambda c=child: get(kubectl, ns, c, missing_ok=True) is None,
                60,
                f"{child} garbage-collected",
            )


def test_nginx_invalid_config_degrades_and_leaves_the_pods_alone(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        assert apply_ngx(kubectl, ns, "web", replicas=2, config=GOOD).returncode == 0
        wait_for(lambda: settled(kubectl, ns, "web", 2), 60, "settled")
        dep = get(kubectl, ns, "deployment/web")
        data = get(kubectl, ns, "configmap/web-config")["data"]

        patch_spec(kubectl, ns, "nginxserver/web", {"config": BAD})
        msg = wait_degraded(kubectl, ns, "web")
        assert msg.startswith("spec.config: nginx -t failed: "), msg
        assert 'unknown directive "nonsense" in /etc/nginx/minop/server.conf:1' in msg
        assert ngx_condition(kubectl, ns, "web", "Ready")["status"] == "False"
        # nothing was applied: same Deployment generation, same files, same pods
        assert (
            get(kubectl, ns, "deployment/web")["metadata"]["generation"]
            == (dep["metadata"]["generation"])
        )
        assert get(kubectl, ns, "configmap/web-config")["data"] == data
        assert len(live_pods(kubectl, ns, "web")) == 2

        # a corrected spec clears it and rolls out
        fixed = GOOD.replace("return 200;", "return 200 ok;")
        patch_spec(kubectl, ns, "nginxserver/web", {"config": fixed})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        assert ngx_condition(kubectl, ns, "web", "Degraded")["status"] == "False"
        assert get(kubectl, ns, "configmap/web-config")["data"]["server.conf"].startswith(fixed)


def test_nginx_reverting_a_refused_config_clears_degraded(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        assert apply_ngx(kubectl, ns, "web", config=GOOD).returncode == 0
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        patch_spec(kubectl, ns, "nginxserver/web", {"config": BAD})
        wait_degraded(kubectl, ns, "web")
        patch_spec(kubectl, ns, "nginxserver/web", {"config": GOOD})  # back to the last good
        wait_for(
            lambda: ngx_condition(kubectl, ns, "web", "Degraded").get("status") == "False",
            20,
            "Degraded cleared",
        )


def self_signed(tmp_path: Path, cn: str) -> dict[str, str]:
    """A throw-away key pair nginx accepts (real pods load it): tls.crt and tls.key."""
    crt, key = tmp_path / f"{cn}.crt", tmp_path / f"{cn}.key"
    args = ["-nodes", "-days", "1", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(crt)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", *args],
        check=True,
        capture_output=True,
    )
    return {"tls.crt": crt.read_text(), "tls.key": key.read_text()}


def test_nginx_referenced_configmap_and_tls_secret_roll_the_pods(namespace, kubectl, tmp_path):
    ns = namespace
    site = "server { listen 8080; location = /healthz { return 200; } }"
    kubectl("create", "configmap", "site", "-n", ns, f"--from-literal=site.conf={site}")
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        apply_ngx(kubectl, ns, "web", configMapRef={"name": "site"})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        pod = get(kubectl, ns, "deployment/web")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["user-config"]["configMap"]["name"] == "site"
        assert "server.conf" not in get(kubectl, ns, "configmap/web-config")["data"]
        first, old = template_hash(kubectl, ns, "web"), rs_names(kubectl, ns, "web")
        edited = {"data": {"site.conf": site.replace("200", "204")}}
        kubectl("patch", "configmap/site", "-n", ns, "--type=merge", "-p", json.dumps(edited))
        wait_rolled(kubectl, ns, "web", old, lambda p: p["metadata"]["annotations"][HASH] != first)

        # a missing TLS Secret is named; creating it heals the object
        apply_ngx(kubectl, ns, "secure", tls={"secretName": "cert"}, port=8443)
        msg = wait_degraded(kubectl, ns, "secure")
        assert "spec.tls.secretName" in msg and "'cert' not found" in msg, msg
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "cert"},
            "stringData": self_signed(tmp_path, "one"),
        }
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))
        kubectl("wait", "--for=condition=Ready", "nginxserver/secure", "-n", ns, "--timeout=60s")
        probe = get(kubectl, ns, "deployment/secure")["spec"]["template"]["spec"]["containers"][0]
        assert probe["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
        tls_hash, old = template_hash(kubectl, ns, "secure"), rs_names(kubectl, ns, "secure")
        rotated = {"stringData": self_signed(tmp_path, "two")}
        kubectl("patch", "secret/cert", "-n", ns, "--type=merge", "-p", json.dumps(rotated))
        wait_rolled(
            kubectl, ns, "secure", old, lambda p: p["metadata"]["annotations"][HASH] != tls_hash
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"port": 80}, "spec.port"),
        ({"port": 65536}, "spec.port"),
        ({"serviceType": "Magic"}, "spec.serviceType"),
        ({"replicas": -1}, "spec.replicas"),
        ({"healthcheckPath": "no-slash"}, "spec.healthcheckPath"),
        ({"healthcheckPath": "/a;b"}, "spec.healthcheckPath"),
        ({"config": GOOD, "configMapRef": {"name": "x"}}, "spec.configMapRef"),
        ({"config": "server { listen 9090; }"}, "spec.config"),
        ({"config": GOOD, "tls": {"secretName": "cert"}}, "spec.config"),
        ({"tls": {}}, "spec.tls.secretName"),
        ({"configMapRef": {"name": "Not_A_Name"}}, "spec.configMapRef.name"),
    ],
)
def test_invalid_nginxserver_is_rejected_naming_the_field(namespace, kubectl, spec, field):
    check_invalid(kubectl, namespace, NGX, "NginxServer", spec, field)
