"""What only pods that really run can prove for NGINX (kind; skipped with "needs real
pods" on KWOK): it serves, picks up a new configuration (HTTP/2 on a newer nginx than the
operator's, static content on port 80) and keeps serving when its pods' own nginx rejects
one. The operator itself runs in-cluster from its image,
installed from config/ (minop.kit.e2e.incluster, the ``operator`` fixture), one copy per
test namespace.
Clients are other pods in the namespace (bash or curl), reaching the servers through their
Services' DNS names.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import Kubectl, apply, client_pod, first_through_service, wait
from minop.kit.e2e.pods import http_get_from as http_get
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]
# trixie's nginx 1.26 (knows `http2 on;`) and curl; minop/nginx:1.22 is bookworm's, the
# operator's own nginx (hack/kind/app-images.sh)
NGINX_NEW, NGINX_OLD = "minop/nginx:1.26", "minop/nginx:1.22"


@pytest.fixture
def curl(namespace: str, kubectl: Kubectl) -> Callable[..., str]:
    """``curl(*args)``: curl (with HTTP/2) in a client pod; prints the status line."""
    run = client_pod(namespace, kubectl, NGINX_NEW)
    return lambda *args: run(
        "curl", "-sS", "--max-time", "10", "-w", "\n%{http_version} %{http_code}", *args
    )


def test_nginx_serves_its_health_path_and_rolls_to_a_new_config(
    namespace, kubectl, operator, client
):
    ns = namespace
    api = "web.minop.dev/v1alpha1"
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, healthcheckPath="/healthz")
    wait(kubectl, ns, "nginxserver/web", 180)
    host = f"web.{ns}.svc.cluster.local"
    first_through_service(
        lambda: http_get(client, host, 80, "/healthz"),
        lambda out: out.startswith("HTTP/1.1 200"),
        "/healthz through the Service",
    )
    before = set(get(kubectl, ns, "nginxserver/web")["status"]["podNames"])
    assert len(before) == 2

    config = (
        "server {\n  listen 8080;\n"
        "  location = /healthz { return 200 'ok\\n'; }\n"
        "  location = /version { return 200 'v2\\n'; }\n}\n"
    )
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, config=config)

    def rolled() -> bool:
        status = get(kubectl, ns, "nginxserver/web").get("status") or {}
        names = set(status.get("podNames") or [])
        return len(names) == 2 and not names & before and status.get("availableReplicas") == 2

    wait_for(rolled, 180, "both pods replaced")

    # every pod serves the new config: several requests in a row through the Service, once
    # kube-proxy dropped the old pods' addresses (until then a request may hang)
    def serves_v2() -> bool:
        for _ in range(6):
            response = http_get(client, host, 80, "/version")
            assert response.startswith("HTTP/1.1 200"), response
            assert response.rstrip().endswith("v2"), response
        return True

    wait_for(serves_v2, 60, "the new config served")


def test_nginx_keeps_serving_when_the_pods_nginx_rejects_a_config_and_serves_http2_on_a_newer_one(
    namespace, kubectl, operator, curl
):
    """`http2 on;` (nginx >= 1.25.1): the operator's nginx (1.22) cannot judge it, so the
    pods' own nginx does. On 1.22 the new pod fails its check: the rollout stops, the old
    pods keep serving, the object shows nginx's message. On 1.26 it serves HTTP/2."""
    ns, api = namespace, "web.minop.dev/v1alpha1"
    block = (
        "server {{\n  listen 8080;{extra}\n"
        "  location = /healthz {{ return 200 'ok\\n'; }}\n"
        "  location = /version {{ return 200 '{version}\\n'; }}\n}}\n"
    )
    v1 = block.format(extra="", version="v1")
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, image=NGINX_OLD, config=v1)
    wait(kubectl, ns, "nginxserver/web", 180)
    url = f"http://web.{ns}.svc.cluster.local/version"  # Service port 80
    first_through_service(
        lambda: curl(url), lambda out: out.split() == ["v1", "1.1", "200"], "v1 served"
    )
    before = sorted(get(kubectl, ns, "nginxserver/web")["status"]["podNames"])

    h2 = block.format(extra="\n  http2 on;", version="v2")
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, image=NGINX_OLD, config=h2)

    def degraded() -> str:
        conds = get(kubectl, ns, "nginxserver/web").get("status", {}).get("conditions", [])
        c = next((c for c in conds if c["type"] == "Degraded"), {})
        return str(c.get("message", "")) if c.get("status") == "True" else ""

    wait_for(degraded, 180, "Degraded from the new pod's own nginx -t")
    msg = degraded()
    assert msg.startswith("spec.config: nginx -t failed in pod web-"), msg
    assert msg.endswith(
        f'({NGINX_OLD}): unknown directive "http2" in /etc/nginx/minop/server.conf:3'
    ), msg
    # the old pods were never stopped, and serve the last good configuration
    status = get(kubectl, ns, "nginxserver/web")["status"]
    assert status["availableReplicas"] == 2
    pods = {p["metadata"]["name"]: p for p in get(kubectl, ns, "pods")["items"]}
    assert all(n in pods and not pods[n]["metadata"].get("deletionTimestamp") for n in before)
    for _ in range(4):
        assert curl(url).split() == ["v1", "1.1", "200"]

    # the pods' nginx is new enough: rolled out, HTTP/2 with prior knowledge
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, image=NGINX_NEW, config=h2)
    wait_for(lambda: not degraded(), 180, "Degraded cleared")
    wait(kubectl, ns, "nginxserver/web", 180)

    def serves_h2() -> bool:
        for _ in range(4):
            out = curl("--http2-prior-knowledge", url).split()
            assert out == ["v2", "2", "200"], out
        return True

    wait_for(serves_h2, 60, "HTTP/2 served by every pod")


def test_nginx_serves_content_from_a_configmap_on_port_80(namespace, kubectl, operator, curl):
    ns = namespace
    kubectl(
        "create", "configmap", "site", "-n", ns,
        "--from-literal=index.html=<h1>hello from a ConfigMap</h1>\n",
    )  # fmt: skip
    apply(
        kubectl,
        ns,
        "web.minop.dev/v1alpha1",
        "NginxServer",
        "web",
        image=NGINX_NEW,
        content={"configMapRef": {"name": "site"}},
    )
    wait(kubectl, ns, "nginxserver/web", 180)
    first_through_service(
        lambda: curl(f"http://web.{ns}.svc.cluster.local/"),
        lambda out: out.splitlines() == ["<h1>hello from a ConfigMap</h1>", "", "1.1 200"],
        "the ConfigMap's index.html served on port 80",
    )
    assert get(kubectl, ns, "service/web")["spec"]["ports"][0]["port"] == 80
