"""Operator settings: one frozen dataclass from flags and MINOP_* variables (flags win)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


class SettingsError(ValueError):
    """A setting has an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    workers: int = 4  # per resource (controller)
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
    metrics_addr: str = ":8080"  # "0" disables
    health_addr: str = ":8081"  # "0" disables
    watch_inactivity: float = 150.0
    resync: float = 36000.0
    grace: float = 30.0
    qps: float = 0.0  # client-side rate limit; 0: none (the API server's APF protects it)
    burst: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SettingsError(f"workers: must be >= 1, got {self.workers}")
        if self.max_workers < 0:
            raise SettingsError(f"max-workers: must be >= 0, got {self.max_workers}")
        if self.qps < 0 or self.burst < 0:
            raise SettingsError(f"qps/burst: must be >= 0, got {self.qps}/{self.burst}")
        if self.log_format not in ("json", "text"):
            raise SettingsError(f"log-format: must be json or text, got {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"log-level: unknown level {self.log_level!r}")
        if not self.renew_deadline < self.lease_duration:
            raise SettingsError("renew-deadline: must be shorter than lease-duration")
        for name in ("watch_inactivity", "resync", "grace", "retry_period"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.replace('_', '-')}: must be > 0")


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
        "--metrics-addr", help=f"host:port for /metrics, 0 to disable [{d.metrics_addr}]"
    )
    p.add_argument(
        "--health-addr", help=f"host:port for /healthz /readyz, 0 to disable [{d.health_addr}]"
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
            if f.name in ("namespaces", "plugins"):
                v = tuple(x.strip() for item in v for x in item.split(",") if x.strip())
            values[f.name] = v
        if getattr(args, "all_namespaces", False):
            values["namespaces"] = ()
    return Settings(**values)  # type: ignore[arg-type]
