"""The manager: wires the client, informers, cache, controllers and probes.

One informer per (kind, namespace) fills the cache and maps each event to the
keys of the custom resources it concerns — the object itself, a child's
owner, a referenced object's referrers — which go to the owning resource's
controller. With leader election every replica keeps its cache warm and only
the leader's controllers run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from minop import __version__, kinds
from minop.apierrors import ApiError
from minop.apply import INSTANCE, KIND_NAME, MANAGED_SELECTOR, hash_only
from minop.cache import INDEXERS, Cache
from minop.controller import Controller
from minop.events import Recorder
from minop.informer import Informer, strip_managed_fields
from minop.keys import Key
from minop.kube import Kube, Obj, user_agent
from minop.kubeconfig import SA_DIR
from minop.leader import LeaderElector
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.reconcile import Binding, Reconciler
from minop.resource import Kind
from minop.runtime import Runtime
from minop.serve import Server, check_route, parse_addr
from minop.settings import Settings

log = logging.getLogger("minop.manager")


class StartError(Exception):
    """The operator cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class _Watched:
    """How a kind is watched: only minop's children (label-filtered), or every object
    (owned kinds; kinds a resource references, kept as a content hash)."""

    labelled: bool
    hashed: bool


class Manager:
    def __init__(
        self,
        settings: Settings,
        plugins: PluginManager | None = None,
        kube: Kube | None = None,
    ) -> None:
        self.settings = settings
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
        self._by_ref: dict[tuple[str, str], Kind] = {}  # (group, kind) -> owned kind
        self.servers: list[Server] = []
        self.stopping = threading.Event()
        self.elector: LeaderElector | None = None

    # -- startup ------------------------------------------------------------------------

    def start(self) -> None:
        """Everything but reconciling: plugins, informers, a synced cache."""
        # Probes first: /healthz answers and /readyz says why not while the API is slow.
        self._start_servers()
        self._preflight()
        if self._load_plugins:
            self.plugins.load_entry_points()
        self.plugins.startup(self.settings)
        cap = (
            threading.BoundedSemaphore(self.settings.max_workers)
            if self.settings.max_workers
            else None
        )
        for plugin, resource in self.plugins.resources():
            finalizes = self.plugins.implements("minop_finalize", plugin)
            b = Binding(plugin, resource, finalizes)
            reconciler = Reconciler(self.rt, self.plugins, b, lambda key: [])
            self.controllers[resource.kind] = Controller(reconciler, self.settings.workers, cap)
            self._by_ref[(resource.kind.group, resource.kind.kind)] = resource.kind
        self._check_crds()
        self._lease_namespace = self._leader_namespace()
        self.recorder.start()
        self._start_informers()
        self._wait_synced()
        names = ", ".join(f"{c.reconciler.b.plugin}:{k.kind}" for k, c in self.controllers.items())
        scope = ",".join(self.settings.namespaces) or "all namespaces"
        log.info("minop %s serving %s in %s", __version__, names or "none", scope)

    def begin(self, on_lost: Callable[[], None]) -> None:
        """After ``start``: reconcile at once, or once elected (``on_lost`` if deposed)."""
        if self._lease_namespace is None:
            self.start_controllers()
            return
        self.elector = LeaderElector(
            self.kube.for_leader_election(),
            self._lease_namespace,
            self.settings.leader_election_id,
            on_started=self.start_controllers,
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
        raise StartError(
            "--leader-election-namespace is required when not running in a pod "
            "(MINOP_LEADER_ELECTION_NAMESPACE)"
        )

    def _preflight(self) -> None:
        try:
            self.kube.version()
        except ApiError as e:
            raise StartError(f"cannot reach the API server at {self.kube.server}: {e}") from e

    def _check_crds(self) -> None:
        missing = []
        for kind in self.controllers:
            if not kind.group or "." not in kind.group:
                continue  # built-in kinds need no CRD
            try:
                found = self.kube.request("GET", f"/apis/{kind.group}/{kind.version}")
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

    def _watched(self) -> dict[Kind, _Watched]:
        out: dict[Kind, _Watched] = {k: _Watched(False, False) for k in self.controllers}
        for c in self.controllers.values():
            r = c.reconciler.b.resource
            for kind in (*r.children, *r.observes):
                out.setdefault(kind, _Watched(True, kind == kinds.SECRET))
            for rel in r.related:
                if rel.kind not in self.controllers:
                    out[rel.kind] = _Watched(False, True)
        return out

    def _start_informers(self) -> None:
        for kind, how in sorted(self._watched().items(), key=lambda kv: str(kv[0])):
            namespaces: list[str | None] = (
                list(self.settings.namespaces)
                if kind.namespaced and self.settings.namespaces
                else [None]
            )
            for ns in namespaces:
                self.cache.add(
                    Informer(
                        self.kube,
                        kind,
                        self._handler(kind),
                        namespace=ns,
                        label_selector=MANAGED_SELECTOR if how.labelled else None,
                        transform=hash_only if how.hashed else strip_managed_fields,
                        indexers=INDEXERS,
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
            forbidden = [i for i in self.cache.informers() if i.forbidden is not None]
            if forbidden:
                i = forbidden[0]
                assert i.forbidden is not None
                where = f"namespace {i.namespace}" if i.namespace else "all namespaces"
                raise StartError(
                    f"forbidden to list/watch {i.kind.label} in {where}: grant the operator's "
                    f"ServiceAccount list and watch on {i.kind.label} (`python -m minop rbac`); "
                    f"API server said: {i.forbidden.message}"
                )
            if self.stopping.wait(0.05):
                return

    # -- events: which keys an object concerns (informer threads) ---------------------

    def _handler(self, kind: Kind) -> Callable[[str, Obj, Obj | None], None]:
        owned = self.controllers.get(kind)

        def handler(etype: str, obj: Obj, before: Obj | None) -> None:
            if owned is not None:
                key = Key.of(kind, obj)
                if etype == "DELETED":
                    owned.reconciler.deleted(key, obj)
                owned.enqueue(key, "watch")
                return
            meta = obj.get("metadata") or {}
            for key in self._owners(meta):
                self.controllers[key.kind].enqueue(key, "child")
            for key in self.cache.referrers(kind, meta.get("namespace") or "", meta["name"]):
                self.controllers[key.kind].enqueue(key, "related")

        return handler

    def _owners(self, meta: Obj) -> list[Key]:
        ns = meta.get("namespace") or ""
        keys = []
        for ref in meta.get("ownerReferences") or []:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = self._by_ref.get((group, str(ref.get("kind"))))
            if kind is not None:
                keys.append(Key(kind, ns if kind.namespaced else "", ref["name"]))
        if keys:
            return keys
        # Grandchildren (pods of a child Deployment) are found through their labels.
        labels = meta.get("labels") or {}
        name, instance = labels.get(KIND_NAME), labels.get(INSTANCE)
        return [
            Key(k, ns if k.namespaced else "", instance)
            for k in self.controllers
            if instance and k.kind.lower() == name
        ]

    # -- controllers ------------------------------------------------------------------------

    @property
    def reconciling(self) -> bool:
        """Controllers run: not waiting for leadership."""
        return any(c.started for c in self.controllers.values())

    def start_controllers(self) -> None:
        """Begin reconciling (at once, or when this replica becomes the leader)."""
        if self.reconciling or self.stopping.is_set():
            return
        for c in self.controllers.values():
            c.start()
        self._resync("resync")
        threading.Thread(target=self._resync_loop, name="resync", daemon=True).start()

    def _resync(self, cause: str) -> None:
        for kind, c in self.controllers.items():
            for ns, name in self.cache.keys(kind):
                c.enqueue(Key(kind, ns, name), cause)

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
            limit = c.reconciler.b.resource.hook_timeout + 120
            stuck = c.stuck(now, limit)
            if stuck:
                bad.append(f"controller {c.name}: all {stuck} workers busy for over {limit:.0f}s")
        return (not bad), "; ".join(bad)

    def ready(self) -> tuple[bool, str]:
        """Readiness: the cache is synced and, with leader election, the election runs
        (leading or standing by: a standby must be ready, or no rollout could finish)."""
        if not self.cache.informers():
            return False, "starting: API server not reached yet"
        if not self.cache.synced():
            waiting = [str(i) for i in self.cache.informers() if not i.synced.is_set()]
            return False, "caches not synced: " + ", ".join(waiting)
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
        if self.elector is not None:
            self.elector.stop(release=True)
        for i in self.cache.informers():
            i.stop()
        self.recorder.stop()
        self.plugins.shutdown()
        for s in self.servers:
            s.stop()
        return clean
