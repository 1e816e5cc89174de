"""minop.kit.monitoring: the exporter sidecar, the metrics Service and the
ServiceMonitor as pure functions of a spec's ``metrics``."""

from minop.kit import monitoring
from minop.kit.workloads import Instance

SELECTOR = {"app.kubernetes.io/instance": "web"}


def inst(metrics: dict | None) -> Instance:
    spec = {} if metrics is None else {"metrics": metrics}
    return Instance("web", "ns", spec, SELECTOR, SELECTOR, "img")


def test_metrics_are_off_unless_enabled():
    assert not monitoring.enabled({})
    assert not monitoring.enabled({"metrics": {"port": 9000}})
    assert monitoring.enabled({"metrics": {"enabled": True}})
    # a ServiceMonitor is only wanted with the sidecar it scrapes
    assert not monitoring.wants_service_monitor({"metrics": {"serviceMonitor": {"enabled": True}}})


def test_sidecar_is_restricted_bounded_and_never_gates_readiness():
    c = monitoring.sidecar({"metrics": {"enabled": True}}, "exp:1", 9113, ["--x=1"])
    assert c["name"] == "metrics" and c["image"] == "exp:1"
    assert c["args"] == ["--x=1", "--web.listen-address=:9113"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9113, "protocol": "TCP"}]
    assert c["livenessProbe"]["tcpSocket"] == {"port": "metrics"}
    assert "readinessProbe" not in c  # a broken exporter must not take the pod out of service
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert c["resources"] == monitoring.DEFAULT_RESOURCES


def test_sidecar_takes_the_specs_image_port_and_resources():
    metrics = {
        "enabled": True,
        "image": "mirror/exp:2",
        "port": 9200,
        "resources": {"limits": {"memory": "0.5Gi"}},
    }
    c = monitoring.sidecar({"metrics": metrics}, "exp:1", 9113, [])
    assert c["image"] == "mirror/exp:2"
    assert c["args"] == ["--web.listen-address=:9200"]
    assert c["ports"][0]["containerPort"] == 9200
    assert c["resources"] == {"limits": {"memory": "512Mi"}}  # canonical: no write per reconcile


def test_metrics_service_is_cluster_internal_and_labelled_for_the_service_monitor():
    svc = monitoring.service(inst({"enabled": True, "port": 9200}), 9113)
    assert svc["metadata"] == {"name": "web-metrics", "labels": {monitoring.METRICS_LABEL: "web"}}
    assert svc["spec"] == {
        "type": "ClusterIP",
        "selector": SELECTOR,
        "ports": [{"name": "metrics", "port": 9200, "targetPort": "metrics", "protocol": "TCP"}],
    }


def test_service_monitor_selects_the_metrics_service_of_its_own_namespace():
    sm = monitoring.service_monitor(
        inst({"enabled": True, "serviceMonitor": {"enabled": True, "interval": "15s",
                                                  "labels": {"release": "prom"}}})
    )  # fmt: skip
    assert (sm["apiVersion"], sm["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert sm["metadata"] == {"name": "web", "labels": {"release": "prom"}}
    assert sm["spec"] == {
        "selector": {"matchLabels": {monitoring.METRICS_LABEL: "web"}},
        "namespaceSelector": {"matchNames": ["ns"]},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
    }
    bare = monitoring.service_monitor(inst({"enabled": True, "serviceMonitor": {"enabled": True}}))
    assert bare["metadata"] == {"name": "web"}
    assert bare["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics"}]


def test_schema_documents_every_field_and_defaults_off():
    from minop.kit.crd import undocumented

    schema = monitoring.schema("x-exporter", "X_IMAGE", "x:1", 9000)
    assert undocumented(schema) == []
    props = schema["properties"]
    assert props["enabled"]["default"] is False
    assert props["serviceMonitor"]["properties"]["enabled"]["default"] is False
    assert props["port"]["default"] == 9000
    assert "X_IMAGE or x:1" in props["image"]["description"]


def test_prometheus_rule_only_for_a_plugin_with_alerts_and_with_the_sidecar():
    from minop.kit.crd import undocumented

    plain = monitoring.schema("x-exporter", "X_IMAGE", "x:1", 9000)
    assert "prometheusRule" not in plain["properties"]
    schema = monitoring.schema("x-exporter", "X_IMAGE", "x:1", 9000, alerts="x being down")
    assert undocumented(schema) == []
    rule = schema["properties"]["prometheusRule"]
    assert rule["properties"]["enabled"]["default"] is False
    assert "x being down" in rule["description"]
    fields = [r["fieldPath"] for r in schema["x-kubernetes-validations"]]
    assert fields == [".serviceMonitor.enabled", ".prometheusRule.enabled"]
    assert not monitoring.RULE.wanted({"metrics": {"prometheusRule": {"enabled": True}}})
    assert monitoring.RULE.wanted(
        {"metrics": {"enabled": True, "prometheusRule": {"enabled": True}}}
    )


def test_prometheus_rule_carries_the_plugins_groups_and_scopes_by_the_monitors_labels():
    i = inst({"enabled": True, "prometheusRule": {"enabled": True, "labels": {"release": "p"}}})
    groups = [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]
    rule = monitoring.prometheus_rule(i, groups)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"] == {"name": "web", "labels": {"release": "p"}}
    assert rule["spec"] == {"groups": groups}
    # the labels the Prometheus Operator gives each target of the ServiceMonitor
    assert monitoring.series_selector(i) == 'namespace="ns",service="web-metrics"'
