"""The Memcached metrics sidecar (memcached_exporter) and what it changes in the children."""

from minop_memcached import children, hooks

from minop.kit import monitoring
from minop.kit.workloads import Instance

SELECTOR = {"app.kubernetes.io/instance": "mc"}
METRICS = {"enabled": True}


def inst(spec):
    return Instance("mc", "ns", spec, SELECTOR, SELECTOR, "memcached:1")


def containers(spec):
    return children.workload(inst(spec), "", "exp:1")["spec"]["template"]["spec"]["containers"]


def test_no_sidecar_by_default():
    assert [c["name"] for c in containers({})] == ["memcached"]
    assert [c["name"] for c in containers({"metrics": {"enabled": False}})] == ["memcached"]


def test_sidecar_asks_the_pods_own_memcached_on_its_port():
    main, sidecar = containers({"port": 11311, "metrics": METRICS})
    assert sidecar["name"] == "metrics" and sidecar["image"] == "exp:1"
    assert sidecar["args"] == [
        "--memcached.address=127.0.0.1:11311",
        "--web.listen-address=:9150",
    ]
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": 9150, "protocol": "TCP"}]
    assert main["name"] == "memcached"


def test_memcacheds_resources_stay_memcacheds():
    spec = {"metrics": METRICS, "resources": {"limits": {"memory": "256Mi"}}}
    main, sidecar = containers(spec)
    assert main["resources"] == {"limits": {"memory": "256Mi"}}
    assert sidecar["resources"] == monitoring.DEFAULT_RESOURCES


def test_stable_names_keep_the_sidecar():
    sts = children.workload(inst({"stableNames": True, "metrics": METRICS}), "", "exp:1")
    assert sts["kind"] == "StatefulSet"
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == [
        "memcached",
        "metrics",
    ]


def test_network_policy_lets_a_scrape_reach_only_the_metrics_port():
    peers = [{"podSelector": {"matchLabels": {"app": "web"}}}]
    spec = {"networkPolicy": {"from": peers}, "metrics": {"enabled": True, "port": 9200}}
    ingress = children.network_policy(inst(spec))["spec"]["ingress"]
    assert ingress == [
        {"from": peers, "ports": [{"protocol": "TCP", "port": 11211}]},
        {"ports": [{"protocol": "TCP", "port": 9200}]},
    ]
    without = children.network_policy(inst({"networkPolicy": {"from": peers}}))
    assert without["spec"]["ingress"] == [ingress[0]]


def test_exporter_image_is_a_related_image_and_follows_the_operators_env(monkeypatch):
    [resource] = hooks.minop_resources()
    assert resource.images["memcached-exporter"] == "prom/memcached-exporter:v0.15.0"
    assert monitoring.SERVICE_MONITOR_RULE in resource.extra_rules
    monkeypatch.setenv("MEMCACHED_EXPORTER_IMAGE", "mirror.local/memcached-exporter:v0.15.0")
    [resource] = hooks.minop_resources()
    assert resource.images["memcached-exporter"] == "mirror.local/memcached-exporter:v0.15.0"
