"""A NetworkPolicy for a workload's pods, from one ``networkPolicy`` spec field: only
the clients it names reach the service ports; the pods themselves (replication,
gossip), the operator (a plugin that talks to its pods) and a metrics scrape are
admitted as the plugin says; nothing else reaches the pods. No field: no policy (any
pod of the cluster may connect), and a policy made before is deleted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minop import Kind
from minop.context import Context
from minop.kit import crd
from minop.kit.workloads import Instance
from minop.preflight import pod_namespace

NETWORK_POLICY = Kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies")
# how config/, the OLM bundle and the Helm chart label the operator's pods
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "minop"}
MAX_PEERS = 32


def schema(description: str) -> crd.Schema:
    """The ``networkPolicy`` field; ``description`` says what it guards and what
    anyone in the cluster could do without it."""
    return crd.obj(
        f"{description} Needs a network plugin that enforces NetworkPolicies.",
        {
            "from": crd.array(
                "Who may connect: NetworkPolicyPeer objects (podSelector, "
                "namespaceSelector, ipBlock), as in a NetworkPolicy's ingress rule; "
                "empty: nobody.",
                crd.free_form("One NetworkPolicyPeer."),
                max_items=MAX_PEERS,
            )
        },
    )


def operator_peer() -> dict[str, Any] | None:
    """The operator's pods, in the namespace this process runs in; None outside a pod
    (an operator run elsewhere reaches no pod IP through a policy anyway)."""
    namespace = pod_namespace()
    if namespace is None:
        return None
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
    }


def policy(
    inst: Instance,
    client_ports: Sequence[int],
    *,
    peer_ports: Sequence[int] = (),
    operator_ports: Sequence[int] = (),
    open_ports: Sequence[int] = (),
) -> dict[str, Any]:
    """``networkPolicy.from`` reaches ``client_ports``; the workload's own pods
    ``peer_ports``; the operator's pods ``operator_ports``; anyone ``open_ports`` (a
    metrics scrape: Prometheus runs in a namespace of its own)."""

    def tcp(ports: Sequence[int]) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": p} for p in ports]

    peers = list((inst.spec.get("networkPolicy") or {}).get("from") or [])
    own = {"podSelector": {"matchLabels": dict(inst.selector)}}
    operator = operator_peer() if operator_ports else None
    rules = [
        (peers, client_ports),
        ([own], peer_ports),
        ([operator] if operator else [], operator_ports),
    ]
    ingress = [{"from": who, "ports": tcp(ports)} for who, ports in rules if who and ports]
    if open_ports:
        ingress.append({"ports": tcp(open_ports)})
    return {
        "apiVersion": f"{NETWORK_POLICY.group}/{NETWORK_POLICY.version}",
        "kind": NETWORK_POLICY.kind,
        "metadata": {"name": inst.name},
        "spec": {
            "podSelector": {"matchLabels": dict(inst.selector)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def sync(ctx: Context, inst: Instance, built: dict[str, Any]) -> None:
    """Apply ``built`` (``policy``'s) when the spec has ``networkPolicy``, else delete
    the one made before. The plugin lists NETWORK_POLICY among its children."""
    if inst.spec.get("networkPolicy") is not None:
        ctx.apply(built)
    else:
        ctx.delete(NETWORK_POLICY, inst.name)
