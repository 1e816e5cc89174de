"""What only pods that really run can prove for Redis (kind; skipped with "needs real
pods" on KWOK): it replicates, requires its password and persists across a pod's loss,
with every server version the images hold. The operator itself runs in-cluster from its
image, installed from config/ (minop.kit.e2e.incluster, the ``operator`` fixture), one
copy per test namespace.
Clients are other pods in the namespace (redis-cli), reaching the servers through their
Services' DNS names.
"""

from __future__ import annotations

from typing import Any

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import Kubectl, apply, run_in, wait
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]


def redis_with_password(kubectl: Kubectl, ns: str, pw: str, **spec: Any) -> None:
    """Redis ``r`` with the password from Secret ``pw``, 64Mi volumes, Ready."""
    kubectl("create", "secret", "generic", "pw", "-n", ns, f"--from-literal=password={pw}")
    spec = {"passwordSecretRef": {"name": "pw"}, "storage": {"size": "64Mi"}, **spec}
    apply(kubectl, ns, "cache.minop.dev/v1alpha1", "Redis", "r", **spec)
    wait(kubectl, ns, "redis/r", 300)


def test_redis_replicates_requires_its_password_and_keeps_data_across_pod_loss(
    namespace, kubectl, operator, client
):
    ns, pw = namespace, "s3cret-e2e"
    redis_with_password(kubectl, ns, pw, replicas=3)

    def cli(i: int, *args: str, auth: bool = True) -> str:
        host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
        creds = ["-a", pw, "--no-auth-warning"] if auth else []
        return client("redis-cli", "-h", host, *creds, *args).strip()

    assert cli(0, "SET", "greeting", "hello") == "OK"
    for i in (1, 2):
        wait_for(lambda i=i: cli(i, "GET", "greeting") == "hello", 30, f"key on r-{i}")
        assert "role:slave" in cli(i, "INFO", "replication")
    # without the password nothing is served
    assert "NOAUTH" in cli(0, "GET", "greeting", auth=False)
    wrong = client("redis-cli", "-h", f"r-0.r-headless.{ns}.svc.cluster.local", "-a", "x", "PING")
    assert "NOAUTH" in wrong and "PONG" not in wrong  # AUTH failed, so PING was refused

    # pod 1 is deleted: it comes back with the same claim, and with the data
    pvc_uid = get(kubectl, ns, "pvc/data-r-1")["metadata"]["uid"]
    old_uid = get(kubectl, ns, "pod/r-1")["metadata"]["uid"]
    kubectl("delete", "pod", "r-1", "-n", ns, "--wait=true")
    wait_for(
        lambda: get(kubectl, ns, "pod/r-1")["metadata"]["uid"] != old_uid,
        60,
        "r-1 recreated",
    )
    wait(kubectl, ns, "pod/r-1", 180)
    assert get(kubectl, ns, "pvc/data-r-1")["metadata"]["uid"] == pvc_uid
    vol = get(kubectl, ns, "pod/r-1")["spec"]["volumes"]
    assert {"claimName": "data-r-1"} in [v.get("persistentVolumeClaim") for v in vol]
    wait_for(lambda: cli(1, "GET", "greeting") == "hello", 60, "key on the new r-1")
    # the append-only file is in the volume (persistence.appendOnly defaults to true)
    listing = run_in(kubectl, ns, "r-0", "ls", "/data/appendonlydir")
    assert any(f.endswith(".aof") for f in listing.split()), listing
    assert "aof_enabled:1" in cli(0, "INFO", "persistence")  # clients may not CONFIG GET


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("minop/redis:6.0-bullseye", "redis_version:6.0."),
        ("minop/redis:8.0-trixie", "redis_version:8.0."),
        ("minop/valkey:8.1-trixie", "valkey_version:8.1."),
    ],
)
def test_redis_of_another_version_replicates_with_its_password(
    namespace, kubectl, operator, client, image, version
):
    """The Debian releases' servers (hack/kind/app-images.sh) run the generated files."""
    ns, pw = namespace, "versions-e2e"
    redis_with_password(kubectl, ns, pw, replicas=2, image=image)

    def cli(i: int, *args: str) -> str:
        host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
        return client("redis-cli", "-h", host, "-a", pw, "--no-auth-warning", *args).strip()

    assert version in cli(0, "INFO", "server")
    assert cli(0, "SET", "greeting", "hello") == "OK"
    wait_for(lambda: cli(1, "GET", "greeting") == "hello", 30, "the key on r-1")
    assert "role:slave" in cli(1, "INFO", "replication")
