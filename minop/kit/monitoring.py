"""Prometheus metrics for workload plugins: an exporter sidecar, a ``<name>-metrics``
Service and an optional ServiceMonitor (Prometheus Operator), from one ``metrics``
spec field. Off by default, as in production charts (Bitnami's ``metrics.enabled``):
the sidecar costs every pod CPU and memory, and only a cluster that scrapes wants it.

The ServiceMonitor is no watched child: its CRD may be missing (no Prometheus
Operator), and an informer on a kind the server does not serve would keep the
operator from ever syncing its cache. ``sync_service_monitor`` writes it through the
API instead, only when the spec asks, and reports a missing CRD as a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop import apply as applying
from minop import conditions, kinds
from minop.apierrors import NotFound
from minop.context import Context
from minop.kit import crd
from minop.kit.podtemplate import canonical_resources, restricted_container_security
from minop.kit.workloads import Instance
from minop.resource import Kind

SERVICE_MONITOR = Kind("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors")
# What sync_service_monitor needs: the kind is no declared child, so RBAC is not derived.
SERVICE_MONITOR_RULE: Mapping[str, Any] = {
    "apiGroups": [SERVICE_MONITOR.group],
    "resources": [SERVICE_MONITOR.plural],
    "verbs": ["get", "create", "patch", "delete"],
}
CONDITION = "ServiceMonitorReady"
CONTAINER = "metrics"
PORT_NAME = "metrics"
METRICS_LABEL = "minop.dev/metrics"  # on the metrics Service: what the ServiceMonitor selects
DEFAULT_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
DURATION = r"^([0-9]+(ms|s|m|h))+$"  # Prometheus' duration, as the ServiceMonitor CRD has it


def schema(exporter: str, image_env: str, default_image: str, default_port: int) -> crd.Schema:
    """The ``metrics`` CRD field; ``exporter`` names the program in the descriptions."""
    return crd.obj(
        f"Prometheus metrics: a {exporter} sidecar in every pod, a <name>-metrics Service "
        "with its port `metrics`, and optionally a ServiceMonitor. Off by default.",
        {
            "enabled": crd.boolean(
                "Run the exporter sidecar and the <name>-metrics Service.", default=False
            ),
            "image": crd.string(
                f"Exporter image; default: the operator's {image_env} or {default_image}.",
                min_length=1,
                max_length=512,
            ),
            "port": crd.integer(
                "Port the exporter serves /metrics on, in the pod and on the Service.",
                minimum=1024,
                maximum=65535,
                default=default_port,
            ),
            "resources": crd.resources(
                "Compute resources of the exporter container; default: requests cpu 10m, "
                "memory 16Mi; limits memory 64Mi."
            ),
            "serviceMonitor": crd.obj(
                "A ServiceMonitor (monitoring.coreos.com/v1) for the Prometheus Operator. "
                "Without its CRD installed, condition ServiceMonitorReady says so and the "
                "rest is reconciled as usual.",
                {
                    "enabled": crd.boolean("Create the ServiceMonitor.", default=False),
                    "interval": crd.string(
                        "Scrape interval, e.g. 30s; default: Prometheus' own.",
                        pattern=DURATION,
                        max_length=16,
                    ),
                    "labels": crd.string_map(
                        "Labels of the ServiceMonitor, for the Prometheus "
                        "serviceMonitorSelector that should pick it up."
                    ),
                },
            ),
        },
        rules=[
            crd.Rule(
                "!has(self.serviceMonitor) || !self.serviceMonitor.enabled || self.enabled",
                "serviceMonitor.enabled needs metrics.enabled: it scrapes the sidecar",
                field=".serviceMonitor.enabled",
            )
        ],
    )


def enabled(spec: Mapping[str, Any]) -> bool:
    return bool((spec.get("metrics") or {}).get("enabled"))


def _metrics(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec.get("metrics") or {}


def port(spec: Mapping[str, Any], default: int) -> int:
    return int(_metrics(spec).get("port", default))


def sidecar(
    spec: Mapping[str, Any], image: str, default_port: int, args: list[str]
) -> dict[str, Any]:
    """The exporter container. Liveness only: a failing exporter restarts itself, and
    never takes the pod out of its Service as a readiness probe would."""
    p = port(spec, default_port)
    return {
        "name": CONTAINER,
        "image": _metrics(spec).get("image") or image,
        "args": [*args, f"--web.listen-address=:{p}"],
        "ports": [{"name": PORT_NAME, "containerPort": p, "protocol": "TCP"}],
        "livenessProbe": {
            "tcpSocket": {"port": PORT_NAME},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": canonical_resources(_metrics(spec).get("resources") or DEFAULT_RESOURCES),
        "securityContext": restricted_container_security(),
    }


def service_name(name: str) -> str:
    return f"{name}-metrics"


def service(inst: Instance, default_port: int) -> dict[str, Any]:
    """A ClusterIP Service of the metrics port alone: the workload's own Service may be
    a LoadBalancer, which must not publish the metrics."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name(inst.name), "labels": {METRICS_LABEL: inst.name}},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(inst.selector),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": port(inst.spec, default_port),
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def service_monitor(inst: Instance) -> dict[str, Any]:
    monitor = _metrics(inst.spec).get("serviceMonitor") or {}
    endpoint: dict[str, Any] = {"port": PORT_NAME, "path": "/metrics"}
    if monitor.get("interval"):
        endpoint["interval"] = monitor["interval"]
    meta: dict[str, Any] = {"name": inst.name}
    if monitor.get("labels"):
        meta["labels"] = dict(monitor["labels"])
    return {
        "apiVersion": SERVICE_MONITOR.api_version,
        "kind": SERVICE_MONITOR.kind,
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {METRICS_LABEL: inst.name}},
            "namespaceSelector": {"matchNames": [inst.namespace]},
            "endpoints": [endpoint],
        },
    }


def wants_service_monitor(spec: Mapping[str, Any]) -> bool:
    return enabled(spec) and bool((_metrics(spec).get("serviceMonitor") or {}).get("enabled"))


def sync_service_monitor(ctx: Context, inst: Instance) -> None:
    """Create, update or delete the ServiceMonitor as the spec asks (needs
    ``SERVICE_MONITOR_RULE`` in the Resource's ``extra_rules``). Costs a read per
    reconcile only while one is wanted, and none for an object that never had one."""
    had = conditions.find(ctx.status, CONDITION)
    if not wants_service_monitor(inst.spec):
        if had is not None and had.get("status") == "True":
            ctx.api.delete(SERVICE_MONITOR, inst.name, inst.namespace)
            ctx.condition(CONDITION, False, "Disabled", "metrics.serviceMonitor is off")
        return
    desired = applying.prepare(service_monitor(inst), ctx.body, ctx.labels)
    try:
        live = ctx.api.get_or_none(SERVICE_MONITOR, inst.name, inst.namespace)
        if applying.needs_apply(desired, live):
            ctx.api.apply(SERVICE_MONITOR, desired)
    except NotFound:  # the server does not serve the kind: no Prometheus Operator
        msg = (
            "metrics.serviceMonitor.enabled: the ServiceMonitor CRD (servicemonitors."
            f"{SERVICE_MONITOR.group}/{SERVICE_MONITOR.version}) is not installed; install "
            "the Prometheus Operator, or turn serviceMonitor off"
        )
        if had is None or had.get("reason") != "CRDNotInstalled":
            ctx.event("Warning", "CRDNotInstalled", msg)
        ctx.condition(CONDITION, False, "CRDNotInstalled", msg)
        return
    ctx.condition(CONDITION, True, "Applied", f"ServiceMonitor {inst.name} scrapes the metrics")


def sync(ctx: Context, inst: Instance, default_port: int) -> None:
    """The metrics Service and the ServiceMonitor as the spec asks (Service among the
    Resource's children)."""
    if enabled(inst.spec):
        ctx.apply(service(inst, default_port))
    else:
        ctx.delete(kinds.SERVICE, service_name(inst.name))
    sync_service_monitor(ctx, inst)
