"""The manager: wires the client, informers, cache, handlers, controllers and probes,
and runs their lifecycle (start, leadership, resync, stop).

One informer per (kind, namespace) fills the cache; ``handlers`` maps each event to
the keys it concerns. With leader election every replica keeps its cache warm and
only the leader's controllers take events: a standby holds no tombstones, timers or
queued keys (the leader it may replace handles those), and on takeover queues every
object of its warm cache (after re-listing: see ``_caught_up``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from minop import __version__, kinds
from minop.cache import INDEXERS, Cache
from minop.controller import Controller
from minop.events import Recorder
from minop.handlers import Handlers
from minop.hookrun import Binding
from minop.informer import Handler, Informer, strip_managed_fields
from minop.kube import Kube
from minop.leader import LeaderElector
from minop.metrics import Metrics
from minop.migration import StorageMigration
from minop.objects import MANAGED_SELECTOR, hash_only
from minop.plugin.manager import PluginManager
from minop.preflight import check_access, check_crds, lease_namespace, reach, webhook_namespace
from minop.resource import Kind, Resource
from minop.rest import user_agent
from minop.runtime import Runtime
from minop.serve import Server, check_route, parse_addr
from minop.settings import Settings
from minop.sharding import Sharding
from minop.webhook import lifecycle

log = logging.getLogger("minop.manager")


@dataclass(frozen=True)
class Watched:
    """How a kind is watched: only minop's children (label-filtered), or every object
    (owned kinds; kinds a resource references, kept as a content hash)."""

    labelled: bool
    hashed: bool

    def informer(self, kube: Kube, kind: Kind, handler: Handler, **kw: Any) -> Informer:
        return Informer(
            kube,
            kind,
            handler,
            label_selector=MANAGED_SELECTOR if self.labelled else None,
            transform=hash_only if self.hashed else strip_managed_fields,
            indexers=INDEXERS,
            **kw,
        )


def watched(resources: Iterable[Resource]) -> dict[Kind, Watched]:
    """Every kind the informers watch for ``resources``, and how."""
    resources = list(resources)
    owned = {r.kind for r in resources}
    out: dict[Kind, Watched] = {k: Watched(False, False) for k in owned}
    for r in resources:
        for kind in (*r.children, *r.observes):
            out.setdefault(kind, Watched(True, kind == kinds.SECRET))
        for rel in r.related:
            if rel.kind not in owned:
                out[rel.kind] = Watched(False, True)
    return out


class Manager:
    def __init__(
        self,
        settings: Settings,
        plugins: PluginManager | None = None,
        kube: Kube | None = None,
        stopping: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock  # the controllers' (queues, timers, retries)
        # set by a signal at any time, start-up included (which then returns early)
        self.stopping = stopping or threading.Event()
        self.metrics = Metrics()
        self.kube = kube or Kube.from_env(
            settings.kubeconfig, settings.context, agent=user_agent(__version__)
        )
        self.kube.metrics = self.metrics
        self.kube.limiter.configure(settings.qps, settings.burst)
        self.plugins = plugins or PluginManager(settings.plugins)
        self._load_plugins = plugins is None
        self.cache = Cache()
        self.recorder = Recorder(self.kube)
        self.rt = Runtime(self.kube, self.cache, self.recorder, self.metrics)
        self.controllers: dict[Kind, Controller] = {}
        self.handlers: Handlers  # by bind(), over the controllers
        self.servers: list[Server] = []
        self.leading = threading.Event()  # controllers take events (set once, at takeover)
        self.elector: LeaderElector | None = None
        self.sharding: Sharding | None = None  # with --shards auto
        self.webhooks: lifecycle.Webhooks | None = None

    # -- startup ------------------------------------------------------------------------

    def start(self) -> None:
        """Everything but reconciling: plugins, informers, a synced cache."""
        # Probes first: /healthz answers and /readyz says why not while the API is slow.
        self._start_servers()
        reach(self.kube)
        if self._load_plugins:
            self.plugins.load_entry_points()
        self.plugins.startup(self.settings)
        self.bind()
        self._start_webhooks()
        check_crds(self.kube, self.controllers)
        self._lease_namespace = lease_namespace(self.settings)
        self.recorder.start()
        self._start_informers()
        self._wait_synced()
        names = ", ".join(f"{c.binding.plugin}:{k.kind}" for k, c in self.controllers.items())
        scope = ",".join(self.settings.namespaces) or "all namespaces"
        log.info(
            "minop %s serving %s in %s; API transport: %s",
            __version__, names or "none", scope, getattr(self.kube, "transport_note", "-"),
        )  # fmt: skip

    def bind(self) -> None:
        """A controller per resource of the started plugins (no API call)."""
        cap = (
            threading.BoundedSemaphore(self.settings.max_workers)
            if self.settings.max_workers
            else None
        )
        for plugin, resource in self.plugins.resources():
            finalizes = self.plugins.implements("minop_finalize", plugin)
            b = Binding(plugin, resource, finalizes)
            self.controllers[resource.kind] = Controller(
                self.rt, self.plugins, b, self.settings.workers, cap, self._clock
            )
        self.handlers = Handlers(self.controllers, self.cache, self.leading)

    def begin(self, on_lost: Callable[[], None]) -> None:
        """After ``start``: reconcile at once, or once elected (``on_lost`` if deposed),
        or (sharded) the objects of this replica's buckets as they come and go."""
        if self._lease_namespace is None:
            self.start_controllers()
            return
        sharded = self.settings.shards == "auto"
        self.elector = LeaderElector(
            self.kube.for_leader_election(),
            self._lease_namespace,
            self.settings.leader_election_id,
            # sharded, the leader keeps the assignment and does the once-per-cluster work
            on_started=self.once_per_cluster if sharded else self.take_over,
            on_lost=on_lost,
            timing=self.settings.lease_timing,
            metrics=self.metrics,
        )
        if sharded:
            self._begin_sharded(on_lost)
            return
        self.kube.fence = self.elector.may_write
        self.elector.start()

    def _begin_sharded(self, on_lost: Callable[[], None]) -> None:
        assert self.elector is not None and self._lease_namespace is not None
        self.sharding = Sharding(self.cache, self.controllers, self.metrics, self.settings)
        self.sharding.join(self.elector, self._lease_namespace, on_lost)
        self.kube.fence = self.sharding.may_write
        self.sharding.detect(
            self.kube, self.settings.namespaces[0] if self.settings.namespaces else None
        )
        self.start_controllers()  # taking only keys of held buckets: none yet
        self.sharding.start()
        self.elector.start()

    def _start_webhooks(self) -> None:
        """On every replica, before the informers: the API server may call it at once."""
        if parse_addr(self.settings.webhook_addr) is None or not lifecycle.needed(self.plugins):
            return
        self.webhooks = lifecycle.Webhooks(
            self.settings, self.plugins, self.kube, self.metrics, webhook_namespace(self.settings)
        )
        self.webhooks.start()

    def _start_informers(self) -> None:
        plan = watched(c.binding.resource for c in self.controllers.values())
        for kind, how in sorted(plan.items(), key=lambda kv: str(kv[0])):
            namespaces: list[str | None] = (
                list(self.settings.namespaces)
                if kind.namespaced and self.settings.namespaces
                else [None]
            )
            for ns in namespaces:
                self.cache.add(
                    how.informer(
                        self.kube,
                        kind,
                        self.handlers.handler(kind),
                        namespace=ns,
                        inactivity=self.settings.watch_inactivity,
                        metrics=self.metrics,
                    )
                )
        for informer in self.cache.informers():
            informer.start()

    def _wait_synced(self) -> None:
        # Children must be cached before any reconcile: otherwise every child
        # looks missing and a restart would rewrite them all.
        while not self.cache.synced():
            check_access(self.cache.informers())
            if self.stopping.wait(0.05):
                return

    # -- controllers ------------------------------------------------------------------------

    @property
    def reconciling(self) -> bool:
        """Controllers run: not waiting for leadership."""
        return any(c.started for c in self.controllers.values())

    def start_controllers(self) -> None:
        """Begin reconciling at once (no leader election: no other replica acts)."""
        if self.leading.is_set() or self.stopping.is_set():
            return
        # Events from now on are queued; the resync below queues what came before.
        self.leading.set()
        self._run_controllers()

    def take_over(self) -> None:
        """Elected: catch up with the API server, then begin reconciling."""
        if self.leading.is_set() or self.stopping.is_set():
            return
        delay = 0.5
        while not self._caught_up():
            if self.stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)
        self._run_controllers()

    def _caught_up(self) -> bool:
        """Every informer re-lists while none applies events, then events are taken.

        A deletion before the takeover was the old leader's (so was its minop_delete),
        but a standby's watch may still carry it. A quorum LIST taken after the Lease
        was acquired is "now" whatever the resourceVersions look like (other API
        servers make them opaque: no comparison with the Lease's is exact)."""
        with contextlib.ExitStack() as paused:
            informers = self.cache.informers()
            for i in informers:
                paused.enter_context(i.paused())
            try:
                for i in informers:
                    i.relist()  # silent: not leading yet
            except Exception:  # never a leader that silently does not reconcile
                log.exception("taking over: could not re-list; retrying")
                return False
            self.leading.set()
        return True

    def _run_controllers(self) -> None:
        for c in self.controllers.values():
            c.start()
        self._resync("resync")
        threading.Thread(target=self._resync_loop, name="resync", daemon=True).start()
        if self.sharding is None:
            self.once_per_cluster()

    def once_per_cluster(self) -> None:
        """What one replica does (the leader, when sharded): storage migration."""
        versioned = [r for _, r in self.plugins.resources() if len(r.versions) > 1]
        if versioned:
            migration = StorageMigration(self.kube, versioned, self.settings.namespaces)
            threading.Thread(
                target=migration.run, args=(self.stopping,), name="migration", daemon=True
            ).start()

    def _resync(self, cause: str) -> None:
        for kind, c in self.controllers.items():
            for key in self.cache.keys(kind):
                if c.admit(key, None):
                    c.enqueue(key, cause)
        if self.sharding is not None:
            self.sharding.count()

    def _resync_loop(self) -> None:
        while not self.stopping.wait(self.settings.resync):
            self._resync("resync")

    # -- probes ------------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        """Liveness: every thread alive and turning. Never the API server's health (an
        outage would restart a healthy pod, which helps nothing)."""
        now = time.monotonic()
        bad = [f"informer {i} dead" for i in self.cache.informers() if not i.alive]
        bad += [
            f"informer {i} stuck for {now - i.heartbeat:.0f}s"
            for i in self.cache.informers()
            if i.alive and now - i.heartbeat > i.inactivity + 60
        ]
        for c in self.controllers.values():
            if c.started and not c.alive():
                bad.append(f"controller {c.name}: a worker died")
            stuck = c.stuck(now)
            if stuck:
                bad.append(
                    f"controller {c.name}: all {stuck} workers stuck past their step's bound"
                )
        return (not bad), "; ".join(bad)

    def ready(self) -> tuple[bool, str]:
        """Readiness: the cache is synced and, with leader election, the election runs
        (leading or standing by: a standby must be ready, or no rollout could finish)."""
        if self.webhooks is not None:
            ok, why = self.webhooks.ready()
            if not ok:
                return False, why
        if not self.cache.informers():
            return False, "starting: API server not reached yet"
        if not self.cache.synced():
            waiting = [str(i) for i in self.cache.informers() if not i.synced.is_set()]
            return False, "caches not synced: " + ", ".join(waiting)
        member = self.sharding.membership if self.sharding is not None else None
        if member is not None:
            if not member.alive:
                return False, "shard membership stopped"
            return True, f"sharded: {len(member.held)} buckets"
        if self.elector is not None:
            if not self.elector.alive:
                return False, "leader election stopped"
            return True, "leading" if self.elector.leading else "standby"
        return True, "ok"

    def _start_servers(self) -> None:
        health = parse_addr(self.settings.health_addr)
        metrics = parse_addr(self.settings.metrics_addr)
        routes_health = {"/healthz": check_route(self.healthy), "/readyz": check_route(self.ready)}
        routes_metrics = {
            "/metrics": lambda: (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            )
        }
        if health and metrics and health == metrics:
            self.servers.append(Server(health, {**routes_health, **routes_metrics}))
        else:
            if health:
                self.servers.append(Server(health, routes_health))
            if metrics:
                self.servers.append(Server(metrics, routes_metrics))
        for s in self.servers:
            s.start()

    # -- shutdown -----------------------------------------------------------------------------

    def stop(self) -> bool:
        """Stop taking work, let in-flight hooks finish within the grace period, close.

        Returns True if every worker finished in time.
        """
        self.stopping.set()
        deadline = time.monotonic() + self.settings.grace
        clean = all([c.stop(deadline) for c in self.controllers.values()])
        if not clean:
            log.warning("in-flight hooks did not finish within %.0fs", self.settings.grace)
        if self.sharding is not None and self.sharding.membership is not None:
            self.sharding.stop()
            self.sharding.membership.stop()  # hands its buckets over at once
        if self.elector is not None:
            self.elector.stop(release=True)
        for i in self.cache.informers():
            i.stop()
        self.recorder.stop()
        self.plugins.shutdown()
        if self.webhooks is not None:
            self.webhooks.stop()
        for s in self.servers:
            s.stop()
        return clean
