"""The Memcached children as pure functions of the spec, and the CRD."""

from minop_memcached import children, hooks
from minop_memcached.crd import DEFINITION

from minop.kit import workloads as wl
from minop.kit.crd import undocumented
from minop.kit.workloads import Instance, rollout_pending

LABELS = {"app.kubernetes.io/instance": "mc", "app.kubernetes.io/part-of": "memcached"}
SELECTOR = {"app.kubernetes.io/instance": "mc"}


def inst(spec, image="memcached:1"):
    return Instance("mc", "ns", spec, LABELS, SELECTOR, image)


def pod_of(spec, image="memcached:1"):
    return children.workload(inst(spec, image))["spec"]["template"]


def test_command_line_carries_memory_connections_and_port():
    spec = {"memoryLimitMB": 128, "maxConnections": 50, "port": 11311}
    assert children.command(spec) == [
        "memcached", "-m", "128", "-c", "50", "-p", "11311", "-U", "0"
    ]  # fmt: skip
    assert children.command({}) == [
        "memcached", "-m", "64", "-c", "1024", "-p", "11211", "-U", "0"
    ]  # fmt: skip


def test_item_size_threads_and_verbosity_are_added_only_when_set():
    spec = {"maxItemSizeMB": 4, "threads": 8, "verbosity": 2}
    assert children.command(spec)[-5:] == ["-I", "4m", "-t", "8", "-vv"]
    assert "-v" not in " ".join(children.command({"verbosity": 0}))


def test_pods_spread_over_nodes_by_default():
    [spread] = pod_of({})["spec"]["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"] == {"matchLabels": SELECTOR}


def test_pods_are_restricted_with_numeric_user_and_tcp_probes():
    pod = pod_of({"port": 11311})["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 11211,
        "runAsGroup": 11211,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert pod["automountServiceAccountToken"] is False
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["tcpSocket"] == {"port": 11311}
    assert c["ports"] == [{"name": "memcached", "containerPort": 11311, "protocol": "TCP"}]


def test_size_image_and_scheduling_reach_the_deployment():
    spec = {
        "size": 3,
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "cache", "operator": "Exists"}],
        "priorityClassName": "high",
        "imagePullSecrets": [{"name": "regcred"}],
        "affinity": {"podAntiAffinity": {}},
        "topologySpreadConstraints": [{"maxSkew": 1}],
        "podAnnotations": {"a": "b"},
        "podLabels": {"team": "x", "app.kubernetes.io/instance": "hijack"},
    }
    d = children.workload(inst(spec, "memcached:9"))
    template = d["spec"]["template"]
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert template["spec"]["containers"][0]["image"] == "memcached:9"
    for field in ("nodeSelector", "tolerations", "priorityClassName", "imagePullSecrets"):
        assert template["spec"][field] == spec[field]
    assert template["spec"]["affinity"] == spec["affinity"]
    assert template["metadata"]["annotations"] == {"a": "b"}
    # the user's labels are added, ours win
    assert template["metadata"]["labels"] == {**LABELS, "team": "x"}


def test_resources_are_canonical_so_converged_objects_cost_no_writes():
    spec = {"resources": {"limits": {"memory": "1024Mi", "cpu": "0.5"}, "requests": {"cpu": 1}}}
    c = pod_of(spec)["spec"]["containers"][0]
    assert c["resources"] == {"limits": {"memory": "1Gi", "cpu": "500m"}, "requests": {"cpu": "1"}}


def test_service_is_headless_on_the_port():
    svc = children.service(inst({"port": 11311}))
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == SELECTOR
    assert svc["spec"]["ports"] == [
        {"name": "memcached", "port": 11311, "targetPort": "memcached", "protocol": "TCP"}
    ]


def test_crd_documents_every_field_and_scales_on_size():
    version = DEFINITION["spec"]["versions"][0]
    assert undocumented(version["schema"]["openAPIV3Schema"]) == []
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.size",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Size", "Ready", "Age"]
    assert DEFINITION["spec"]["names"]["shortNames"] == ["mc"]


def deployment_status(generation=2, observed=2, replicas=3, updated=3, available=3):
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


def test_rollout_pending_follows_kubectl_rollout_status():
    assert rollout_pending(None, 1) == "Deployment not created yet"
    assert "latest spec" in rollout_pending(deployment_status(observed=1), 3)
    assert rollout_pending(deployment_status(updated=1, replicas=4), 3) == "1/3 pods updated"
    assert rollout_pending(deployment_status(replicas=4), 3) == "1 old pods terminating"
    assert rollout_pending(deployment_status(available=2), 3) == "2/3 updated pods available"
    assert rollout_pending(deployment_status(), 3) is None
    assert (
        rollout_pending({"metadata": {"generation": 1}, "status": {"observedGeneration": 1}}, 0)
        is None
    )


def test_stable_names_run_the_same_pods_as_a_statefulset_under_the_headless_service():
    spec = {"size": 3, "stableNames": True, "port": 11311}
    sts = children.workload(inst(spec))
    assert sts["kind"] == "StatefulSet" and sts["metadata"]["name"] == "mc"
    assert sts["spec"]["serviceName"] == children.service(inst(spec))["metadata"]["name"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"  # no ordering to wait for
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert (
        sts["spec"]["template"]
        == children.workload(inst({**spec, "stableNames": False}))["spec"]["template"]
    )
    assert children.servers(inst(spec)) == [
        f"mc-{i}.mc.ns.svc:11311" for i in range(3)
    ]  # what clients list
    assert children.servers(inst({"size": 3})) == []


def test_a_stopping_pod_serves_through_its_drain():
    for spec, drain in (({}, 10), ({"drainSeconds": 3}, 3)):
        pod = pod_of(spec)["spec"]
        assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": drain}}}
        assert pod["terminationGracePeriodSeconds"] == drain + 10
    assert "lifecycle" not in pod_of({"drainSeconds": 0})["spec"]["containers"][0]


def test_network_policy_admits_only_the_named_clients_on_the_port():
    web = {"podSelector": {"matchLabels": {"app": "web"}}}
    policy = children.network_policy(inst({"port": 11311, "networkPolicy": {"from": [web]}}))
    assert policy["apiVersion"] == "networking.k8s.io/v1" and policy["kind"] == "NetworkPolicy"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [web], "ports": [{"protocol": "TCP", "port": 11311}]}],
    }
    nobody = children.network_policy(inst({"networkPolicy": {}}))
    assert nobody["spec"]["ingress"] == []


def test_sasl_turns_on_authentication_with_the_secrets_credentials():
    pod = pod_of({"sasl": {"secretName": "creds"}})["spec"]
    [init], [c] = pod["initContainers"], pod["containers"]
    assert c["command"][-1] == "-S"
    assert {e["name"]: e["value"] for e in c["env"]} == {
        "SASL_CONF_PATH": children.SASL_DIR,
        "MEMCACHED_SASL_PWDB": children.PWDB,
    }
    assert init["command"] == ["/bin/sh", "-c", children.pwdb_script()]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["sasl"]["emptyDir"]["medium"] == "Memory"  # the password never hits a disk
    assert vols["sasl-secret"]["secret"]["secretName"] == "creds"
    [resource] = hooks.minop_resources()
    [related] = resource.related
    body = {"metadata": {"name": "mc"}, "spec": {"sasl": {"secretName": "creds"}}}
    assert related.kind.kind == "Secret" and related.names(body) == ["creds"]
    assert "-S" not in children.command({})


def test_size_is_bounded_by_what_the_status_can_list_not_ten():
    spec = DEFINITION["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["size"]["maximum"] == 1000


def test_warm_restart_keeps_the_memory_file_on_a_memory_volume_of_the_pod():
    pod = pod_of({"warmRestart": True, "memoryLimitMB": 128})["spec"]
    c = pod["containers"][0]
    argv = children.command({"warmRestart": True, "memoryLimitMB": 128})
    assert c["command"] == wl.stop_signal("USR1", argv)
    assert argv[-2:] == ["-e", "/var/lib/memcached/memory_file"]
    assert c["volumeMounts"] == [{"name": "memory", "mountPath": "/var/lib/memcached"}]
    assert pod["volumes"] == [
        {"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": "136Mi"}}
    ]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # the drain stays the kubelet's own sleep: the shell turns its SIGTERM into the save
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}


def test_without_warm_restart_memcached_is_the_command_itself():
    c = pod_of({})["spec"]["containers"][0]
    assert c["command"] == children.command({})
    assert "-e" not in c["command"] and "volumeMounts" not in c


def test_warm_restart_and_sasl_mount_both():
    c = pod_of({"warmRestart": True, "sasl": {"secretName": "s"}})["spec"]["containers"][0]
    assert [m["name"] for m in c["volumeMounts"]] == ["memory", "sasl"]
