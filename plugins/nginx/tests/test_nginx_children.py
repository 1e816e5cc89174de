"""The NginxServer children as pure functions of the spec, and the CRD."""

import pytest
from minop_nginx import children, config
from minop_nginx.crd import DEFINITION

from minop.kit.crd import undocumented
from minop.kit.workloads import Instance

LABELS = {"app.kubernetes.io/instance": "web"}


def inst(spec):
    return Instance("web", "ns", spec, LABELS, LABELS, "img")


def deployment(spec, digest="h"):
    return children.deployment(inst(spec), config.files(spec), digest)


def template(spec, digest="h"):
    return deployment(spec, digest)["spec"]["template"]


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


def test_the_pods_own_nginx_checks_the_config_before_the_pod_serves():
    d = deployment({"resources": {"limits": {"memory": "64Mi"}}})
    pod = d["spec"]["template"]["spec"]
    [check], [main] = pod["initContainers"], pod["containers"]
    assert check["name"] == children.CHECK and check["image"] == main["image"] == "img"
    assert check["command"] == [*main["command"], "-t", "-q"]
    # the same files, user and limits as the server; its errors become its status message
    for key in ("volumeMounts", "securityContext", "resources", "terminationMessagePolicy"):
        assert check[key] == main[key], key
    assert check["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # a new pod must pass before an old one stops
    assert d["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_configmap_is_named_by_its_content_so_old_pods_keep_their_files():
    a, b = config.files({}), config.files({"healthcheckPath": "/up"})
    cm = children.configmap("web", a)
    assert cm["immutable"] is True and cm["data"] == a
    assert cm["metadata"]["name"].startswith("web-config-")
    assert children.configmap_name("web", a) != children.configmap_name("web", b)
    vols = {v["name"]: v for v in template({})["spec"]["volumes"]}
    assert vols["config"]["configMap"]["name"] == cm["metadata"]["name"]


def test_pods_spread_over_nodes_unless_the_spec_places_them():
    [spread] = template({})["spec"]["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"] == {"matchLabels": LABELS}
    affinity = {"nodeAffinity": {}}
    assert "topologySpreadConstraints" not in template({"affinity": affinity})["spec"]


@pytest.mark.parametrize(
    ("content", "source"),
    [
        ({"configMapRef": {"name": "site"}}, {"configMap": {"name": "site"}}),
        (
            {"persistentVolumeClaim": {"claimName": "www"}},
            {"persistentVolumeClaim": {"claimName": "www", "readOnly": True}},
        ),
    ],
)
def test_content_is_mounted_read_only_where_the_default_server_serves_from(content, source):
    pod = template({"content": content})["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["content"] == {"name": "content", **source}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts[config.CONTENT_DIR] == {
        "name": "content",
        "mountPath": config.CONTENT_DIR,
        "readOnly": True,
    }
    assert f"root {config.CONTENT_DIR};" in config.server_conf({})


def test_tls_and_config_map_ref_are_mounted_and_probed_over_https():
    pod = template({"tls": {"secretName": "cert"}, "configMapRef": {"name": "site"}})["spec"]
    c = pod["containers"][0]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts[config.TLS_DIR] == "tls" and mounts[config.USER_DIR] == "user-config"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["tls"]["secret"] == {"secretName": "cert"}  # every key, ca.crt too
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


@pytest.mark.parametrize(
    ("spec", "kind", "port", "name"),
    [
        ({}, "ClusterIP", 80, "http"),
        ({"port": 9000}, "ClusterIP", 80, "http"),  # the container's port stays behind it
        ({"tls": {"secretName": "c"}, "port": 8443}, "ClusterIP", 443, "https"),
        ({"service": {"type": "LoadBalancer", "port": 8000}}, "LoadBalancer", 8000, "http"),
        ({"serviceType": "NodePort"}, "NodePort", 80, "http"),  # deprecated spelling
    ],
)
def test_service_listens_on_80_or_443_mapped_to_the_named_container_port(spec, kind, port, name):
    svc = children.service(inst(spec))
    assert svc["spec"]["type"] == kind
    assert svc["spec"]["ports"] == [
        {"name": name, "port": port, "targetPort": "http", "protocol": "TCP"}
    ]
    assert "annotations" not in svc["metadata"]


def test_service_annotations():
    lb = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    svc = children.service(inst({"service": {"annotations": lb}}))
    assert svc["metadata"]["annotations"] == lb


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
