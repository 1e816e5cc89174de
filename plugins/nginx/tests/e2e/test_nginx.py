"""The NGINX operator against a real API server (KWOK runs the pods)."""

from __future__ import annotations

import json
from typing import Any

import minop_nginx.hooks as nginx
import pytest

from minop.kit.e2e.deployment import (
    apply_cr,
    assert_owned,
    assert_restricted_pod_template,
    check_drift_repair,
    check_image_roll,
    check_scale,
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

# another image of NGINX, also on the kind nodes (hack/kind/app-images.sh; nothing can be
# pulled there): tests that change spec.image switch to it
OTHER_IMAGE = "minop/nginx:1.22"

pytestmark = pytest.mark.usefixtures("plugin_crds")
NGX = "web.minop.dev/v1alpha1"
HASH = "minop.dev/config-hash"
GOOD = "server { listen 8080; location = /healthz { return 200; } }"
# refused by every nginx: the operator's own check judges it
BAD = "server { listen 8080; location / { return 200; }"
# known to the pods' nginx (>= 1.25.1), not to the operator's (Debian bookworm's 1.22)
HTTP2 = "server { listen 8080; http2 on; location = /healthz { return 200; } }"


def apply_ngx(kubectl, ns: str, name: str, **spec: Any):
    return apply_cr(kubectl, ns, NGX, "NginxServer", name, spec)


def template_hash(kubectl, ns: str, name: str) -> str | None:
    dep = get(kubectl, ns, f"deployment/{name}", missing_ok=True)
    return dep and dep["spec"]["template"]["metadata"]["annotations"][HASH]


def config_map(kubectl, ns: str, name: str) -> dict:
    """The operator's ConfigMap the Deployment's pod template mounts now."""
    pod = get(kubectl, ns, f"deployment/{name}")["spec"]["template"]["spec"]
    cm = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "config")
    return get(kubectl, ns, f"configmap/{cm}")


def our_config_maps(kubectl, ns: str, name: str) -> set[str]:
    items = get(kubectl, ns, "configmaps")["items"]
    return {
        c["metadata"]["name"]
        for c in items
        if (c["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == name
    }


def earlier_config_pods(kubectl, ns: str, name: str, current: str) -> list[str]:
    """The instance's pods, terminating ones too, that mount a ConfigMap other than ``current``."""
    return [
        p["metadata"]["name"]
        for p in get(kubectl, ns, "pods")["items"]
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == name
        and any(
            (v.get("configMap") or {}).get("name", current) != current
            for v in p["spec"].get("volumes") or []
            if v["name"] == "config"
        )
    ]


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
        cm = config_map(kubectl, ns, "web")
        children = (
            "deployment/web",
            "service/web",
            f"configmap/{cm['metadata']['name']}",
            "pdb/web",
        )
        assert_owned(kubectl, ns, obj, *children)
        dep = get(kubectl, ns, "deployment/web")
        assert_restricted_pod_template(dep)
        assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = dep["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == "nginxinc/nginx-unprivileged:1.27"
        assert pod["initContainers"][0]["image"] == "nginxinc/nginx-unprivileged:1.27"
        assert pod["initContainers"][0]["command"][-2:] == ["-t", "-q"]
        assert pod["containers"][0]["ports"][0]["containerPort"] == 8080
        assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == {"tmp", "cache", "run"}
        assert "listen 8080;" in cm["data"]["server.conf"] and cm["immutable"] is True
        svc = get(kubectl, ns, "service/web")["spec"]
        assert svc["type"] == "ClusterIP"
        assert [(p["port"], p["targetPort"]) for p in svc["ports"]] == [(80, "http")]
        table = kubectl("get", "ngx", "-n", ns).stdout.splitlines()
        assert table[0].split() == ["NAME", "REPLICAS", "AVAILABLE", "AGE"]
        assert table[1].split()[:3] == ["web", "2", "2"]

        check_scale(kubectl, ns, "nginxserver", "web", "replicas", settled)
        check_image_roll(kubectl, ns, "nginxserver", "web", OTHER_IMAGE, settled)

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
        cm = config_map(kubectl, ns, "web")
        assert "location = /alive" in cm["data"]["server.conf"]
        wait_for(lambda: settled(kubectl, ns, "web", 1), 60, "settled after the config roll")
        # the last configuration's ConfigMap goes once no pod mounts it: a stopping pod may
        # take its whole grace period (drain, then nginx's graceful stop; minutes on a busy
        # kind node), the operator only seconds after the pod is gone
        grace = get(kubectl, ns, "deployment/web")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        wait_for(
            lambda: not earlier_config_pods(kubectl, ns, "web", cm["metadata"]["name"]),
            grace + 60,
            "the pods of the earlier configuration gone",
        )
        wait_for(
            lambda: our_config_maps(kubectl, ns, "web") == {cm["metadata"]["name"]},
            30,
            "the earlier ConfigMaps pruned",
        )

        # the Service follows service.type and .port both ways, and carries its annotations
        lb = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
        patch_spec(
            kubectl,
            ns,
            "nginxserver/web",
            {"service": {"type": "NodePort", "port": 8000, "annotations": lb}},
        )

        def service_is(kind: str, port: int, annotations: dict) -> bool:
            svc = get(kubectl, ns, "service/web")
            return (
                svc["spec"]["type"] == kind
                and [p["port"] for p in svc["spec"]["ports"]] == [port]
                and {k: v for k, v in (svc["metadata"].get("annotations") or {}).items() if k in lb}
                == annotations
            )

        wait_for(lambda: service_is("NodePort", 8000, lb), 20, "NodePort on 8000")
        patch_spec(kubectl, ns, "nginxserver/web", {"service": None})
        wait_for(lambda: service_is("ClusterIP", 80, {}), 20, "ClusterIP on 80 again")
        wait_for(lambda: settled(kubectl, ns, "web", 1), 30, "settled after the Service change")

        check_drift_repair(kubectl, ns, "web", f"configmap/{cm['metadata']['name']}")

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
        before = our_config_maps(kubectl, ns, "web")

        patch_spec(kubectl, ns, "nginxserver/web", {"config": BAD})
        msg = wait_degraded(kubectl, ns, "web")
        assert msg.startswith("spec.config: nginx -t failed: "), msg
        assert 'unexpected end of file, expecting "}" in /etc/nginx/minop/server.conf:2' in msg
        assert ngx_condition(kubectl, ns, "web", "Ready")["status"] == "False"
        # nothing was applied: same Deployment generation, same files, same pods
        assert (
            get(kubectl, ns, "deployment/web")["metadata"]["generation"]
            == (dep["metadata"]["generation"])
        )
        assert our_config_maps(kubectl, ns, "web") == before
        assert len(live_pods(kubectl, ns, "web")) == 2

        # a corrected spec clears it and rolls out
        fixed = GOOD.replace("return 200;", "return 200 ok;")
        patch_spec(kubectl, ns, "nginxserver/web", {"config": fixed})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        assert ngx_condition(kubectl, ns, "web", "Degraded")["status"] == "False"
        assert config_map(kubectl, ns, "web")["data"]["server.conf"].startswith(fixed)


def test_nginx_rolls_out_what_only_the_pods_nginx_can_judge(namespace, kubectl):
    """`http2 on;` is unknown to the operator's nginx: the pods' own check (the default
    image's, newer: on kind trixie's 1.26) decides."""
    ns = namespace
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        assert apply_ngx(kubectl, ns, "web", config=HTTP2).returncode == 0
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        assert ngx_condition(kubectl, ns, "web", "Degraded")["status"] == "False"
        assert "http2 on;" in config_map(kubectl, ns, "web")["data"]["server.conf"]


def fail_check(kubectl, ns: str, pod: dict, message: str) -> None:
    """What the kubelet reports when the pod's `nginx -t` init container fails: KWOK
    runs nothing, so the test writes that status the way the kubelet would."""
    init = pod["spec"]["initContainers"][0]
    terminated = {"exitCode": 1, "reason": "Error", "message": message}
    status = {
        "status": {
            "initContainerStatuses": [
                {
                    "name": init["name"],
                    "image": init["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 1,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": terminated},
                }
            ]
        }
    }
    name = pod["metadata"]["name"]
    kubectl(
        "patch", f"pod/{name}", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip


@pytest.mark.kwok  # writes the init container's failure as the kubelet would
def test_nginx_pod_rejecting_its_config_degrades_with_nginx_message(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"nginx": nginx}, namespaces=[ns]):
        assert apply_ngx(kubectl, ns, "web", config=HTTP2).returncode == 0
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        [pod] = live_pods(kubectl, ns, "web")
        output = (
            '2026/12/01 09:00:00 [emerg] 1#1: unknown directive "http2" in '
            "/etc/nginx/minop/server.conf:1\n"
            "nginx: configuration file /etc/nginx/nginx.conf test failed\n"
        )
        fail_check(kubectl, ns, pod, output)
        msg = wait_degraded(kubectl, ns, "web")
        assert msg == (
            f"spec.config: nginx -t failed in pod {pod['metadata']['name']} "
            f'(nginxinc/nginx-unprivileged:1.27): unknown directive "http2" in '
            "/etc/nginx/minop/server.conf:1"
        ), msg
        for ctype in ("Ready", "Progressing"):
            c = ngx_condition(kubectl, ns, "web", ctype)
            assert (c["status"], c["reason"]) == ("False", "ConfigRejected"), c
        events = get(kubectl, ns, "events")["items"]
        assert [e["message"] for e in events if e["reason"] == "ConfigRejected"] == [msg]

        # a configuration for the pods' nginx clears it once the new pods pass
        patch_spec(kubectl, ns, "nginxserver/web", {"config": GOOD})
        kubectl("wait", "--for=condition=Ready", "nginxserver/web", "-n", ns, "--timeout=60s")
        wait_for(
            lambda: ngx_condition(kubectl, ns, "web", "Degraded").get("status") == "False",
            30,
            "Degraded cleared",
        )


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
