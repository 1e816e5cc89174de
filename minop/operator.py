"""The manager: wires kube client, watchers, cache, queue, workers and HTTP probes.

Watchers (one per watched kind and namespace) fill the cache and queue keys;
workers take keys and hand them to the dispatcher. With leader election,
every replica keeps its cache warm but only the leader's workers run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from minop import __version__, kinds
from minop.apierrors import ApiError
from minop.apply import MANAGED_SELECTOR, hash_only
from minop.cache import Cache
from minop.dispatch import Binding, Dispatcher, Hold
from minop.events import Recorder
from minop.keys import Key
from minop.kube import Kube, Obj, user_agent
from minop.kubeconfig import SA_DIR
from minop.leader import LeaderElector
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.queue import WorkQueue
from minop.resource import Kind
from minop.runtime import Runtime
from minop.serve import Server, check_route, parse_addr
from minop.settings import Settings
from minop.status import spec_of
from minop.watch import Watcher

log = logging.getLogger("minop.operator")


class OperatorError(Exception):
    """The operator cannot start; the message says why and what to do."""


class Operator:
    def __init__(
        self,
        settings: Settings,
        plugins: PluginManager | None = None,
        kube: Kube | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.kube = kube or Kube.from_env(
            settings.kubeconfig,
            settings.context,
            agent=user_agent(__version__),
            metrics=self.metrics,
            qps=settings.qps,
            burst=settings.burst,
        )
        self.kube.metrics = self.metrics
        self.plugins = plugins or PluginManager(settings.plugins)
        self._load_plugins = plugins is None
        self.cache = Cache()
        self.queue = WorkQueue("minop", self.metrics)
        self.rt = Runtime(self.kube, self.cache, self.queue, Recorder(self.kube), self.metrics)
        self.bindings: dict[Kind, Binding] = {}
        self.dispatcher: Dispatcher | None = None
        self.servers: list[Server] = []
        self.stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._busy: dict[str, float] = {}  # worker name -> start of its current item
        self.elector: LeaderElector | None = None

    # -- startup ------------------------------------------------------------------------

    def start(self) -> None:
        # Probes first: /healthz answers and /readyz says why not while the API is slow.
        self._start_servers()
        self._preflight()
        if self._load_plugins:
            self.plugins.load_entry_points()
        self.plugins.startup(self.settings)
        for plugin, resource in self.plugins.resources():
            finalizes = self.plugins.implements("minop_finalize", plugin)
            self.bindings[resource.kind] = Binding(plugin, resource, finalizes)
        self._check_crds()
        self._lease_namespace = self._leader_namespace()
        self.dispatcher = Dispatcher(self.rt, self.plugins, self.bindings, self._watch_named)
        self._start_watchers()
        names = ", ".join(f"{b.plugin}:{k.kind}" for k, b in self.bindings.items()) or "none"
        scope = ",".join(self.settings.namespaces) or "all namespaces"
        log.info("minop %s serving %s in %s", __version__, names, scope)

    def begin(self, on_lost: Callable[[], None]) -> None:
        """After ``start``: reconcile at once, or once elected (``on_lost`` if deposed)."""
        if self._lease_namespace is None:
            threading.Thread(target=self.start_workers, name="start", daemon=True).start()
            return
        self.elector = LeaderElector(
            self.kube,
            self._lease_namespace,
            self.settings.leader_election_id,
            on_started=self.start_workers,
            on_lost=on_lost,
            lease_duration=self.settings.lease_duration,
            renew_deadline=self.settings.renew_deadline,
            retry_period=self.settings.retry_period,
            metrics=self.metrics,
        )
        self.kube.fence = self.elector.may_write
        self.elector.start()

    def _leader_namespace(self) -> str | None:
        if not self.settings.leader_elect:
            return None
        if self.settings.leader_election_namespace:
            return self.settings.leader_election_namespace
        ns_file = SA_DIR / "namespace"
        if ns_file.exists():
            return ns_file.read_text().strip()
        raise OperatorError(
            "--leader-election-namespace is required when not running in a pod "
            "(MINOP_LEADER_ELECTION_NAMESPACE)"
        )

    def _preflight(self) -> None:
        try:
            self.kube.version()
        except ApiError as e:
            raise OperatorError(f"cannot reach the API server at {self.kube.server}: {e}") from e

    def _check_crds(self) -> None:
        missing = []
        for kind in self.bindings:
            if not kind.group or "." not in kind.group:
                continue  # built-in kinds need no CRD
            try:
                found = self.kube.request("GET", f"/apis/{kind.group}/{kind.version}")
                plurals = {r.get("name") for r in found.get("resources") or []}
            except ApiError as e:
                if e.status != 404:
                    raise OperatorError(f"cannot check the CRD of {kind}: {e}") from e
                plurals = set()
            if kind.plural not in plurals:
                missing.append(f"{kind.plural}.{kind.group}")
        if missing:
            raise OperatorError(
                f"CRD not installed: {', '.join(missing)}; "
                "install with `python -m minop crds | kubectl apply -f -`"
            )

    def _namespaces(self, kind: Kind) -> list[str | None]:
        if not kind.namespaced or not self.settings.namespaces:
            return [None]
        return list(self.settings.namespaces)

    def _watcher(
        self,
        kind: Kind,
        handler: Callable[[str, Obj, Obj | None], None],
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> Watcher:
        return Watcher(
            self.kube,
            kind,
            handler,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            transform=transform,
            inactivity=self.settings.watch_inactivity,
            metrics=self.metrics,
        )

    def _start_watchers(self) -> None:
        watched: set[Kind] = set()
        for kind, b in self.bindings.items():
            for ns in self._namespaces(kind):
                self.cache.add(self._watcher(kind, self._owner_handler(b), ns))
            watched.update(b.resource.children, b.resource.observes)
        for kind in sorted(watched, key=str):
            for ns in self._namespaces(kind):
                # Secrets, even our own, are cached as a hash of their data
                transform = hash_only if kind == kinds.SECRET else None
                self.cache.add(
                    self._watcher(
                        kind,
                        self._child_handler,
                        ns,
                        label_selector=MANAGED_SELECTOR,
                        transform=transform,
                    )
                )
        for w in self.cache.watchers():
            w.start()

    def _watch_named(self, kind: Kind, namespace: str, name: str) -> Watcher:
        def handler(etype: str, obj: Obj, before: Obj | None) -> None:
            for key in self.cache.referrers(kind, namespace, name):
                self.queue.add(key, "related")

        w = self._watcher(
            kind, handler, namespace, field_selector=f"metadata.name={name}", transform=hash_only
        )
        w.start()
        return w

    # -- event handlers (watcher threads) -----------------------------------------------

    def _owner_handler(self, b: Binding) -> Callable[[str, Obj, Obj | None], None]:
        kind = b.resource.kind

        def handler(etype: str, obj: Obj, before: Obj | None) -> None:
            key = Key.of(kind, obj)
            if etype == "DELETED":
                assert self.dispatcher is not None
                self.dispatcher.tombstones[key] = obj
            elif before is not None and not _meaningful(b, obj, before):
                return  # status-only change, or our own write echoed back
            self.queue.add(key, "watch")

        return handler

    def _child_handler(self, etype: str, obj: Obj, before: Obj | None) -> None:
        for key in self._owners(obj):
            self.queue.add(key, "child")

    def _owners(self, obj: Obj) -> list[Key]:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ""
        keys = []
        for ref in meta.get("ownerReferences") or []:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            for kind in self.bindings:
                if ref.get("kind") == kind.kind and group == kind.group:
                    keys.append(Key(kind, ns if kind.namespaced else "", ref["name"]))
        if keys:
            return keys
        # Grandchildren (pods of a child Deployment) are found through their labels.
        labels = meta.get("labels") or {}
        name, instance = (
            labels.get("app.kubernetes.io/name"),
            labels.get("app.kubernetes.io/instance"),
        )
        return [
            Key(k, ns if k.namespaced else "", instance)
            for k in self.bindings
            if instance and k.kind.lower() == name
        ]

    # -- workers ---------------------------------------------------------------------------

    @property
    def reconciling(self) -> bool:
        """Workers run: not waiting for leadership or for caches to sync."""
        return bool(self._workers)

    def start_workers(self) -> None:
        """Begin reconciling (at once, or when this replica becomes the leader)."""
        if self._workers:
            return
        self.metrics.max_concurrent.set(self.settings.workers, controller="minop")
        self._wait_synced()
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self._resync("resync")
        threading.Thread(target=self._resync_loop, name="resync", daemon=True).start()

    def _wait_synced(self) -> None:
        # Children must be cached before any reconcile: otherwise every child
        # looks missing and a restart would rewrite them all.
        while not self.cache.synced() and not self.stopping.is_set():
            time.sleep(0.05)

    def _resync(self, cause: str) -> None:
        for kind in self.bindings:
            for w in self.cache.watchers():
                if w.kind == kind and w.label_selector is None and w.field_selector is None:
                    for obj in w.items():
                        self.queue.add(Key.of(kind, obj), cause)

    def _resync_loop(self) -> None:
        while not self.stopping.wait(self.settings.resync):
            self._resync("resync")

    def _work(self) -> None:
        me = threading.current_thread().name
        assert self.dispatcher is not None
        while True:
            item = self.queue.get()
            if item is None:
                return
            key, causes = item
            assert isinstance(key, Key)
            self._busy[me] = time.monotonic()
            self.metrics.active_workers.inc(controller="minop")
            hold: Hold | None = None
            try:
                hold = self.dispatcher.process(key, causes)
            except Exception:
                log.exception("%s: reconcile crashed; retrying", key)
                self.queue.add(key, "retry", self.dispatcher.api_backoff.next(key))
            finally:
                self.metrics.active_workers.dec(controller="minop")
                self._busy.pop(me, None)
            if hold is None:
                self.queue.done(key)
            else:
                threading.Thread(target=self._release, args=(key, hold), daemon=True).start()

    def _release(self, key: Key, hold: Hold) -> None:
        hold.thread.join()
        if hold.delay is not None:
            self.queue.add(key, hold.cause, hold.delay)
        self.queue.done(key)

    # -- probes ------------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        now = time.monotonic()
        bad = [f"watch {w} dead" for w in self.cache.watchers() if not w.alive]
        bad += [
            f"watch {w} silent for {now - w.last_activity:.0f}s"
            for w in self.cache.watchers()
            if w.alive and w.stalled(now)
        ]
        limit = max((b.resource.hook_timeout for b in self.bindings.values()), default=60) + 120
        busy = list(self._busy.values())
        if self._workers and len(busy) == len(self._workers) and all(now - s > limit for s in busy):
            bad.append(f"all {len(busy)} workers busy for over {limit:.0f}s")
        return (not bad), "; ".join(bad)

    def ready(self) -> tuple[bool, str]:
        if not self.cache.watchers():
            return False, "starting: API server not reached yet"
        if not self.cache.synced():
            waiting = [str(w) for w in self.cache.watchers() if not w.synced.is_set()]
            return False, "caches not synced: " + ", ".join(waiting)
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
        self.queue.shutdown()
        deadline = time.monotonic() + self.settings.grace
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        clean = not any(t.is_alive() for t in self._workers)
        if not clean:
            log.warning("in-flight hooks did not finish within %.0fs", self.settings.grace)
        if self.elector is not None:
            self.elector.stop(release=True)
        for w in self.cache.watchers():
            w.stop()
        self.plugins.shutdown()
        for s in self.servers:
            s.stop()
        return clean


def _meaningful(b: Binding, obj: Obj, before: Obj) -> bool:
    """Whether a MODIFIED event asks for work: spec or deletion changed."""
    if spec_of(b.resource, obj) != spec_of(b.resource, before):
        return True
    return bool(obj["metadata"].get("deletionTimestamp")) != bool(
        before["metadata"].get("deletionTimestamp")
    )
