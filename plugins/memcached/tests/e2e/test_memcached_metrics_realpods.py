"""Metrics and SASL on real pods (kind): memcached_exporter, built here from the Go
module proxy into a FROM-scratch image, reports every pod through the <name>-metrics
Service; a memcached with `sasl` refuses a client without credentials."""

from __future__ import annotations

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import apply, first_through_service, wait
from minop.kit.e2e.pods import http_get_from as http_get

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]
MC = "cache.minop.dev/v1alpha1"


def test_memcached_metrics_are_scraped_through_the_metrics_service(
    namespace, kubectl, operator, client
):
    ns = namespace
    apply(kubectl, ns, MC, "Memcached", "mc", size=2, memoryLimitMB=48,
          resources={"limits": {"memory": "128Mi"}}, metrics={"enabled": True})  # fmt: skip
    wait(kubectl, ns, "memcached/mc", 180)
    # one item on the first pod only: its exporter reports 1 item, the other's 0
    first = get(kubectl, ns, "memcached/mc")["status"]["nodes"][0]
    ip = get(kubectl, ns, f"pod/{first}")["status"]["podIP"]
    script = (
        'exec 3<>"/dev/tcp/$0/11211"; printf "set k 0 0 1\\r\\nv\\r\\n" >&3; '
        "timeout 5 head -c 8 <&3"
    )
    assert client("timeout", "10", "bash", "-c", script, ip).startswith("STORED")
    seen: set[str] = set()

    def from_every_pod(out: str) -> bool:
        # the ClusterIP spreads connections: each pod's exporter answers in turn
        if "memcached_up 1" not in out or "memcached_limit_bytes 5.0331648e+07" not in out:
            return False  # not (yet) a sidecar of ours answering
        seen.update(
            line for line in out.splitlines() if line.startswith("memcached_current_items ")
        )
        return seen == {"memcached_current_items 0", "memcached_current_items 1"}

    first_through_service(
        lambda: http_get(client, f"mc-metrics.{ns}.svc.cluster.local", 9150, "/metrics"),
        from_every_pod,
        "/metrics of both pods",
    )


def test_sasl_refuses_a_client_without_credentials(namespace, kubectl, operator, client):
    ns = namespace
    kubectl("create", "secret", "generic", "creds", "-n", ns, "--type=kubernetes.io/basic-auth",
            "--from-literal=username=alice", "--from-literal=password=wonder")  # fmt: skip
    apply(kubectl, ns, MC, "Memcached", "mc", sasl={"secretName": "creds"})
    wait(kubectl, ns, "memcached/mc", 180)
    [pod] = get(kubectl, ns, "memcached/mc")["status"]["nodes"]
    ip = get(kubectl, ns, f"pod/{pod}")["status"]["podIP"]
    # a binary-protocol GET of key "k" without authenticating: the 24-byte response
    # header's status (bytes 6-7) is 0x0020, "Authentication error"
    get_k = r"\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00k"  # noqa: E501
    script = (
        'exec 3<>"/dev/tcp/$0/11211"; printf "$1" >&3; '
        "timeout 5 head -c 24 <&3 | od -An -v -tx1 | tr -s ' \\n' ' '"
    )
    header = client("timeout", "10", "bash", "-c", script, ip, get_k).split()
    assert header[:2] == ["81", "00"] and header[6:8] == ["00", "20"], header
    # nor does the text protocol answer (memcached -S leaves it unanswered)
    text = 'exec 3<>"/dev/tcp/$0/11211"; printf "stats\\r\\n" >&3; timeout 5 head -c 200 <&3 || :'
    out = client("timeout", "10", "bash", "-c", text, ip)
    assert "STAT" not in out, out
