"""NginxServer admission: every invalid spec is refused naming its field, every valid
one accepted (cases from the CRD's schema where it can generate them)."""

from __future__ import annotations

import minop_nginx.crd as nginx_crd
import pytest
from deployment_checks import check_admission, check_invalid, schema_cases
from test_nginx import GOOD, NGX

pytestmark = pytest.mark.usefixtures("plugin_crds")


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


CM, PVC = {"configMapRef": {"name": "site"}}, {"persistentVolumeClaim": {"claimName": "www"}}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        *schema_cases(nginx_crd.DEFINITION, ["service.type", "service.port"], {}),
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
    ],
)
def test_nginxserver_new_fields_admission(namespace, kubectl, spec, field):
    check_admission(kubectl, namespace, NGX, "NginxServer", spec, field)
