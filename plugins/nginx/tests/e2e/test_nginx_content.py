"""NGINX content and references against a real API server (KWOK runs the pods): a
referenced ConfigMap or TLS Secret rolls the pods when it changes; content served
from a ConfigMap or a PersistentVolumeClaim."""

from __future__ import annotations

import json

import minop_nginx.hooks as nginx
import pytest
from test_nginx import HASH, apply_ngx, config_map, template_hash, wait_degraded

from minop.kit.e2e.deployment import get, live_pods, rs_names, wait_rolled
from minop.kit.testing import OperatorRunner, tls_secret_data

pytestmark = pytest.mark.usefixtures("plugin_crds")


def test_nginx_referenced_configmap_and_tls_secret_roll_the_pods(namespace, kubectl):
    ns = namespace
    site = "server { listen 8080; location = /healthz { return 200; } }"
    kubectl("create", "configmap", "site", "-n", ns, f"--from-literal=site.conf={site}")
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        apply_ngx(kubectl, ns, "web", configMapRef={"name": "site"})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        pod = get(kubectl, ns, "deployment/web")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["user-config"]["configMap"]["name"] == "site"
        assert "server.conf" not in config_map(kubectl, ns, "web")["data"]
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
            "stringData": tls_secret_data("one", ("localhost",)),
        }
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))
        kubectl("wait", "--for=condition=Ready", "nginxserver/secure", "-n", ns, "--timeout=60s")
        probe = get(kubectl, ns, "deployment/secure")["spec"]["template"]["spec"]["containers"][0]
        assert probe["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
        tls_hash, old = template_hash(kubectl, ns, "secure"), rs_names(kubectl, ns, "secure")
        rotated = {"stringData": tls_secret_data("two", ("localhost",))}
        kubectl("patch", "secret/cert", "-n", ns, "--type=merge", "-p", json.dumps(rotated))
        wait_rolled(
            kubectl, ns, "secure", old, lambda p: p["metadata"]["annotations"][HASH] != tls_hash
        )


def test_nginx_serves_content_from_a_configmap(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        apply_ngx(kubectl, ns, "web", content={"configMapRef": {"name": "site"}})
        msg = wait_degraded(kubectl, ns, "web")
        assert "spec.content.configMapRef.name: ConfigMap 'site' not found" in msg, msg
        kubectl("create", "configmap", "site", "-n", ns, "--from-literal=index.html=<h1>hi</h1>")
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        pod = get(kubectl, ns, "deployment/web")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["content"]["configMap"] == {"name": "site", "defaultMode": 420}
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["/usr/share/nginx/html"]["readOnly"] is True
        # editing the content rolls the pods
        old, first = rs_names(kubectl, ns, "web"), template_hash(kubectl, ns, "web")
        patched = {"data": {"index.html": "<h1>two</h1>"}}
        kubectl("patch", "configmap/site", "-n", ns, "--type=merge", "-p", json.dumps(patched))
        wait_rolled(kubectl, ns, "web", old, lambda p: p["metadata"]["annotations"][HASH] != first)


def test_nginx_serves_content_from_a_persistent_volume_claim(namespace, kubectl):
    ns = namespace
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "www"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(claim))
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        apply_ngx(kubectl, ns, "web", content={"persistentVolumeClaim": {"claimName": "www"}})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=90s")
        [pod] = live_pods(kubectl, ns, "web")
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["content"]["persistentVolumeClaim"] == {"claimName": "www", "readOnly": True}
