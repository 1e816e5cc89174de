"""A Redis with failover whose primary moved away from pod 0 (kind, real pods): a cold
start (every pod deleted at once) keeps that primary and every acknowledged write, and
a rollout hands the primary over to pod 0 before it replaces any pod, then replaces
pod 0 last. The same on local processes, precisely: test_redis_real_rollout.py (the
order) and the nemesis (cold starts with a stale pod 0)."""

from __future__ import annotations

import json

import pytest
from test_redis_realpods import redis_with_password

from minop.kit.e2e.deployment import get
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
PW = "rollout-e2e"
KEYS = 100


def test_cold_start_and_rollout_after_the_primary_left_pod_0(namespace, kubectl, client):
    ns = namespace
    redis_with_password(kubectl, ns, PW, replicas=3, sentinel={"enabled": True})

    def cli(*args: str, stdin: str = "", host: str = "r") -> str:
        """redis-cli in the client pod, given up after 15 s as a client would; its
        output, also when it fails (a pod restarting): the callers wait for an answer."""
        cmd = ["timeout", "15", "redis-cli", "-h", host, "-a", PW, "--no-auth-warning", *args]
        script = 'printf "%s" "$0" | "$@" || true'
        return client("bash", "-c", script, stdin, *cmd).strip()

    def primary() -> str | None:
        return (get(kubectl, ns, "redis/r").get("status") or {}).get("primary")

    def ready(n: int = 3) -> None:
        kubectl("wait", f"--for=jsonpath={{.status.readyReplicas}}={n}", "statefulset/r",
                "-n", ns, "--timeout=300s", timeout=330)  # fmt: skip

    def acknowledged(batch: str) -> None:
        """KEYS writes through the Service, each acknowledged by both replicas (WAIT)."""
        sets = "".join(f"SET {batch}-{i} v{i}\n" for i in range(KEYS)) + "WAIT 2 10000\n"
        wait_for(lambda: cli(stdin=sets).splitlines() == ["OK"] * KEYS + ["2"], 120,
                 f"{batch}: writes acknowledged by both replicas", 2)  # fmt: skip

    def present(*batches: str) -> None:
        for b in batches:
            got = cli("MGET", *(f"{b}-{i}" for i in range(KEYS))).splitlines()
            assert got == [f"v{i}" for i in range(KEYS)], f"{b}: {got.count('')} keys lost"

    def reasons() -> list[str]:
        out = kubectl("get", "events", "-n", ns, "--field-selector=involvedObject.name=r",
                      "-o", "json").stdout  # fmt: skip
        return [e["reason"] for e in json.loads(out)["items"]]

    wait_for(lambda: primary() == "r-0", 120, "r-0 primary", 1)
    # the primary's pod deleted: it hands over (preStop) and comes back a replica
    kubectl("delete", "pod", "r-0", "-n", ns, "--wait=false")
    wait_for(lambda: primary() in ("r-1", "r-2"), 120, "a new primary", 1)
    moved = primary()
    ready()
    acknowledged("a")

    # cold start: every pod at once, none handing over (no Sentinel left to ask)
    def uids() -> set[str]:
        out = kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=r",
                      "-o", "jsonpath={.items[*].metadata.uid}").stdout  # fmt: skip
        return set(out.split())

    old = uids()
    kubectl("delete", "pods", "-l", "app.kubernetes.io/instance=r", "-n", ns,
            "--grace-period=0", "--force", "--wait=false")  # fmt: skip
    wait_for(lambda: len(uids() - old) == 3, 120, "three new pods", 1)
    kubectl("wait", "--for=condition=Ready", "pods", "-l", "app.kubernetes.io/instance=r",
            "-n", ns, "--timeout=300s", timeout=330)  # fmt: skip

    def masters() -> list[str]:
        """The pods that report the master role themselves."""
        out = []
        for i in range(3):
            role = cli("ROLE", host=f"r-{i}.r-headless.{ns}.svc.cluster.local").split()
            if role[:1] == ["master"]:
                out.append(f"r-{i}")
        return out

    wait_for(lambda: len(masters()) == 1, 120, "one primary after the cold start", 1)
    assert masters() == [moved], "the cold start chose another primary than the newest"
    present("a")
    acknowledged("b")

    # a rollout (the pod template changes): the primary hands over to r-0 first
    kubectl("patch", "redis", "r", "-n", ns, "--type=merge",
            "-p", '{"spec":{"podAnnotations":{"example.com/rolled":"1"}}}')  # fmt: skip
    wait_for(lambda: "HandedOverFirst" in reasons(), 120, "the hand-over to r-0 first", 1)
    # (status follows the Event within the same pass) r-0 stays primary until the
    # StatefulSet replaces it, last
    wait_for(lambda: primary() == "r-0", 30, "r-0 primary after the hand-over", 1)
    # the partition released (the next pass), then the rollout in the StatefulSet's order
    kubectl("wait", "--for=jsonpath={.spec.updateStrategy.rollingUpdate.partition}=0",
            "statefulset/r", "-n", ns, "--timeout=60s", timeout=90)  # fmt: skip
    kubectl("rollout", "status", "statefulset/r", "-n", ns, "--timeout=600s", timeout=630)
    ready()
    # r-0 replaced last: its hand-over promoted a pod already replaced
    wait_for(lambda: primary() in ("r-1", "r-2"), 120, "a replaced pod primary", 1)
    present("a", "b")
