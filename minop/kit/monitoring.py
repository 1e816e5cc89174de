"""Prometheus metrics for workload plugins: an exporter sidecar, a ``<name>-metrics``
Service, an optional ServiceMonitor and, for a plugin that has alerts, an optional
PrometheusRule (both Prometheus Operator), from one ``metrics`` spec field. Off by
default, as in production charts (Bitnami's ``metrics.enabled``): the sidecar costs
every pod CPU and memory, and only a cluster that scrapes wants it.

The ServiceMonitor and the PrometheusRule are no watched children: their CRDs may be
missing (no Prometheus Operator), and an informer on a kind the server does not serve
would keep the operator from ever syncing its cache. ``sync`` writes them through the
API instead, only when the spec asks, and reports a missing CRD as a condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
PROMETHEUS_RULE = Kind("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules")
PROMETHEUS_RULE_RULE: Mapping[str, Any] = {**SERVICE_MONITOR_RULE, "resources": ["prometheusrules"]}
RULE_CONDITION = "PrometheusRuleReady"
CONTAINER = "metrics"
PORT_NAME = "metrics"
METRICS_LABEL = "minop.dev/metrics"  # on the metrics Service: what the ServiceMonitor selects
DEFAULT_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
DURATION = r"^([0-9]+(ms|s|m|h))+$"  # Prometheus' duration, as the ServiceMonitor CRD has it


def schema(
    exporter: str,
    image_env: str,
    default_image: str,
    default_port: int,
    alerts: str | None = None,
) -> crd.Schema:
    """The ``metrics`` CRD field; ``exporter`` names the program in the descriptions;
    ``alerts`` (what the plugin's rules alert on) adds ``prometheusRule``."""
    fields: dict[str, crd.Schema] = {}
    rules = [
        crd.Rule(
            "!has(self.serviceMonitor) || !self.serviceMonitor.enabled || self.enabled",
            "serviceMonitor.enabled needs metrics.enabled: it scrapes the sidecar",
            field=".serviceMonitor.enabled",
        )
    ]
    if alerts:
        fields["prometheusRule"] = crd.obj(
            f"A PrometheusRule (monitoring.coreos.com/v1) alerting on {alerts}, each rule "
            "limited to this object's metrics (the labels namespace and service the "
            "Prometheus Operator gives the ServiceMonitor's targets). Without its CRD "
            "installed, condition PrometheusRuleReady says so and the rest is reconciled "
            "as usual.",
            {
                "enabled": crd.boolean("Create the PrometheusRule.", default=False),
                "labels": crd.string_map(
                    "Labels of the PrometheusRule, for the Prometheus ruleSelector that "
                    "should pick it up."
                ),
            },
        )
        rules.append(
            crd.Rule(
                "!has(self.prometheusRule) || !self.prometheusRule.enabled || self.enabled",
                "prometheusRule.enabled needs metrics.enabled: its alerts read the sidecar's "
                "metrics",
                field=".prometheusRule.enabled",
            )
        )
    return crd.obj(
        f"Prometheus metrics: a {exporter} sidecar in every pod, a <name>-metrics Service "
        "with its port `metrics`, and optionally a ServiceMonitor"
        + (" and a PrometheusRule" if alerts else "")
        + ". Off by default.",
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
            **fields,
        },
        rules=rules,
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


@dataclass(frozen=True)
class Optional:
    """An object of a kind only the Prometheus Operator serves, applied when asked."""

    kind: Kind
    field: str  # under spec.metrics
    condition: str
    applied: str  # the condition's message once applied

    def wanted(self, spec: Mapping[str, Any]) -> bool:
        return enabled(spec) and bool((_metrics(spec).get(self.field) or {}).get("enabled"))


MONITOR = Optional(SERVICE_MONITOR, "serviceMonitor", CONDITION, "scrapes the metrics")
RULE = Optional(PROMETHEUS_RULE, "prometheusRule", RULE_CONDITION, "alerts on the metrics")


def wants_service_monitor(spec: Mapping[str, Any]) -> bool:
    return MONITOR.wanted(spec)


def series_selector(inst: Instance) -> str:
    """The label matchers of this object's scraped series: the Prometheus Operator gives
    every target of a ServiceMonitor its Service's namespace and name."""
    return f'namespace="{inst.namespace}",service="{service_name(inst.name)}"'


def prometheus_rule(inst: Instance, groups: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": inst.name}
    labels = (_metrics(inst.spec).get("prometheusRule") or {}).get("labels")
    if labels:
        meta["labels"] = dict(labels)
    return {
        "apiVersion": PROMETHEUS_RULE.api_version,
        "kind": PROMETHEUS_RULE.kind,
        "metadata": meta,
        "spec": {"groups": groups},
    }


def _sync_optional(ctx: Context, inst: Instance, o: Optional, build: Callable[[], Any]) -> None:
    """Create, update or delete ``o`` as the spec asks. Costs a read per reconcile only
    while one is wanted, and none for an object that never had one."""
    had = conditions.find(ctx.status, o.condition)
    if not o.wanted(inst.spec):
        if had is not None and had.get("status") == "True":
            ctx.api.delete(o.kind, inst.name, inst.namespace)
            ctx.condition(o.condition, False, "Disabled", f"metrics.{o.field} is off")
        return
    desired = applying.prepare(build(), ctx.body, ctx.labels)
    try:
        live = ctx.api.get_or_none(o.kind, inst.name, inst.namespace)
        if applying.needs_apply(desired, live):
            ctx.api.apply(o.kind, desired)
    except NotFound:  # the server does not serve the kind: no Prometheus Operator
        msg = (
            f"metrics.{o.field}.enabled: the {o.kind.kind} CRD ({o.kind.plural}."
            f"{o.kind.group}/{o.kind.version}) is not installed; install the Prometheus "
            f"Operator, or turn {o.field} off"
        )
        if had is None or had.get("reason") != "CRDNotInstalled":
            ctx.event("Warning", "CRDNotInstalled", msg)
        ctx.condition(o.condition, False, "CRDNotInstalled", msg)
        return
    ctx.condition(o.condition, True, "Applied", f"{o.kind.kind} {inst.name} {o.applied}")


def sync_service_monitor(ctx: Context, inst: Instance) -> None:
    """The ServiceMonitor (needs ``SERVICE_MONITOR_RULE`` in the Resource's ``extra_rules``)."""
    _sync_optional(ctx, inst, MONITOR, lambda: service_monitor(inst))


def sync(
    ctx: Context,
    inst: Instance,
    default_port: int,
    alerts: Callable[[Instance], list[dict[str, Any]]] | None = None,
) -> None:
    """The metrics Service, the ServiceMonitor and, given the plugin's ``alerts`` (its
    rule groups), the PrometheusRule as the spec asks (Service among the Resource's
    children; ``PROMETHEUS_RULE_RULE`` in its ``extra_rules`` with alerts)."""
    if enabled(inst.spec):
        ctx.apply(service(inst, default_port))
    else:
        ctx.delete(kinds.SERVICE, service_name(inst.name))
    sync_service_monitor(ctx, inst)
    if alerts is not None:
        _sync_optional(ctx, inst, RULE, lambda: prometheus_rule(inst, alerts(inst)))
