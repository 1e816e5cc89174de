from minop_memcached import children
from minop_memcached.crd import DEFINITION

from minop.crd import undocumented

LABELS = {"app.kubernetes.io/instance": "mc"}


def test_deployment_runs_memcached_restricted_with_tcp_probes():
    spec = {
        "size": 3,
        "memoryLimitMB": 128,
        "maxConnections": 50,
        "port": 11311,
        "nodeSelector": {"disk": "ssd"},
        "podAnnotations": {"a": "b"},
    }
    d = children.deployment("mc", spec, "memcached:1", LABELS, LABELS)
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert d["spec"]["replicas"] == 3
    assert c["command"] == ["memcached", "-m", "128", "-c", "50", "-p", "11311", "-U", "0"]
    assert c["readinessProbe"]["tcpSocket"]["port"] == 11311
    assert pod["securityContext"]["runAsUser"] == 11211 and pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert d["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}


def test_every_crd_field_is_documented():
    schema = DEFINITION["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undocumented(schema) == []
