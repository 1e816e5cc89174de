"""Operator settings: one frozen dataclass from flags and MINOP_* variables (flags win)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from minop.lease import LeaseTiming

WEBHOOK_CERT_MODES = ("self-managed", "cert-manager", "olm")


class SettingsError(ValueError):
    """A setting has an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    workers: int = 8  # per resource; a pass mostly waits on the API server (make bench)
    max_workers: int = 0  # all controllers together; 0: no cap beyond workers each
    log_format: str = "text"
    log_level: str = "INFO"
    plugins: tuple[str, ...] = ()  # allow-list; empty: every installed plugin
    kubeconfig: str | None = None
    context: str | None = None
    leader_elect: bool = False
    leader_election_namespace: str | None = None
    leader_election_id: str = "minop"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    shards: str = "off"  # auto: replicas share the objects (needs leader election's Lease)
    metrics_addr: str = ":8080"  # "0" disables
    health_addr: str = ":8081"  # "0" disables
    watch_inactivity: float = 150.0
    resync: float = 36000.0
    grace: float = 30.0
    qps: float = 0.0  # client-side rate limit; 0: none (the API server's APF protects it)
    burst: int = 0
    # The webhook server (admission, conversion) on every replica; "0" disables it.
    webhook_addr: str = ":9443"
    webhook_cert_mode: str = "self-managed"  # or cert-manager, olm (mounted files)
    webhook_cert_dir: str = "/tmp/k8s-webhook-server/serving-certs"
    webhook_secret: str = "minop-webhook-cert"  # self-managed: the certificate's Secret
    webhook_service: str = "minop-webhook"  # the Service the API server calls (a SAN)
    webhook_config: str = "minop"  # the Validating/MutatingWebhookConfiguration's name
    webhook_hosts: tuple[str, ...] = ()  # further SANs, e.g. 127.0.0.1 outside a cluster
    webhook_namespace: str | None = None  # of the Secret and Service; default: the pod's
    webhook_max_in_flight: int = 32

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SettingsError(f"workers: must be >= 1, got {self.workers}")
        if self.max_workers < 0:
            raise SettingsError(f"max-workers: must be >= 0, got {self.max_workers}")
        if self.qps < 0 or self.burst < 0:
            raise SettingsError(f"qps/burst: must be >= 0, got {self.qps}/{self.burst}")
        if self.shards not in ("auto", "off"):
            raise SettingsError(f"shards: must be auto or off, got {self.shards!r}")
        if self.log_format not in ("json", "text"):
            raise SettingsError(f"log-format: must be json or text, got {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"log-level: unknown level {self.log_level!r}")
        try:
            self.lease_timing  # noqa: B018 -- refused here, not once the operator runs
        except ValueError as e:
            raise SettingsError(str(e)) from None
        if self.webhook_cert_mode not in WEBHOOK_CERT_MODES:
            raise SettingsError(
                f"webhook-cert-mode: one of {', '.join(WEBHOOK_CERT_MODES)}, "
                f"got {self.webhook_cert_mode!r}"
            )
        if self.webhook_max_in_flight < 1:
            raise SettingsError("webhook-max-in-flight: must be >= 1")
        for name in ("watch_inactivity", "resync", "grace", "retry_period"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.replace('_', '-')}: must be > 0")

    @property
    def lease_timing(self) -> LeaseTiming:
        """Leader election's and shard membership's Lease timings."""
        return LeaseTiming(self.lease_duration, self.renew_deadline, self.retry_period)


# Setting name -> environment variable.
ENV = {f.name: "MINOP_" + f.name.upper() for f in fields(Settings)}
ENV["namespaces"] = "MINOP_NAMESPACE"
ENV["kubeconfig"] = "MINOP_KUBECONFIG"  # KUBECONFIG itself is read by kubeconfig.py


def namespace_flag(p: argparse._ActionsContainer, help: str) -> None:
    """``-n/--namespace NS`` (repeatable, or comma-separated): ``Settings.namespaces``."""
    p.add_argument("-n", "--namespace", action="append", dest="namespaces", metavar="NS", help=help)


def plugin_flag(p: argparse._ActionsContainer, help: str) -> None:
    """``--plugin NAME`` (repeatable, or comma-separated): ``Settings.plugins``."""
    p.add_argument("--plugin", action="append", dest="plugins", metavar="NAME", help=help)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``minop run``; each default comes from its MINOP_* variable, then the dataclass."""
    d = Settings()
    scope = p.add_mutually_exclusive_group()
    namespace_flag(
        scope,
        "watch this namespace (repeatable, or comma-separated) [MINOP_NAMESPACE; default: all]",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (needs cluster-wide RBAC)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help=f"concurrent reconciles per resource [MINOP_WORKERS; {d.workers}]",
    )
    p.add_argument(
        "--max-workers",
        type=int,
        help="concurrent reconciles of all resources together, 0 for no cap "
        f"[MINOP_MAX_WORKERS; {d.max_workers}]",
    )
    p.add_argument(
        "--qps",
        type=float,
        help="client-side rate limit in requests per second, 0 for none (the API server's "
        f"Priority and Fairness applies either way) [MINOP_QPS; {d.qps:g}]",
    )
    p.add_argument(
        "--burst", type=int, help=f"burst of the client-side limit [MINOP_BURST; {d.burst}]"
    )
    p.add_argument(
        "--log-format", choices=["json", "text"], help=f"[MINOP_LOG_FORMAT; {d.log_format}]"
    )
    p.add_argument(
        "--log-level", help=f"DEBUG, INFO, WARNING, ERROR [MINOP_LOG_LEVEL; {d.log_level}]"
    )
    plugin_flag(p, "serve only these plugins (repeatable) [MINOP_PLUGINS; default: all]")
    p.add_argument("--kubeconfig", help="kubeconfig file [KUBECONFIG; then in-cluster]")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="elect a leader through a Lease before reconciling [MINOP_LEADER_ELECT]",
    )
    p.add_argument(
        "--leader-election-namespace", help="namespace of the Lease (required outside a pod)"
    )
    p.add_argument("--leader-election-id", help=f"name of the Lease [{d.leader_election_id}]")
    p.add_argument(
        "--lease-duration",
        type=float,
        help=f"seconds a Lease (the leader's, a shard member's) lasts unrenewed "
        f"[MINOP_LEASE_DURATION; {d.lease_duration:g}]",
    )
    p.add_argument(
        "--renew-deadline",
        type=float,
        help=f"seconds a holder keeps writing without renewing "
        f"[MINOP_RENEW_DEADLINE; {d.renew_deadline:g}]",
    )
    p.add_argument(
        "--retry-period",
        type=float,
        help=f"seconds between renewals [MINOP_RETRY_PERIOD; {d.retry_period:g}]",
    )
    p.add_argument(
        "--shards",
        choices=["auto", "off"],
        help="auto: every replica reconciles its share of the objects (a Lease each, in the "
        "leader election's namespace, with its durations); off: only the leader reconciles "
        f"[MINOP_SHARDS; {d.shards}]",
    )
    p.add_argument(
        "--metrics-addr", help=f"host:port for /metrics, 0 to disable [{d.metrics_addr}]"
    )
    p.add_argument(
        "--health-addr", help=f"host:port for /healthz /readyz, 0 to disable [{d.health_addr}]"
    )
    p.add_argument(
        "--webhook-addr",
        help=f"host:port of the webhook server, 0 to disable [{d.webhook_addr}]",
    )
    p.add_argument(
        "--webhook-cert-mode",
        choices=WEBHOOK_CERT_MODES,
        help="who issues the webhook certificate: minop (a Secret), or cert-manager or OLM "
        f"(mounted in --webhook-cert-dir) [{d.webhook_cert_mode}]",
    )
    p.add_argument("--webhook-cert-dir", help=f"[{d.webhook_cert_dir}]")
    p.add_argument("--webhook-secret", help=f"self-managed certificate [{d.webhook_secret}]")
    p.add_argument("--webhook-service", help=f"[{d.webhook_service}]")
    p.add_argument("--webhook-config", help=f"webhook configurations' name [{d.webhook_config}]")
    p.add_argument(
        "--webhook-host",
        action="append",
        dest="webhook_hosts",
        metavar="HOST",
        help="further name or IP in the self-managed certificate (repeatable)",
    )
    p.add_argument(
        "--webhook-namespace", help="namespace of the webhook Secret [the pod's namespace]"
    )
    p.add_argument(
        "--webhook-max-in-flight",
        type=int,
        help=f"webhook requests served at once [{d.webhook_max_in_flight}]",
    )
    p.add_argument(
        "--watch-inactivity",
        type=float,
        help=f"restart a watch silent this many seconds [{d.watch_inactivity:g}]",
    )
    p.add_argument("--resync", type=float, help=f"seconds between full resyncs [{d.resync:g}]")
    p.add_argument(
        "--grace", type=float, help=f"seconds in-flight hooks get on SIGTERM [{d.grace:g}]"
    )


def _convert(name: str, raw: str) -> object:
    default = getattr(Settings(), name)
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("1", "true", "yes", "0", "false", "no", ""):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, tuple):
            return tuple(x.strip() for x in raw.split(",") if x.strip())
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{ENV[name]}={raw!r}: not a valid {type(default).__name__}") from None
    return raw


def from_sources(args: argparse.Namespace | None, env: Mapping[str, str] = os.environ) -> Settings:
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = env.get(ENV[f.name])
        if raw is not None and raw != "":
            values[f.name] = _convert(f.name, raw)
    if args is not None:
        for f in fields(Settings):
            v = getattr(args, f.name, None)
            if v is None:
                continue
            if f.name in ("namespaces", "plugins", "webhook_hosts"):
                v = tuple(x.strip() for item in v for x in item.split(",") if x.strip())
            values[f.name] = v
        if getattr(args, "all_namespaces", False):
            values["namespaces"] = ()
    return Settings(**values)  # type: ignore[arg-type]
