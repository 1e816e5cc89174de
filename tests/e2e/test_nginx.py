"""The NGINX operator against a real API server (KWOK runs the pods)."""

from __future__ import annotations

import json

import minop_nginx.hooks as nginx
import pytest
from test_memcached import get

from minop.testing import OperatorRunner, wait_for

pytestmark = pytest.mark.usefixtures("plugin_crds")
HASH = "minop.dev/config-hash"


def apply_ngx(kubectl, ns, name, **spec):
    obj = {
        "apiVersion": "web.minop.dev/v1alpha1",
        "kind": "NginxServer",
        "metadata": {"name": name},
        "spec": spec,
    }
    return kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)


def patch(kubectl, ns, what, spec):
    kubectl("patch", what, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def template_hash(kubectl, ns, name):
    dep = get(kubectl, ns, f"deployment/{name}", missing_ok=True)
    return dep and dep["spec"]["template"]["metadata"]["annotations"][HASH]


def condition(kubectl, ns, name, ctype):
    st = get(kubectl, ns, f"nginxserver/{name}").get("status", {})
    return next((c for c in st.get("conditions", []) if c["type"] == ctype), {})


def settled(kubectl, ns, name, n):
    st = get(kubectl, ns, f"nginxserver/{name}").get("status", {})
    pods = [
        p
        for p in get(kubectl, ns, "pods")["items"]
        if p["metadata"]["labels"].get("app.kubernetes.io/instance") == name
        and not p["metadata"].get("deletionTimestamp")
    ]
    return st.get("availableReplicas") == n and len(st.get("podNames", [])) == n == len(pods)


def test_nginx_lifecycle_config_rolls_and_bad_config_is_refused(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        assert apply_ngx(kubectl, ns, "web", replicas=2).returncode == 0
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        wait_for(lambda: settled(kubectl, ns, "web", 2), 30, "2 available")
        dep = get(kubectl, ns, "deployment/web")
        pod = dep["spec"]["template"]["spec"]
        assert (
            pod["securityContext"]["runAsNonRoot"]
            and pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
        )
        assert get(kubectl, ns, "configmap/web-config")["data"]["server.conf"]
        assert get(kubectl, ns, "pdb/web")

        kubectl("scale", "nginxserver/web", "-n", ns, "--replicas=3")
        wait_for(lambda: settled(kubectl, ns, "web", 3), 60, "scaled to 3")

        # a config change rolls the pods through the template hash
        before = template_hash(kubectl, ns, "web")
        patch(kubectl, ns, "nginxserver/web", {"healthcheckPath": "/alive"})
        wait_for(lambda: template_hash(kubectl, ns, "web") != before, 20, "template hash")
        rolled = template_hash(kubectl, ns, "web")

        # invalid config: Degraded with nginx's own message, running pods untouched
        patch(kubectl, ns, "nginxserver/web", {"config": "server { listen 8080; nonsense on; }"})
        wait_for(
            lambda: condition(kubectl, ns, "web", "Degraded").get("status") == "True",
            20,
            "Degraded",
        )
        msg = condition(kubectl, ns, "web", "Degraded")["message"]
        assert 'unknown directive "nonsense"' in msg and "spec.config" in msg
        assert template_hash(kubectl, ns, "web") == rolled
        # fixing the spec clears it
        patch(
            kubectl,
            ns,
            "nginxserver/web",
            {"config": "server { listen 8080; location = /alive { return 200; } }"},
        )
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        assert template_hash(kubectl, ns, "web") != rolled

        kubectl("delete", "nginxserver/web", "-n", ns)
        wait_for(
            lambda: get(kubectl, ns, "deployment/web", missing_ok=True) is None,
            60,
            "children garbage-collected",
        )


def test_nginx_referenced_configmap_and_tls_secret_roll_the_pods(namespace, kubectl):
    ns = namespace
    kubectl(
        "create",
        "configmap",
        "site",
        "-n",
        ns,
        "--from-literal=site.conf=server { listen 8080; location = /healthz { return 200; } }",
    )
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        apply_ngx(kubectl, ns, "web", configMapRef={"name": "site"})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        first = template_hash(kubectl, ns, "web")
        kubectl(
            "create",
            "configmap",
            "site",
            "-n",
            ns,
            "--dry-run=client",
            "-o",
            "yaml",
            "--from-literal=site.conf=server { listen 8080; }",
        )
        kubectl(
            "patch",
            "configmap/site",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"data":{"site.conf":"server { listen 8080; }"}}',
        )
        wait_for(lambda: template_hash(kubectl, ns, "web") != first, 20, "roll on ConfigMap edit")

        # a missing TLS Secret is named; creating it heals the object
        apply_ngx(kubectl, ns, "secure", tls={"secretName": "cert"}, port=8443)
        wait_for(
            lambda: condition(kubectl, ns, "secure", "Degraded").get("status") == "True",
            20,
            "Degraded for the missing Secret",
        )
        assert "spec.tls.secretName" in condition(kubectl, ns, "secure", "Degraded")["message"]
        kubectl(
            "create",
            "secret",
            "generic",
            "cert",
            "-n",
            ns,
            "--from-literal=tls.crt=x",
            "--from-literal=tls.key=y",
        )
        kubectl("wait", "--for=condition=Ready", "nginxserver/secure", "-n", ns, "--timeout=60s")
        tls_hash = template_hash(kubectl, ns, "secure")
        kubectl(
            "patch",
            "secret/cert",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"stringData":{"tls.crt":"rotated"}}',
        )
        wait_for(
            lambda: template_hash(kubectl, ns, "secure") != tls_hash,
            20,
            "roll on certificate rotation",
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"port": 80}, "spec.port"),
        ({"serviceType": "Magic"}, "spec.serviceType"),
        ({"replicas": -1}, "spec.replicas"),
        ({"healthcheckPath": "no-slash"}, "spec.healthcheckPath"),
        ({"config": "server {}", "configMapRef": {"name": "x"}}, "spec.configMapRef"),
    ],
)
def test_invalid_nginxserver_is_rejected_naming_the_field(namespace, kubectl, spec, field):
    r = apply_ngx(kubectl, namespace, "bad", **spec)
    assert r.returncode != 0 and field in r.stderr, r.stderr
