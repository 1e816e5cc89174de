"""Edit storm: users change specs while minop writes status; no spec change is ever lost.

200 Memcached objects; for 60 s several client threads set ``spec.size`` at random
while the operator reconciles, so user edits and minop's own status writes
interleave on the same objects. Within 10 s after the storm every object must
show the last edit handled: ``observedGeneration == generation``, its Deployment
at the final size, Ready. (Before the informer redesign an edit that raced a
status write could wait for the 10 h resync.)
"""

from __future__ import annotations

import os
import random
import threading
import time

import minop_memcached.hooks as memcached
import pytest

from minop.kit.e2e.api import Api
from minop.kit.testing import OperatorRunner, wait_for

# Control-plane behaviour: on kind it would start hundreds of real memcached containers.
pytestmark = [pytest.mark.usefixtures("plugin_crds"), pytest.mark.kwok]

N = int(os.environ.get("MINOP_STORM_OBJECTS", "200"))
SECONDS = float(os.environ.get("MINOP_STORM_SECONDS", "60"))
THREADS = 4
SETTLE = 60.0  # a bound on convergence after the storm: lost edits never converge


def _ready(obj: dict) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_edit_storm_loses_no_spec_change(namespace: str, api: Api) -> None:
    ns = namespace
    crs = api.resource_path("memcacheds.cache.minop.dev", ns)
    deployments = api.resource_path("deployments.apps", ns)
    names = [f"m{i:03d}" for i in range(N)]
    with OperatorRunner({"memcached": memcached}, namespaces=[ns], workers=4) as op:
        for name in names:
            body = {
                "apiVersion": "cache.minop.dev/v1alpha1",
                "kind": "Memcached",
                "metadata": {"name": name},
                "spec": {"size": 1},
            }
            api.request("POST", crs, body)

        final: dict[str, int] = {}
        end = time.monotonic() + SECONDS
        errors: list[BaseException] = []

        def storm(seed: int) -> None:
            # each thread edits its own share of the objects, so the last patch it sent
            # for a name is that name's final size
            rnd, mine = random.Random(seed), names[seed::THREADS]
            try:
                while time.monotonic() < end:
                    name, size = rnd.choice(mine), rnd.randint(1, 2)
                    api.request("PATCH", f"{crs}/{name}", {"spec": {"size": size}})
                    final[name] = size
                    time.sleep(rnd.uniform(0.1, 0.4))  # a client's pace, not a wait
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=storm, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stormed = time.monotonic()
        backlog = sum(len(c.queue) for c in op.op.controllers.values())
        assert not errors, errors
        assert len(final) > N // 4, "the storm edited too few objects to mean anything"

        def behind() -> list[str]:
            """Objects not yet showing their final edit handled, with what they show."""
            objs = {o["metadata"]["name"]: o for o in api.request("GET", crs)["items"]}
            deps = {d["metadata"]["name"]: d for d in api.request("GET", deployments)["items"]}
            lagging = []
            for name in names:
                obj, dep = objs[name], deps.get(name) or {}
                want, status = final.get(name, 1), obj.get("status") or {}
                seen = (
                    obj["spec"]["size"],
                    obj["metadata"]["generation"],
                    status.get("observedGeneration"),
                    (dep.get("spec") or {}).get("replicas"),
                    _ready(obj),
                )
                if seen != (want, seen[1], seen[1], want, True):
                    ready = next(
                        (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
                    )
                    lagging.append(
                        f"{name} (size, generation, observed, replicas, ready)={seen} "
                        f"deployment status={dep.get('status')} Ready={ready.get('message')}"
                    )
            return lagging

        lagging: list[str] = []

        def converged() -> bool:
            lagging[:] = behind()
            return not lagging

        try:
            wait_for(converged, SETTLE, f"all {N} objects to converge")
        except AssertionError:
            raise AssertionError(
                f"{len(lagging)} objects behind ({backlog} keys were queued when the storm "
                f"ended), e.g. {lagging[:5]}"
            ) from None
        took = time.monotonic() - stormed
        print(f"\nedit storm: {len(final)} objects edited by {THREADS} threads for {SECONDS:g}s; "
              f"{backlog} keys queued when it ended; the last object converged {took:.1f}s "
              "after the storm")  # fmt: skip
        assert op.op.reconciling
