"""The floor: the simplest correct Memcached operator, no framework.

List+watch the Memcacheds and this operator's Deployments and Services into
dicts, queue a name on every change, and let a few worker threads create the
missing children, patch a drifted Deployment and patch the status when the
Deployment's readiness moved. A restart over converged objects writes nothing:
every decision compares the desired state with the listed one.

    python -m tests.bench.floor --kubeconfig KC -n NS --health-port PORT
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.bench import memcached as mc
from tests.bench.kubeapi import Api, ApiError, Obj, crs, deployments, services

MANAGER = "bench-floor"
AGENT = "bench-floor/1"
log = logging.getLogger("floor")


class Floor:
    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.crs: dict[str, Obj] = {}
        self.deps: dict[str, Obj] = {}
        self.svcs: dict[str, Obj] = {}
        self.lock = threading.Lock()
        self.pending: dict[str, None] = {}  # insertion-ordered set of queued names
        self.busy: set[str] = set()
        self.wake = threading.Condition(self.lock)
        self.synced = threading.Event()

    # -- list + watch ---------------------------------------------------------------

    def start(self, workers: int) -> None:
        selector = {"labelSelector": f"{mc.MANAGED_BY}={MANAGER}"}
        feeds = [
            (crs(self.ns), {}, self.crs, self._on_cr),
            (deployments(self.ns), selector, self.deps, self._on_child),
            (services(self.ns), selector, self.svcs, self._on_child),
        ]
        ready = []
        for path, params, store, on_change in feeds:
            listed = threading.Event()
            ready.append(listed)
            threading.Thread(
                target=self._feed, args=(path, params, store, on_change, listed), daemon=True
            ).start()
        for listed in ready:
            listed.wait()
        self.synced.set()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"worker-{i}", daemon=True).start()
        with self.lock:
            for name in self.crs:
                self._enqueue(name)

    def _feed(
        self,
        path: str,
        params: dict[str, str],
        store: dict[str, Obj],
        on_change: Callable[[str, Obj, Obj | None], None],
        listed: threading.Event,
    ) -> None:
        while True:
            try:
                page = self.api.get(path, params)
                with self.lock:
                    store.clear()
                    store.update({o["metadata"]["name"]: o for o in page["items"]})
                listed.set()
                rv = page["metadata"]["resourceVersion"]
                while True:  # one watch request after another, resuming where it ended
                    for etype, obj in self.api.watch(path, rv, params):
                        rv = obj["metadata"]["resourceVersion"]
                        if etype == "BOOKMARK":
                            continue
                        name = obj["metadata"]["name"]
                        with self.lock:
                            before = store.pop(name, None)
                            if etype != "DELETED":
                                store[name] = obj
                            on_change(etype, obj, before)
            except ApiError as e:  # 410 Gone and the like: list again
                log.warning("%s: %s; listing again", path, e)
            except OSError as e:  # requests' connection errors are OSErrors
                log.warning("%s: %s; reconnecting", path, e)
                time.sleep(0.5)

    def _on_cr(self, etype: str, obj: Obj, before: Obj | None) -> None:
        if etype == "DELETED":
            return  # the garbage collector removes the children
        if before is None or before["metadata"].get("generation") != obj["metadata"].get(
            "generation"
        ):
            self._enqueue(obj["metadata"]["name"])

    def _on_child(self, etype: str, obj: Obj, before: Obj | None) -> None:
        owner = mc.owner_of(obj)
        if owner:
            self._enqueue(owner)

    # -- the queue: one worker per name at a time ---------------------------------------

    def _enqueue(self, name: str) -> None:  # called with the lock held
        self.pending[name] = None
        self.wake.notify()

    def _work(self) -> None:
        while True:
            with self.wake:
                name = next((n for n in self.pending if n not in self.busy), None)
                while name is None:
                    self.wake.wait()
                    name = next((n for n in self.pending if n not in self.busy), None)
                del self.pending[name]
                self.busy.add(name)
                cr, dep, svc = self.crs.get(name), self.deps.get(name), self.svcs.get(name)
            try:
                if cr is not None:
                    self.reconcile(cr, dep, svc)
            except (ApiError, OSError) as e:
                log.warning("%s: %s; retrying", name, e)
                time.sleep(0.2)
                with self.lock:
                    self._enqueue(name)
            finally:
                with self.wake:
                    self.busy.discard(name)
                    if name in self.pending:
                        self.wake.notify()

    # -- the Memcached logic ------------------------------------------------------------

    def reconcile(self, cr: Obj, dep: Obj | None, svc: Obj | None) -> None:
        name = cr["metadata"]["name"]
        want = mc.deployment(cr, MANAGER)
        if dep is None:
            dep = self._create(deployments(self.ns), self._owned(want, cr), self.deps)
        else:
            patch = mc.deployment_drift(want, dep)
            if patch is not None:
                dep = self.api.patch(deployments(self.ns, name), patch)
                self._remember(self.deps, dep)
        if svc is None:
            self._create(services(self.ns), self._owned(mc.service(cr, MANAGER), cr), self.svcs)
        status = mc.status_from(dep)
        if mc.ready_key(status) != mc.ready_key(cr.get("status")):
            written = self.api.patch(crs(self.ns, name) + "/status", {"status": status})
            self._remember(self.crs, written)

    def _owned(self, child: Obj, cr: Obj) -> Obj:
        child["metadata"]["ownerReferences"] = [mc.owner_reference(cr)]
        return child

    def _create(self, path: str, body: Obj, store: dict[str, Obj]) -> Obj:
        try:
            made = self.api.create(path, body)
        except ApiError as e:
            if e.status != 409:
                raise
            made = self.api.get(f"{path}/{body['metadata']['name']}")  # made by an earlier try
        self._remember(store, made)
        return made

    def _remember(self, store: dict[str, Obj], obj: Obj) -> None:
        """Keep what a write returned unless the watch already brought something newer."""
        name = obj["metadata"]["name"]
        with self.lock:
            cached = store.get(name)
            if cached is None or int(cached["metadata"]["resourceVersion"]) < int(
                obj["metadata"]["resourceVersion"]
            ):
                store[name] = obj


def serve_health(port: int, floor: Floor) -> None:
    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = floor.synced.is_set()
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"syncing")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("-n", "--namespace", required=True)
    p.add_argument("--health-port", type=int, required=True)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    floor = Floor(Api(args.kubeconfig, AGENT), args.namespace)
    serve_health(args.health_port, floor)
    floor.start(args.workers)
    threading.Event().wait()  # until SIGTERM


if __name__ == "__main__":
    main()
