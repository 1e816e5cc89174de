"""Redis with spec.tls on KWOK: a missing TLS Secret (or one without ca.crt) is a
PermanentError naming spec.tls.secretName, the Secret is mounted in every container,
a renewed certificate rolls the pods (a new ControllerRevision), and the tls fields
are checked at admission. TLS itself (the ports, replication, Sentinels) runs in
plugins/redis/tests/test_redis_real_tls.py with real servers."""

from __future__ import annotations

import json

import pytest
from test_redis import (  # noqa: F401 (redis_crd: the fixture)
    apply_redis,
    condition,
    get,
    operator,
    redis_crd,
    revisions,
    wait_ready,
)

from minop.kit.testing import tls_secret_data, wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")
TLS = {"secretName": "cert"}
HASH = "minop.dev/tls-hash"


def put_secret(kubectl, ns: str, data: dict[str, str]) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "cert"},
        "stringData": data,
    }
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))


def degraded(kubectl, ns: str, text: str) -> dict:
    """The Degraded condition once its message says ``text``."""

    def found():
        c = condition(kubectl, ns, "r", "Degraded") or {}
        return c if c.get("status") == "True" and text in c.get("message", "") else None

    return wait_for(found, 30, f"Degraded: {text}")


def controller_revisions(kubectl, ns: str) -> set[str]:
    return {r["metadata"]["name"] for r in get(kubectl, ns, "controllerrevisions")["items"]}


def test_tls_secret_missing_incomplete_mounted_and_rotated(namespace, kubectl):
    ns = namespace
    with operator(ns):
        spec = {"replicas": 3, "tls": TLS, "sentinel": {"enabled": True}}
        assert apply_redis(kubectl, ns, "r", **spec).returncode == 0
        msg = degraded(kubectl, ns, "spec.tls.secretName")
        assert msg["reason"] == "PermanentError" and "Secret 'cert' not found" in msg["message"]
        assert condition(kubectl, ns, "r")["status"] == "False"
        assert get(kubectl, ns, "statefulset/r", missing_ok=True) is None  # nothing started

        # a Secret without ca.crt (e.g. from an ACME issuer) is named too
        files = tls_secret_data("r")
        put_secret(kubectl, ns, {k: files[k] for k in ("tls.crt", "tls.key")})
        msg = degraded(kubectl, ns, "ca.crt")
        assert "spec.tls.secretName: Secret 'cert' has no" in msg["message"]

        put_secret(kubectl, ns, files)  # complete: the object heals without a spec change
        wait_ready(kubectl, ns, "r")
        assert condition(kubectl, ns, "r", "Degraded")["status"] == "False"
        sts = get(kubectl, ns, "statefulset/r")
        template = sts["spec"]["template"]
        first = template["metadata"]["annotations"][HASH]
        volume = next(v for v in template["spec"]["volumes"] if v["name"] == "tls")
        assert volume["secret"] == {"secretName": "cert", "defaultMode": 0o440}
        pod = template["spec"]
        for c in pod["initContainers"] + pod["containers"]:  # config, redis, sentinel
            assert {"name": "tls", "mountPath": "/etc/redis-tls", "readOnly": True} in c[
                "volumeMounts"
            ], c["name"]
        env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
        assert env["REDIS_TLS_DIR"] == "/etc/redis-tls" and env["REDIS_TLS_AUTH_CLIENTS"] == "yes"
        svc = get(kubectl, ns, "service/r")["spec"]["ports"]
        assert [(p["name"], p["port"]) for p in svc] == [("redis", 6379)]  # names as without TLS

        # cert-manager renews the certificate: a new revision, every pod rolls onto it
        before, old = controller_revisions(kubectl, ns), set(revisions(kubectl, ns).values())
        put_secret(kubectl, ns, tls_secret_data("r"))

        def rolled():
            sts = get(kubectl, ns, "statefulset/r")
            revs = revisions(kubectl, ns)
            return (
                sts["spec"]["template"]["metadata"]["annotations"][HASH] != first
                and len(revs) == spec["replicas"]
                and not set(revs.values()) & old
                and set(revs.values()) <= controller_revisions(kubectl, ns) - before
            )

        # three real pods roll one at a time, the primary handing over first
        wait_for(rolled, 300, "the pods on a new ControllerRevision")
        wait_ready(kubectl, ns, "r")


@pytest.mark.apionly
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"tls": {}}, "spec.tls.secretName"),
        ({"tls": {"secretName": "Not_A_Name"}}, "spec.tls.secretName"),
        ({"tls": {"secretName": "cert", "clientAuth": "maybe"}}, "spec.tls.clientAuth"),
        ({"config": {"tls-auth-clients": "no"}}, "spec.config"),
        ({"config": {"tls-replication": "no"}}, "spec.config"),
    ],
)
def test_invalid_tls_settings_are_refused_naming_the_field(namespace, kubectl, spec, field):
    r = apply_redis(kubectl, namespace, "bad", **spec)
    assert r.returncode != 0 and field in r.stderr, r.stderr


@pytest.mark.apionly
def test_valid_tls_settings_are_accepted(namespace, kubectl):
    for name, tls in (("a", TLS), ("b", {**TLS, "clientAuth": False})):
        r = apply_redis(kubectl, namespace, name, tls=tls)
        assert r.returncode == 0, r.stderr
        stored = get(kubectl, namespace, f"redis/{name}")["spec"]["tls"]
        assert stored["clientAuth"] is tls.get("clientAuth", True)  # defaulted to true
