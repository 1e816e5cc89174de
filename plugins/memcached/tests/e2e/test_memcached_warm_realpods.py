"""warmRestart on a real pod (kind): the memcached container stopped as the kubelet stops
it (SIGTERM to its pid 1) and restarted by the kubelet serves the item it held."""

from __future__ import annotations

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import apply, wait
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]

# a request, then at most $2 bytes of the answer (what came within 5 s)
TALK = 'exec 3<>"/dev/tcp/$0/11211"; printf "$1" >&3; timeout 5 head -c "$2" <&3 || :'


def restarts(kubectl, ns: str, pod: str) -> int:
    statuses = get(kubectl, ns, f"pod/{pod}")["status"].get("containerStatuses") or []
    return next(s["restartCount"] for s in statuses if s["name"] == "memcached")


def test_a_restarted_container_serves_its_items_again(namespace, kubectl, operator, client):
    ns = namespace
    apply(kubectl, ns, "cache.minop.dev/v1alpha1", "Memcached", "mc", warmRestart=True,
          resources={"limits": {"memory": "160Mi"}})  # fmt: skip
    wait(kubectl, ns, "memcached/mc", 180)
    [pod] = get(kubectl, ns, "memcached/mc")["status"]["nodes"]
    ip = get(kubectl, ns, f"pod/{pod}")["status"]["podIP"]
    set_k = client("timeout", "10", "bash", "-c", TALK, ip, "set k 0 0 4\\r\\nwarm\\r\\n", "8")
    assert set_k.startswith("STORED"), set_k
    before = restarts(kubectl, ns, pod)
    # the kubelet's stop signal, to pid 1 (the exec may end with the container)
    kubectl("exec", "-n", ns, pod, "-c", "memcached", "--", "sh", "-c", "kill 1", check=False)
    wait_for(lambda: restarts(kubectl, ns, pod) > before, 120, "the container restarted")
    wait(kubectl, ns, f"pod/{pod}", 120)
    # asked until it answers (a CI run once read nothing within 5 s right after Ready);
    # the item itself must be there: a cold start answers END at once
    want = ["VALUE", "k", "0", "4", "warm", "END"]  # kubectl drops \r

    def answer() -> list[str]:
        return client("timeout", "10", "bash", "-c", TALK, ip, "get k\\r\\n", "24").split()

    got = wait_for(lambda: answer() or None, 30, "an answer to get k", 1)
    assert got == want, got
