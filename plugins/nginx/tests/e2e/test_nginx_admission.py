"""NginxServer admission: every invalid spec is refused naming its field, every valid
one accepted (cases from the CRD's schema where it can generate them)."""

from __future__ import annotations

import minop_nginx.crd as nginx_crd
import pytest
from test_nginx import GOOD, NGX

from minop.kit.e2e.deployment import check_admission, check_invalid, schema_cases

INTERVAL = "spec.metrics.serviceMonitor.interval"
pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("plugin_crds")]


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


TLS = {"secretName": "a"}
CM, PVC = {"configMapRef": {"name": "site"}}, {"persistentVolumeClaim": {"claimName": "www"}}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        *schema_cases(nginx_crd.DEFINITION, ["service.type", "service.port"], {}),
        *schema_cases(
            nginx_crd.DEFINITION,
            [
                "statusPort",
                "drainSeconds",
                "shutdownTimeoutSeconds",
                "workerProcesses",
                "workerConnections",
            ],
            {},
        ),
        pytest.param({"statusPort": 8080}, "spec.statusPort", id="statusPort=port"),
        pytest.param(
            {"mainSnippet": "env TZ;", "eventsSnippet": "multi_accept on;"}, None, id="snippets"
        ),
        pytest.param({"mainSnippet": ""}, "spec.mainSnippet", id="mainSnippet-empty"),
        pytest.param(
            {"tls": TLS, "certificates": [{"secretName": "b", "serverNames": ["*.b.example"]}]},
            None,
            id="certificates",
        ),
        pytest.param(
            {"certificates": [{"secretName": "b", "serverNames": ["b.example"]}]},
            "spec.certificates",
            id="certificates-without-tls",
        ),
        pytest.param(
            {"tls": TLS, "certificates": [{"secretName": "b", "serverNames": []}]},
            "spec.certificates[0].serverNames",
            id="certificates-no-name",
        ),
        pytest.param(
            {"tls": TLS, "certificates": [{"secretName": "b", "serverNames": ["B_x"]}]},
            "spec.certificates[0].serverNames[0]",
            id="certificates-bad-name",
        ),
        pytest.param({"tls": TLS, "httpRedirectPort": 8082}, None, id="redirect"),
        pytest.param({"httpRedirectPort": 8082}, "spec.httpRedirectPort", id="redirect-no-tls"),
        pytest.param(
            {"tls": TLS, "httpRedirectPort": 8081}, "spec.httpRedirectPort", id="redirect=status"
        ),
        pytest.param(
            {"tls": TLS, "httpRedirectPort": 8082, "service": {"port": 80}},
            "spec.service.port",
            id="redirect-service-80",
        ),
        pytest.param(
            {"extraVolumes": [{"name": "a", "secret": {"secretName": "s"}}]}, None, id="extra"
        ),
        pytest.param(
            {"extraVolumes": [{"name": "a"}]}, "spec.extraVolumes[0]", id="extra-no-source"
        ),
        pytest.param(
            {"extraVolumes": [{"name": "a", "configMap": {"name": "c"}}] * 2},
            "spec.extraVolumes",
            id="extra-twice",
        ),
        pytest.param(
            {"extraVolumes": [{"name": "A/b", "configMap": {"name": "c"}}]},
            "spec.extraVolumes[0].name",
            id="extra-bad-name",
        ),
        pytest.param(
            {"eventsSnippet": "worker_connections 10;"}, "spec.eventsSnippet", id="events-wc"
        ),
        pytest.param(
            {"config": "server { listen 8080; listen 8081; }"},
            "spec.config",
            id="config-listens-on-statusPort",
        ),
        pytest.param({"service": {"annotations": {"a": "b"}}}, None, id="annotations"),
        pytest.param(
            {"service": {"annotations": {"a": 1}}},
            "spec.service.annotations.a",
            id="annotation-int",
        ),
        pytest.param({"serviceType": "NodePort"}, None, id="deprecated-serviceType"),
        pytest.param(
            {"serviceType": "NodePort", "service": {"type": "NodePort"}},
            "spec.serviceType",
            id="serviceType-and-service.type",
        ),
        pytest.param({"serviceType": "NodePort", "service": {"port": 81}}, None, id="type+port"),
        pytest.param({"content": CM}, None, id="content-configmap"),
        pytest.param({"content": PVC}, None, id="content-pvc"),
        pytest.param({"content": {**CM, **PVC}}, "spec.content", id="content-both"),
        pytest.param({"content": {}}, "spec.content", id="content-neither"),
        pytest.param(
            {"content": {"configMapRef": {"name": "Bad_Name"}}},
            "spec.content.configMapRef.name",
            id="content-configmap-name",
        ),
        pytest.param(
            {"content": {"persistentVolumeClaim": {}}},
            "spec.content.persistentVolumeClaim.claimName",
            id="content-pvc-claim",
        ),
        # a listen in a comment is no listen; one before a comment on its line is
        pytest.param(
            {"config": "server {\n  # listen 8080;\n  listen 9090;\n}"},
            "spec.config",
            id="listen-commented-out",
        ),
        pytest.param(
            {"config": "server { listen 8080; # was: listen 9090\n}"},
            None,
            id="listen-then-comment",
        ),
        pytest.param(
            {"config": "server { listen 80; listen [::]:8080; }"}, None, id="listen-second"
        ),
        pytest.param(
            {"config": "server { listen 8080 # ssl\n; }", "tls": {"secretName": "c"}},
            "spec.config",
            id="ssl-commented-out",
        ),
        pytest.param(
            {"config": "server { proxy_listen 8080; }"}, "spec.config", id="listen-suffix-only"
        ),
        *schema_cases(nginx_crd.DEFINITION, ["metrics.port"], {}),
        *[
            pytest.param(
                {"metrics": {"serviceMonitor": {"interval": v}}}, field, id=f"interval={v}"
            )
            for v, field in [("30s", None), ("1m30s", None), ("30", INTERVAL), ("soon", INTERVAL)]
        ],
        pytest.param({"metrics": {"enabled": True}}, None, id="metrics"),
        pytest.param({"metrics": {"port": 8080}}, "spec.metrics.port", id="metrics-port=port"),
        pytest.param({"metrics": {"port": 8081}}, "spec.metrics.port", id="metrics=statusPort"),
        pytest.param(
            {"tls": TLS, "httpRedirectPort": 8082, "metrics": {"port": 8082}},
            "spec.metrics.port",
            id="metrics=redirect",
        ),
        pytest.param({"metrics": {"image": ""}}, "spec.metrics.image", id="metrics-image-empty"),
        pytest.param(
            {"metrics": {"serviceMonitor": {"enabled": True}}},
            "spec.metrics.serviceMonitor.enabled",
            id="servicemonitor-without-metrics",
        ),
        pytest.param(
            {"metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "interval": "1m"}}},
            None,
            id="servicemonitor",
        ),
    ],
)
def test_nginxserver_new_fields_admission(namespace, kubectl, spec, field):
    check_admission(kubectl, namespace, NGX, "NginxServer", spec, field)
