"""The NginxServer children as pure functions of the spec, and the CRD."""

import pytest
from minop_nginx import children, config, hooks
from minop_nginx.crd import DEFINITION

from minop.kit import workloads as wl
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
    nginx = ["nginx", "-c", "/etc/nginx/nginx.conf", "-e", "stderr", "-g", "daemon off;"]
    # the kubelet's stop signal becomes SIGQUIT: a graceful stop whatever the image says
    assert c["command"] == wl.stop_signal("QUIT", nginx)
    main = next(m for m in c["volumeMounts"] if m["mountPath"] == config.CONF)
    assert main == {
        "name": "config",
        "mountPath": config.CONF,
        "subPath": "nginx.conf",
        "readOnly": True,
    }
    assert "include mime.types;" in config.main_conf({})  # the image's, beside nginx.conf


def test_readiness_requests_the_health_path_and_liveness_nginx_own_status_server():
    c = template({"port": 9000, "healthcheckPath": "/up", "statusPort": 9001})["spec"]
    c = c["containers"][0]
    assert c["ports"] == [
        {"name": "http", "containerPort": 9000, "protocol": "TCP"},
        {"name": "status", "containerPort": 9001, "protocol": "TCP"},
    ]
    assert c["readinessProbe"]["httpGet"] == {"path": "/up", "port": "http", "scheme": "HTTP"}
    # the health path may be proxied: an upstream outage must not restart the pods
    live = c["livenessProbe"]["httpGet"]
    assert live == {"path": "/livez", "port": "status", "scheme": "HTTP"}
    assert "listen 9001;" in config.main_conf({"statusPort": 9001})


@pytest.mark.parametrize(
    ("spec", "drain", "grace"),
    [({}, 10, 45), ({"drainSeconds": 0, "shutdownTimeoutSeconds": 5}, 0, 10)],
)
def test_a_stopping_pod_drains_then_quits_gracefully_within_its_grace_period(spec, drain, grace):
    pod = template(spec)["spec"]
    # the kubelet's own sleep, then its SIGTERM (SIGQUIT for nginx: see the command)
    lifecycle = pod["containers"][0].get("lifecycle")
    assert lifecycle == ({"preStop": {"sleep": {"seconds": drain}}} if drain else None)
    assert pod["terminationGracePeriodSeconds"] == grace
    timeout = spec.get("shutdownTimeoutSeconds", 30)
    assert f"worker_shutdown_timeout {timeout}s;" in config.main_conf(spec)


@pytest.mark.parametrize(
    ("spec", "workers"),
    [
        ({}, "auto"),
        ({"resources": {"limits": {"cpu": "1500m"}, "requests": {"cpu": "100m"}}}, "2"),
        ({"resources": {"requests": {"cpu": "0.25"}}}, "1"),
        ({"workerProcesses": 3, "resources": {"limits": {"cpu": "8"}}}, "3"),
    ],
)
def test_worker_processes_follow_the_cpu_limit_not_the_node(spec, workers):
    assert f"\nworker_processes {workers};\n" in "\n" + config.main_conf(spec)


def test_main_and_events_contexts_are_settable():
    conf = config.main_conf(
        {
            "workerConnections": 4096,
            "mainSnippet": "load_module modules/x.so;\nstream { }",
            "eventsSnippet": "multi_accept on;",
        }
    )
    assert conf.startswith("load_module modules/x.so;\nstream { }\nworker_processes ")
    assert "events {\n    worker_connections 4096;\n    multi_accept on;\n}" in conf


def test_the_pods_own_nginx_checks_the_config_before_the_pod_serves():
    d = deployment({"resources": {"limits": {"memory": "64Mi"}}})
    pod = d["spec"]["template"]["spec"]
    [check], [main] = pod["initContainers"], pod["containers"]
    assert check["name"] == children.CHECK and check["image"] == main["image"] == "img"
    assert main["command"] == wl.stop_signal("QUIT", check["command"][:-2])
    assert check["command"][-2:] == ["-t", "-q"]
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


def test_certificates_by_server_name_are_mounted_and_served_by_the_default_block():
    spec = {
        "tls": {"secretName": "main"},
        "port": 8443,
        "certificates": [{"secretName": "shop", "serverNames": ["shop.example", "*.shop.example"]}],
    }
    pod = template(spec)["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    shop = mounts["/etc/nginx/certs/shop"]
    assert shop["readOnly"] is True and vols[shop["name"]]["secret"] == {"secretName": "shop"}
    block = config.server_conf(spec)
    assert "server_name shop.example *.shop.example;" in block
    assert "ssl_certificate /etc/nginx/certs/shop/tls.crt;" in block
    assert "ssl_certificate /etc/nginx/tls/tls.crt;" in block  # every other name
    assert block.count("listen 8443 ssl;") == 2
    assert watched(spec)["Secret"] == ["main", "shop"]  # a renewal rolls the pods


def test_http_redirects_to_https_on_its_own_port_and_the_services_port_80():
    spec = {"tls": {"secretName": "c"}, "port": 8443, "httpRedirectPort": 8080}
    c = template(spec)["spec"]["containers"][0]
    assert {"name": "redirect", "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    ports = children.service(inst(spec))["spec"]["ports"]
    assert ports == [
        {"name": "https", "port": 443, "targetPort": "http", "protocol": "TCP"},
        {"name": "http", "port": 80, "targetPort": "redirect", "protocol": "TCP"},
    ]
    assert "return 301 https://$host$request_uri;" in config.main_conf(spec)
    other = {**spec, "service": {"port": 8443}}
    assert "return 301 https://$host:8443$request_uri;" in config.main_conf(other)
    assert "301" not in config.main_conf({"tls": {"secretName": "c"}})


def test_extra_volumes_are_mounted_read_only_by_name():
    spec = {
        "extraVolumes": [
            {"name": "htpasswd", "secret": {"secretName": "users"}},
            {"name": "njs", "configMap": {"name": "scripts"}},
        ]
    }
    pod = template(spec)["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    for path, source in (
        ("/etc/nginx/extra/htpasswd", {"secret": {"secretName": "users"}}),
        ("/etc/nginx/extra/njs", {"configMap": {"name": "scripts"}}),
    ):
        assert mounts[path]["readOnly"] is True
        vol = vols[mounts[path]["name"]]
        assert {k: v for k, v in vol.items() if k != "name"} == source
    # both roll the pods when edited: the operator watches them by name
    related = watched(spec)
    assert "users" in related["Secret"] and "scripts" in related["ConfigMap"]


def watched(spec):
    """The referenced objects' names by kind, over every Related (the core merges them)."""
    [resource] = hooks.minop_resources()
    out: dict[str, list[str]] = {}
    for r in resource.related:
        out.setdefault(r.kind.kind, []).extend(r.names(spec_body(spec)))
    return out


def spec_body(spec):
    return {"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}


def test_every_object_the_pods_read_is_watched_as_related():
    (resource,) = hooks.minop_resources()
    body = {
        "spec": {
            "configMapRef": {"name": "conf"},
            "tls": {"secretName": "cert"},
            "content": {"configMapRef": {"name": "site"}},
        }
    }
    named = sorted((rel.kind.kind, n) for rel in resource.related for n in rel.names(body))
    assert named == [("ConfigMap", "conf"), ("ConfigMap", "site"), ("Secret", "cert")]
    assert [n for rel in resource.related for n in rel.names({"spec": {}})] == []
