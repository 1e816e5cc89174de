"""The NginxServer children as pure functions of the spec, and the CRD."""

from minop_nginx import children, config
from minop_nginx.crd import DEFINITION

from minop.kit.crd import undocumented

LABELS = {"app.kubernetes.io/instance": "web"}


def template(spec, digest="h"):
    return children.deployment("web", spec, "img", LABELS, LABELS, digest)["spec"]["template"]


def test_pods_are_restricted_with_writable_scratch_dirs_only():
    pod = template({})["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 101,
        "runAsGroup": 101,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/cache/nginx", "/run"}
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert empty == {"tmp", "cache", "run"}


def test_command_reads_our_main_file_where_the_image_keeps_its_own():
    c = template({})["spec"]["containers"][0]
    assert c["command"] == [
        "nginx",
        "-c",
        "/etc/nginx/nginx.conf",
        "-e",
        "stderr",
        "-g",
        "daemon off;",
    ]
    main = next(m for m in c["volumeMounts"] if m["mountPath"] == config.CONF)
    assert main == {
        "name": "config",
        "mountPath": config.CONF,
        "subPath": "nginx.conf",
        "readOnly": True,
    }
    assert "include mime.types;" in config.main_conf({})  # the image's, beside nginx.conf


def test_probes_request_the_health_path_on_the_named_port():
    c = template({"port": 9000, "healthcheckPath": "/up"})["spec"]["containers"][0]
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/up", "port": "http", "scheme": "HTTP"}


def test_tls_and_config_map_ref_are_mounted_and_probed_over_https():
    pod = template({"tls": {"secretName": "cert"}, "configMapRef": {"name": "site"}})["spec"]
    c = pod["containers"][0]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts[config.TLS_DIR] == "tls" and mounts[config.USER_DIR] == "user-config"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["tls"]["secret"] == {"secretName": "cert"}
    assert vols["user-config"]["configMap"] == {"name": "site"}
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    files = config.files({"configMapRef": {"name": "site"}})
    assert (
        "server.conf" not in files and f"include {config.USER_DIR}/*.conf;" in files["nginx.conf"]
    )


def test_default_server_block_listens_with_ssl_under_tls():
    block = config.server_conf({"tls": {"secretName": "x"}, "port": 8443})
    assert "listen 8443 ssl;" in block and f"{config.TLS_DIR}/tls.crt" in block
    assert config.server_conf({"config": "server { listen 8080; }"}) == "server { listen 8080; }\n"


def test_config_hash_scheduling_and_resources_reach_the_pods():
    spec = {
        "tolerations": [{"key": "web", "operator": "Exists"}],
        "podAnnotations": {"a": "b", children.CONFIG_HASH: "user"},
        "resources": {"requests": {"memory": "0.5Gi", "cpu": "0.1"}},
    }
    t = template(spec, "abc")
    assert t["metadata"]["annotations"] == {"a": "b", children.CONFIG_HASH: "abc"}
    assert t["spec"]["tolerations"] == spec["tolerations"]
    resources = t["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"memory": "512Mi", "cpu": "100m"}}


def test_service_type_and_port():
    svc = children.service("web", {"serviceType": "NodePort", "port": 9000}, LABELS)
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_crd_documents_every_field_and_scales_on_replicas():
    version = DEFINITION["spec"]["versions"][0]
    assert undocumented(version["schema"]["openAPIV3Schema"]) == []
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Replicas",
        "Available",
        "Age",
    ]
    assert DEFINITION["spec"]["names"]["shortNames"] == ["ngx"]
