"""spec.tls in the objects a user sees: the Secret mounted in every container, the
environment init.sh and the probes read, the pod-template annotation that rolls the
pods, the CRD; and the operator's reading of the Secret (no cluster)."""

from __future__ import annotations

import base64
import ssl

import pytest
from minop_redis import children, hooks, services, tls
from minop_redis.crd import DEFINITION
from test_redis_children import inst

import minop
from minop.kit.testing import FakeContext, tls_secret_data

TLS = {"secretName": "cert"}


def pod(**spec):
    sts = children.statefulset(
        inst(**spec),
        config_hash="c",
        auth_hash="a",
        claim_size="1Gi",
        storage_class=None,
        tls_hash="t1" if spec.get("tls") else None,
    )
    return sts["spec"]["template"]


def test_the_secret_is_mounted_whole_in_every_container_and_its_hash_rolls_the_pods():
    template = pod(replicas=3, tls=TLS, sentinel={"enabled": True})
    assert template["metadata"]["annotations"][tls.HASH] == "t1"
    spec = template["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    # every key (no items): tls.crt, tls.key, ca.crt; readable by the pods' group only
    assert volume["secret"] == {"secretName": "cert", "defaultMode": 0o440}
    containers = spec["initContainers"] + spec["containers"]
    assert [c["name"] for c in containers] == ["config", "redis", "sentinel"]
    for c in containers:
        mount = next(m for m in c["volumeMounts"] if m["name"] == "tls")
        assert mount == {"name": "tls", "mountPath": "/etc/redis-tls", "readOnly": True}
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["REDIS_TLS_DIR"] == "/etc/redis-tls", c["name"]
        assert env["REDIS_TLS_AUTH_CLIENTS"] == "yes"  # clientAuth defaults to true
    # the probes speak TLS when the directory is set (init.sh writes tls-port, port 0)
    redis = spec["containers"][0]
    assert "$tls" in redis["readinessProbe"]["exec"]["command"][-1]
    assert "--tls --cacert $d/ca.crt" in redis["livenessProbe"]["exec"]["command"][-1]


def test_client_auth_off_and_no_tls_at_all():
    init = pod(tls={**TLS, "clientAuth": False})["spec"]["initContainers"][0]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["REDIS_TLS_AUTH_CLIENTS"] == "no"
    plain = pod()
    assert tls.HASH not in plain["metadata"]["annotations"]
    assert all(v["name"] != "tls" for v in plain["spec"]["volumes"])
    assert all("REDIS_TLS_DIR" not in str(c["env"]) for c in plain["spec"]["containers"])


def test_service_ports_keep_their_names_with_tls():
    i = inst(replicas=3, tls=TLS, sentinel={"enabled": True})
    assert [p["name"] for p in services.headless_service(i)["spec"]["ports"]] == [
        "redis",
        "sentinel",
    ]
    assert services.client_service(i)["spec"]["ports"][0] == {
        "name": "redis",
        "port": 6379,
        "targetPort": "redis",
        "protocol": "TCP",
    }


def test_crd_tls_fields():
    spec = DEFINITION["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    schema = spec["properties"]["tls"]
    assert schema["required"] == ["secretName"]
    assert schema["properties"]["clientAuth"]["default"] is True
    assert "pattern" in schema["properties"]["secretName"]  # an object name


def secret(data):
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert"}, "data": encoded}


def hook_context(spec, *objects):
    [resource] = hooks.minop_resources()
    return FakeContext(resource, spec, name="r", objects=objects)


def test_a_missing_secret_or_key_is_a_permanent_error_naming_the_field():
    ctx = hook_context({"tls": TLS})
    with pytest.raises(minop.PermanentError, match=r"spec\.tls\.secretName: Secret 'cert' not"):
        tls.material(ctx)
    ctx = hook_context({"tls": TLS}, secret({"tls.crt": "c", "tls.key": "k"}))
    with pytest.raises(minop.PermanentError, match=r"spec\.tls\.secretName: .* no .*ca\.crt"):
        tls.material(ctx)
    assert tls.material(hook_context({})) is None  # no TLS: nothing to read


def test_the_secret_is_read_once_per_content_and_referenced_for_watching():
    files = tls_secret_data("r")
    ctx = hook_context({"tls": TLS, "passwordSecretRef": {"name": "pw"}}, secret(files))
    first = tls.material(ctx)
    assert first is not None and first.ca == files["ca.crt"].encode()
    assert tls.material(ctx) is first and ctx.reads == ["cert"]  # cached by content hash
    ctx.put(secret(tls_secret_data("r")))  # renewed: another hash, read again
    renewed = tls.material(ctx)
    assert renewed is not None and renewed.hash != first.hash and ctx.reads == ["cert"] * 2
    # the core watches both Secrets: a change of either re-runs the reconcile
    assert hooks._user_secrets({"spec": ctx.spec}) == ["pw", "cert"]
    # the operator's TLS to the pods: the CA verifies them, with clientAuth it presents
    # the certificate (loaded: the key matches it)
    context = tls.client_context(renewed, True)
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname


def test_a_missing_secret_fails_the_update_once_and_the_failover_timer_stays_quiet():
    ctx = hook_context({"replicas": 3, "tls": TLS, "sentinel": {"enabled": True}})
    with pytest.raises(minop.PermanentError, match=r"spec\.tls\.secretName"):
        hooks.minop_update(ctx)  # reported as Degraded (PermanentError) by the core
    assert ctx.applied == []  # nothing changed while the Secret is missing
    # the timer (every 2 s) adds no TimerFailed Event: the update re-runs on the Secret
    assert hooks.minop_timer(ctx) is None
    assert ctx.events == []
