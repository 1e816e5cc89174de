"""Counters, gauges and histograms rendered in the Prometheus text format.

Metric names follow controller-runtime so existing dashboards work; minop's
own are prefixed ``minop_``. One :class:`Metrics` per operator instance (not a
process global), so in-process test runners never mix their numbers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence

LabelValues = tuple[str, ...]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
QUEUE_BUCKETS = (1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labelnames = name, help_, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {sorted(self.labelnames)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _labelstr(self, values: LabelValues, extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = [*zip(self.labelnames, values, strict=True), *extra]
        if not pairs:
            return ""
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self._samples()

    def _samples(self) -> Iterable[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def _samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted(self._values.items())
        for key, v in items:
            yield f"{self.name}{self._labelstr(key)} {_fmt(v)}"


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        super().__init__(name, help_, labels)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def _samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted((k, list(c), self._sums[k]) for k, c in self._counts.items())
        for key, counts, total in items:
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                le = (("le", _fmt(bound)),)
                yield f"{self.name}_bucket{self._labelstr(key, le)} {n}"
            yield f"{self.name}_sum{self._labelstr(key)} {_fmt(total)}"
            yield f"{self.name}_count{self._labelstr(key)} {counts[-1]}"


class Metrics:
    """Every metric minop exports (controller-runtime's names where it has one, so its
    dashboards work; docs/operations.md lists them)."""

    def __init__(self) -> None:
        c, g, h = Counter, Gauge, Histogram
        self.reconcile_total = c(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller and result.",
            ("controller", "result"),
        )
        self.reconcile_errors = c(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller.",
            ("controller",),
        )
        self.reconcile_time = h(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller.",
            ("controller",),
        )
        self.max_concurrent = g(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller.",
            ("controller",),
        )
        self.active_workers = g(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller.",
            ("controller",),
        )
        self.queue_depth = g("workqueue_depth", "Current depth of the workqueue.", ("name",))
        self.queue_adds = c(
            "workqueue_adds_total", "Total number of adds to the workqueue.", ("name",)
        )
        self.queue_duration = h(
            "workqueue_queue_duration_seconds",
            "How long an item stays in the workqueue before being processed.",
            ("name",),
            QUEUE_BUCKETS,
        )
        self.work_duration = h(
            "workqueue_work_duration_seconds",
            "How long processing an item from the workqueue takes.",
            ("name",),
            QUEUE_BUCKETS,
        )
        self.queue_retries = c(
            "workqueue_retries_total", "Total number of retries in the workqueue.", ("name",)
        )
        self.unfinished_work = g(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration.",
            ("name",),
        )
        self.longest_running = g(
            "workqueue_longest_running_processor_seconds",
            "How many seconds the longest running processor has been running.",
            ("name",),
        )
        self.leader_status = g(
            "leader_election_master_status",
            "1 while this process holds the leader lease, else 0.",
            ("name",),
        )
        self.shard_buckets = g(
            "minop_shard_buckets_owned",
            "Hash buckets this replica owns (of minop.shard.BUCKETS).",
            ("group",),
        )
        self.shard_objects = g(
            "minop_shard_objects_owned",
            "Custom resources in the buckets this replica owns.",
            ("group",),
        )
        self.shard_mode = g(
            "minop_shard_mode",
            "1 for how this replica is sharded: off, label or selector (shardSelector).",
            ("mode",),
        )
        self.shard_handovers = c(
            "minop_shard_handovers_total",
            "Buckets this replica took over (acquired) or gave up (released).",
            ("group", "direction"),
        )
        self.shard_handover_duration = h(
            "minop_shard_handover_duration_seconds",
            "From a bucket's reassignment to this replica acting on it (acquired: "
            "until its last owner released it; released: until in-flight work ended).",
            ("group", "direction"),
        )
        self.rest_requests = c(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ("code", "method", "host"),
        )
        self.rest_transport = g(
            "minop_rest_transport",
            "1 for the transport ordinary API requests take, 0 for the other: http.client "
            "(kept connections) or requests (pykube-ng's adapter: exec plugins, "
            "auth-providers, proxies).",
            ("host", "transport"),
        )
        self.watch_restarts = c(
            "minop_watch_restarts_total",
            "Watch stream restarts per kind and reason.",
            ("kind", "reason"),
        )
        self.hook_calls = c(
            "minop_hook_calls_total",
            "Hook calls per plugin, hook and result.",
            ("plugin", "hook", "result"),
        )
        self.hook_duration = h(
            "minop_hook_duration_seconds", "Duration of hook calls.", ("plugin", "hook")
        )

        self.webhook_requests = c(
            "controller_runtime_webhook_requests_total",
            "Total number of admission requests by HTTP status code.",
            ("webhook", "code"),
        )
        self.webhook_latency = h(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests.",
            ("webhook",),
        )
        self.webhook_in_flight = g(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served.",
            ("webhook",),
        )

    def all(self) -> list[_Metric]:
        return [m for m in vars(self).values() if isinstance(m, _Metric)]

    def render(self) -> str:
        return "\n".join(line for m in self.all() for line in m.render()) + "\n"
