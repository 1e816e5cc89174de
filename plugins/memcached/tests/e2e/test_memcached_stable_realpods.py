"""Memcached's stable names keep a client's key placement when a pod is replaced
(kind; skipped with "needs real pods" on KWOK). The client is a pod in the namespace
placing keys by the names in status.servers, as a hashing client does; the operator
runs in-cluster (the ``operator`` fixture)."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import apply, wait
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
MC = "cache.minop.dev/v1alpha1"


def memcached(run: Callable[..., str], server: str, command: str) -> str:
    """One ASCII command to ``server`` (host:port) through bash's /dev/tcp; the reply."""
    host, port = server.rsplit(":", 1)
    script = 'exec 3<>"/dev/tcp/$0/$1" && printf "%s\\r\\nquit\\r\\n" "$2" >&3 && timeout 5 cat <&3'
    return run("timeout", "10", "bash", "-c", script, host, port, command).replace("\r", "")


def test_memcached_stable_names_keep_key_placement_across_a_pod_replacement(
    namespace, kubectl, client
):
    ns = namespace
    apply(kubectl, ns, MC, "Memcached", "mc", size=3, stableNames=True)
    wait(kubectl, ns, "memcached/mc", 240)
    servers = get(kubectl, ns, "memcached/mc")["status"]["servers"]
    assert servers == [f"mc-{i}.mc.{ns}.svc:11211" for i in range(3)]

    def server_of(key: str) -> str:  # what a hashing client does with the list of names
        return servers[zlib.crc32(key.encode()) % len(servers)]

    keys = [f"key-{i}" for i in range(30)]
    for key in keys:
        wait_for(
            lambda key=key: memcached(client, server_of(key), f"set {key} 0 0 1\r\nv").startswith(
                "STORED"
            ),
            60,
            f"{key} stored",
        )
    replaced = servers[1]
    old_uid = get(kubectl, ns, "pod/mc-1")["metadata"]["uid"]
    kubectl("delete", "pod", "mc-1", "-n", ns, "--wait=true")
    wait_for(lambda: get(kubectl, ns, "pod/mc-1")["metadata"]["uid"] != old_uid, 60, "new mc-1")
    wait(kubectl, ns, "pod/mc-1", 180)
    wait(kubectl, ns, "memcached/mc", 120)

    # the same names: every key still maps to the server it was stored on
    assert get(kubectl, ns, "memcached/mc")["status"]["servers"] == servers
    for key in keys:
        reply = memcached(client, server_of(key), f"get {key}")
        if server_of(key) == replaced:  # the new pod started empty, under the same name
            assert reply.startswith("END"), reply
        else:  # the other pods kept theirs: nothing moved
            assert reply.startswith(f"VALUE {key} 0 1\nv\nEND"), reply
    assert memcached(client, replaced, "set again 0 0 1\r\nv").startswith("STORED")
