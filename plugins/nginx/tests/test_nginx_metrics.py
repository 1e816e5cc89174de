"""The NGINX metrics sidecar (nginx-prometheus-exporter on stub_status) and what it
changes in the children."""

from minop_nginx import children, config, hooks

from minop.kit import monitoring
from minop.kit.workloads import Instance

LABELS = {"app.kubernetes.io/instance": "web"}
METRICS = {"enabled": True}


def containers(spec):
    inst = Instance("web", "ns", spec, LABELS, LABELS, "img")
    dep = children.deployment(inst, config.files(spec), "h", "exp:1")
    return dep["spec"]["template"]["spec"]["containers"]


def test_no_sidecar_by_default():
    assert [c["name"] for c in containers({})] == ["nginx"]


def test_sidecar_reads_stub_status_on_the_status_port():
    main, sidecar = containers({"statusPort": 9001, "metrics": METRICS})
    assert sidecar["image"] == "exp:1"
    assert sidecar["args"] == [
        "--nginx.scrape-uri=http://127.0.0.1:9001/stub_status",
        "--web.listen-address=:9113",
    ]
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": 9113, "protocol": "TCP"}]
    # the stub_status location answers the pod itself only
    assert "allow 127.0.0.1;" in config.files({"statusPort": 9001})["nginx.conf"]
    assert main["name"] == "nginx" and "metrics" not in {p["name"] for p in main["ports"]}


def test_the_sidecar_adds_nothing_to_the_config_check_or_the_grace_period():
    inst = Instance("web", "ns", {"metrics": METRICS}, LABELS, LABELS, "img")
    with_metrics = children.deployment(inst, config.files({}), "h")["spec"]["template"]["spec"]
    inst = Instance("web", "ns", {}, LABELS, LABELS, "img")
    without = children.deployment(inst, config.files({}), "h")["spec"]["template"]["spec"]
    assert with_metrics["initContainers"] == without["initContainers"]
    assert with_metrics["containers"][0] == without["containers"][0]
    grace = "terminationGracePeriodSeconds"
    assert with_metrics[grace] == without[grace]


def test_the_public_service_never_carries_the_metrics_port():
    inst = Instance("web", "ns", {"metrics": METRICS, "service": {"type": "LoadBalancer"}},
                    LABELS, LABELS, "img")  # fmt: skip
    assert [p["name"] for p in children.service(inst)["spec"]["ports"]] == ["http"]
    assert monitoring.service(inst, 9113)["spec"]["type"] == "ClusterIP"


def test_exporter_image_is_a_related_image_and_follows_the_operators_env(monkeypatch):
    [resource] = hooks.minop_resources()
    assert resource.images["nginx-exporter"] == "nginx/nginx-prometheus-exporter:1.4.0"
    assert monitoring.SERVICE_MONITOR_RULE in resource.extra_rules
    monkeypatch.setenv("NGINX_EXPORTER_IMAGE", "mirror.local/nginx-exporter:1.4.0")
    [resource] = hooks.minop_resources()
    assert resource.images["nginx-exporter"] == "mirror.local/nginx-exporter:1.4.0"
