"""The Kopf contender: the Memcached logic as an idiomatic Kopf operator.

``on.create`` makes the Deployment and headless Service (``kopf.adopt`` sets
the owner reference and namespace), ``on.update`` of the spec patches the
Deployment, and an ``on.event`` handler on the children patches the parent's
status when the Deployment's readiness moved (an index of the parents' status
tells it what they show now). Children go through pykube-ng, sync handlers run
in Kopf's thread pool.

    kopf run --standalone -n NS --liveness=http://127.0.0.1:PORT/healthz \
        -m tests.bench.kopf_operator
"""

from __future__ import annotations

import os
from typing import Any

import kopf
import pykube
from pykube.http import KubernetesHTTPAdapter

from tests.bench import memcached as mc
from tests.bench.kubeapi import GROUP, PLURAL, VERSION

MANAGER = "bench-kopf"
WORKERS = 8  # handler threads; Kopf's default pool is min(32, cores + 4)
_api: pykube.HTTPClient | None = None
SETTINGS = (
    "kopf run --standalone -n <ns> (no peering: one instance); sync handlers on a pool of "
    f"{WORKERS} threads; progress in annotations (AnnotationsProgressStorage: the strict status "
    "schema prunes status.kopf); watch requests bounded to 300 s; no client-side limit"
)


def api() -> pykube.HTTPClient:
    global _api
    if _api is None:
        config = pykube.KubeConfig.from_file(os.environ["KUBECONFIG"])
        adapter = KubernetesHTTPAdapter(config, pool_connections=4, pool_maxsize=WORKERS * 2)
        _api = pykube.HTTPClient(config, http_adapter=adapter)
        # Kopf's own requests say kopf/<version>: the handlers' say so too, so the
        # API server's audit log attributes both to this contender.
        _api.session.headers["User-Agent"] = f"kopf/{kopf.__version__} pykube-ng"
    return _api


class Memcached(pykube.objects.NamespacedAPIObject):
    version = f"{GROUP}/{VERSION}"
    endpoint = PLURAL
    kind = "Memcached"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # The status schema is structural: status.kopf would be pruned, so keep the
    # handlers' progress in annotations (Kopf's advice for strict schemas).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    # Bounded watch requests, so a silently dropped stream is noticed.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = WORKERS
    api()


def _create(obj: pykube.objects.APIObject) -> None:
    try:
        obj.create()
    except pykube.exceptions.HTTPError as e:
        if e.code != 409:  # made by an earlier try of this handler
            raise


@kopf.on.create(GROUP, VERSION, PLURAL)
def create_fn(body: kopf.Body, **_: Any) -> None:
    dep, svc = mc.deployment(dict(body), MANAGER), mc.service(dict(body), MANAGER)
    kopf.adopt([dep, svc], owner=body)
    _create(pykube.Deployment(api(), dep))
    _create(pykube.Service(api(), svc))


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def update_fn(body: kopf.Body, **_: Any) -> None:
    want = mc.deployment(dict(body), MANAGER)
    kopf.adopt(want, owner=body)
    # Kopf calls this only when the spec changed: patch the desired spec as it is.
    pykube.Deployment(api(), want).patch({"spec": want["spec"]})


@kopf.index(GROUP, VERSION, PLURAL)
def shown(namespace: str | None, name: str, status: kopf.Status, **_: Any) -> Any:
    return {(namespace, name): mc.ready_key(dict(status))}


# An index arrives as a keyword argument named after it, which Kopf's handler protocol
# cannot declare: hence the ignore.
@kopf.on.event("apps", "v1", "deployments", labels={mc.MANAGED_BY: MANAGER})  # type: ignore[arg-type]
def child_event(
    type: str, body: kopf.Body, namespace: str | None, shown: kopf.Index, **_: Any
) -> None:
    owner = mc.owner_of(body)
    if owner is None or type == "DELETED":
        return
    status = mc.status_from(dict(body))
    current = next(iter(shown.get((namespace, owner), [])), mc.ready_key(None))
    if mc.ready_key(status) == current:
        return
    parent = Memcached(api(), {"metadata": {"name": owner, "namespace": namespace}})
    parent.patch({"status": status}, subresource="status")
