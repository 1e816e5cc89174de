"""What must hold before the operator starts, checked up front: a start that cannot
succeed fails at once with ``StartError``, whose message says what to do."""

from __future__ import annotations

from collections.abc import Iterable

from minop.apierrors import ApiError
from minop.informer import Informer
from minop.kube import Kube
from minop.kubeconfig import SA_DIR
from minop.resource import Kind
from minop.settings import Settings


class StartError(Exception):
    """The operator cannot start; the message says why and what to do."""


def pod_namespace() -> str | None:
    """The namespace of the pod we run in; None outside a pod."""
    ns_file = SA_DIR / "namespace"
    return ns_file.read_text().strip() if ns_file.exists() else None


def lease_namespace(settings: Settings) -> str | None:
    """Where leader election's and shard membership's Leases live; None without either."""
    if not settings.leader_elect and settings.shards == "off":
        return None
    namespace = settings.leader_election_namespace or pod_namespace()
    if namespace is not None:
        return namespace
    raise StartError(
        "--leader-election-namespace is required when not running in a pod "
        "(MINOP_LEADER_ELECTION_NAMESPACE)"
    )


def webhook_namespace(settings: Settings) -> str:
    """The namespace of the webhook's Secret and Service ("" if none is needed)."""
    namespace = settings.webhook_namespace or pod_namespace()
    if not namespace and settings.webhook_cert_mode == "self-managed":
        raise StartError(
            "--webhook-namespace is required for a self-managed webhook certificate "
            "when not running in a pod (MINOP_WEBHOOK_NAMESPACE)"
        )
    return namespace or ""


def reach(kube: Kube) -> None:
    try:
        kube.version()
    except ApiError as e:
        raise StartError(f"cannot reach the API server at {kube.server}: {e}") from e


def check_crds(kube: Kube, owned: Iterable[Kind]) -> None:
    """Every custom kind in ``owned`` is served by the API server."""
    missing = []
    for kind in owned:
        if not kind.group or "." not in kind.group:
            continue  # built-in kinds need no CRD
        try:
            found = kube.request("GET", f"/apis/{kind.group}/{kind.version}")
            plurals = {r.get("name") for r in found.get("resources") or []}
        except ApiError as e:
            if e.status != 404:
                raise StartError(f"cannot check the CRD of {kind}: {e}") from e
            plurals = set()
        if kind.plural not in plurals:
            missing.append(f"{kind.plural}.{kind.group}")
    if missing:
        raise StartError(
            f"CRD not installed: {', '.join(missing)}; "
            "install with `python -m minop crds | kubectl apply -f -`"
        )


def check_access(informers: Iterable[Informer]) -> None:
    """No informer was refused its list or watch (it would wait for ever to sync)."""
    for i in informers:
        if i.forbidden is not None:
            where = f"namespace {i.namespace}" if i.namespace else "all namespaces"
            raise StartError(
                f"forbidden to list/watch {i.kind.label} in {where}: grant the operator's "
                f"ServiceAccount list and watch on {i.kind.label} (`python -m minop rbac`); "
                f"API server said: {i.forbidden.message}"
            )
