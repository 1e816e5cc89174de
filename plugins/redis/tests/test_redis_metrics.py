"""spec.metrics of a Redis: the redis_exporter sidecar, the init script's exporter user,
the metrics Service, and the ServiceMonitor and PrometheusRule only when asked."""

from __future__ import annotations

import re

from minop_redis import children, hooks, metrics, scripts, services
from minop_redis.children import Instance

from minop.kit import monitoring

SELECTOR = {"app.kubernetes.io/instance": "r"}
ON = {"enabled": True}


def inst(spec: dict) -> Instance:
    return Instance("r", "ns", spec, SELECTOR, SELECTOR, "redis:7")


def pod(spec: dict) -> dict:
    sts = children.statefulset(
        inst(spec),
        config_hash="c",
        auth_hash="a",
        claim_size="1Gi",
        storage_class=None,
        exporter_image="exp:1",
    )
    return sts["spec"]["template"]["spec"]


def names(spec: dict) -> list[str]:
    return [c["name"] for c in pod(spec)["containers"]]


def test_no_sidecar_and_no_exporter_user_by_default():
    assert names({}) == ["redis"]
    assert names({"sentinel": {"enabled": True}, "replicas": 3}) == ["redis", "sentinel"]
    p = pod({"metrics": {"enabled": False}})
    assert all(e["name"] != "REDIS_EXPORTER_USER" for e in p["initContainers"][0]["env"])


def test_every_pod_runs_the_exporter_against_its_own_server_as_the_exporter_user():
    assert names({"metrics": ON, "sentinel": {"enabled": True}, "replicas": 3}) == [
        "redis",
        "sentinel",
        "metrics",
    ]
    p = pod({"metrics": {"enabled": True, "port": 9200}})
    sidecar = p["containers"][-1]
    assert sidecar["image"] == "exp:1"
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": 9200, "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env == {
        "REDIS_PORT": "6379",
        "REDIS_ADDR": "redis://127.0.0.1:$(REDIS_PORT)",
        "REDIS_USER": "exporter",
        "REDIS_PASSWORD_FILE": f"{children.RUN_DIR}/exporter.json",
    }
    # the password only in the run volume's file: never in the pod spec
    assert all("valueFrom" not in e for e in sidecar["env"])
    assert sidecar["volumeMounts"] == [
        {"name": "run", "mountPath": children.RUN_DIR, "readOnly": True}
    ]
    assert "--web.listen-address=:9200" in sidecar["args"]
    # nothing that needs more than the user may, nor dials elsewhere on request
    for flag in ("--disable-scrape-endpoint", "--config-command=-", "--exclude-slowlog-metrics"):
        assert flag in sidecar["args"]
    # init.sh (both runs of it) defines the user
    for c in (p["initContainers"][0], p["containers"][0]):
        assert {"name": "REDIS_EXPORTER_USER", "value": "exporter"} in c["env"]


def test_the_exporter_user_may_read_info_and_latency_only():
    [line] = [x for x in scripts.INIT.splitlines() if x.strip().startswith('rules="+ping')]
    allowed = set(re.findall(r"\+\S+", line.replace('"', "")))
    assert allowed == {
        "+ping",
        "+info",
        "+client|setname",
        "+latency|latest",
        "+latency|histogram",
    }
    assert "~" not in line and "@" not in line  # no keys, no command categories


def test_metrics_service_and_network_policy():
    i = inst({"metrics": {"enabled": True, "port": 9200}})
    svc = monitoring.service(i, metrics.DEFAULT_METRICS_PORT)
    assert svc["spec"]["ports"][0]["port"] == 9200
    assert svc["metadata"] == {"name": "r-metrics", "labels": {monitoring.METRICS_LABEL: "r"}}
    peers = [{"podSelector": {"matchLabels": {"app": "web"}}}]
    spec = {"networkPolicy": {"from": peers}, "metrics": {"enabled": True, "port": 9200}}
    ingress = services.network_policy(inst(spec))["spec"]["ingress"]
    assert {"ports": [{"protocol": "TCP", "port": 9200}]} in ingress
    without = services.network_policy(inst({"networkPolicy": {"from": peers}}))
    assert all("9200" not in str(r) for r in without["spec"]["ingress"])


def test_service_monitor_and_prometheus_rule_only_when_asked():
    assert not monitoring.RULE.wanted({})
    assert not monitoring.RULE.wanted({"metrics": {"enabled": True}})
    assert not monitoring.RULE.wanted({"metrics": {"prometheusRule": ON}})
    assert monitoring.RULE.wanted({"metrics": {"enabled": True, "prometheusRule": ON}})
    assert not monitoring.MONITOR.wanted({"metrics": {"enabled": True, "prometheusRule": ON}})


def test_every_alert_reads_only_this_redis_series():
    spec = {"replicas": 3, "metrics": {"enabled": True, "prometheusRule": {"labels": {"a": "b"}}}}
    i = inst(spec)
    rule = monitoring.prometheus_rule(i, metrics.alerts(i))
    assert rule["kind"] == "PrometheusRule" and rule["metadata"] == {
        "name": "r",
        "labels": {"a": "b"},
    }
    [group] = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) >= {
        "RedisDown",
        "RedisNoPrimary",
        "RedisReplicationBroken",
        "RedisReplicaLagging",
        "RedisReplicasMissing",
        "RedisMemoryNearMax",
        "RedisRejectedConnections",
    }
    scoped = 'namespace="ns",service="r-metrics"'
    for name, r in alerts.items():
        selectors = re.findall(r"redis_\w+\{([^}]*)\}", r["expr"])
        assert selectors and all(s.startswith(scoped) for s in selectors), name
        assert r["labels"]["severity"] in ("critical", "warning")
    assert "< 2" in alerts["RedisReplicasMissing"]["expr"]
    # one pod: no replicas to miss
    assert "RedisReplicasMissing" not in str(metrics.alerts(inst({"metrics": ON})))


def test_the_exporter_image_is_a_related_image_and_both_kinds_need_rbac(monkeypatch):
    [resource] = hooks.minop_resources()
    assert resource.images["redis-exporter"] == metrics.DEFAULT_EXPORTER_IMAGE
    assert monitoring.SERVICE_MONITOR_RULE in resource.extra_rules
    assert monitoring.PROMETHEUS_RULE_RULE in resource.extra_rules
    monkeypatch.setenv("REDIS_EXPORTER_IMAGE", "mirror.local/redis-exporter:1")
    [resource] = hooks.minop_resources()
    assert resource.images["redis-exporter"] == "mirror.local/redis-exporter:1"


def test_with_tls_the_exporter_speaks_tls_and_checks_the_pods_name():
    p = pod({"metrics": ON, "tls": {"secretName": "r-tls", "clientAuth": True}})
    sidecar = p["containers"][-1]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["REDIS_ADDR"] == "rediss://127.0.0.1:$(REDIS_PORT)"
    # the pod's stable DNS name, which the README's Certificate names
    assert env["REDIS_EXPORTER_TLS_SERVER_NAME"] == "$(POD_NAME).r-headless.ns.svc"
    names = [e["name"] for e in sidecar["env"]]
    assert names.index("POD_NAME") < names.index("REDIS_EXPORTER_TLS_SERVER_NAME")
    assert {
        "--tls-ca-cert-file=/etc/redis-tls/ca.crt",
        "--tls-client-cert-file=/etc/redis-tls/tls.crt",
        "--tls-client-key-file=/etc/redis-tls/tls.key",
    } <= set(sidecar["args"])
    assert {"name": "tls", "mountPath": "/etc/redis-tls", "readOnly": True} in sidecar[
        "volumeMounts"
    ]
    assert "--skip-tls-verification" not in sidecar["args"]
