"""Deletion safety: an object deleted while the operator is down is finalized when it
comes back; a namespace deleted with objects inside goes away with nothing stuck; Redis
claims stay unless the retention policy says delete."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import chaos_plugins as cp
import pytest
from chaosops import OperatorProcess, creates, items, plugin_env, wait_converged

from minop.kit.e2e.api import ApiError
from minop.kit.testing import wait_for

FINALIZING = f"{cp.FINALIZING.kind.plural}.{cp.FINALIZING.kind.group}"
FINALIZER = "minop.dev/finalizer"


@pytest.fixture(scope="session")
def finalizing_crd(kubectl: Any) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(cp.FINALIZING.crd))
    kubectl("wait", "--for=condition=Established", f"crd/{FINALIZING}", "--timeout=60s")


def obj(name: str) -> dict[str, Any]:
    kind = cp.FINALIZING.kind
    meta = {"name": name}
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": meta,
        "spec": {"size": 1},
    }


def exists(api: Any, path: str) -> bool:
    try:
        api.request("GET", path)
    except ApiError as e:
        if e.status == 404:
            return False
        raise
    return True


def test_deleted_while_the_operator_is_down_is_finalized_on_restart(
    finalizing_crd, api, namespace, tmp_path, figures
):
    ns = namespace
    path = api.resource_path(FINALIZING, ns)
    op = OperatorProcess(tmp_path, ["-n", ns, "--plugin", "chaos-finalizing"], plugin_env(tmp_path))
    for name in ("doomed", "kept"):
        api.request("POST", path, obj(name))
    op.start()
    try:
        wait_converged(api, [FINALIZING], ns, 90)
        doomed = api.request("GET", f"{path}/doomed")
        assert FINALIZER in doomed["metadata"].get("finalizers", [])
        op.kill()
        figures.fault()
        api.request("DELETE", f"{path}/doomed")
        # held by the finalizer while nobody runs it
        assert api.request("GET", f"{path}/doomed")["metadata"].get("deletionTimestamp")
        t0 = time.monotonic()
        op.start()
        wait_for(lambda: not exists(api, f"{path}/doomed"), 60, "doomed finalized and gone")
        figures.recovered(time.monotonic() - t0)
        finalized = [u for u, v, _ in creates(tmp_path) if v == "finalized"]
        assert finalized == [doomed["metadata"]["uid"]]
        assert exists(api, f"{path}/kept")
    finally:
        op.stop()


def test_a_namespace_deleted_with_objects_inside_leaves_nothing_stuck(
    finalizing_crd, plugin_crds, api, kubectl, tmp_path, figures
):
    ns = f"chaos-nsdel-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    op = OperatorProcess(
        tmp_path,
        ["-n", ns, "--plugin", "chaos-finalizing", "--plugin", "memcached", "--plugin", "redis"],
        plugin_env(tmp_path),
    )
    try:
        for i in range(3):
            api.request("POST", api.resource_path(FINALIZING, ns), obj(f"f{i}"))
            mc = {
                "apiVersion": "cache.minop.dev/v1alpha1",
                "kind": "Memcached",
                "metadata": {"name": f"m{i}"},
                "spec": {"size": 2},
            }
            api.request("POST", api.resource_path("memcacheds.cache.minop.dev", ns), mc)
        rd = {"apiVersion": "cache.minop.dev/v1alpha1", "kind": "Redis", "metadata": {"name": "r"}}
        api.request("POST", api.resource_path("redises.cache.minop.dev", ns), {**rd, "spec": {}})
        op.start()
        kinds = [FINALIZING, "memcacheds.cache.minop.dev", "redises.cache.minop.dev"]
        wait_converged(api, kinds, ns, 180)
        t0 = time.monotonic()
        kubectl("delete", "namespace", ns, "--wait=false")
        figures.fault()
        wait_for(lambda: not exists(api, f"/api/v1/namespaces/{ns}"), 180, "the namespace gone")
        figures.recovered(time.monotonic() - t0)
        finalized = [u for u, v, _ in creates(tmp_path) if v == "finalized"]
        assert len(finalized) == 3, finalized
        assert not op.exited(), op.log_text()[-3000:]
    finally:
        op.stop()
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_redis_claims_are_kept_unless_the_retention_policy_says_delete(
    plugin_crds, api, namespace, tmp_path, figures
):
    ns = namespace
    path = api.resource_path("redises.cache.minop.dev", ns)
    op = OperatorProcess(tmp_path, ["-n", ns, "--plugin", "redis"])
    policies = {"keep": {}, "drop": {"pvcRetention": {"whenDeleted": "Delete"}}}
    for name, extra in policies.items():
        body = {
            "apiVersion": "cache.minop.dev/v1alpha1",
            "kind": "Redis",
            "metadata": {"name": name},
            "spec": {"replicas": 2, **extra},
        }
        api.request("POST", path, body)
    op.start()
    try:
        wait_converged(api, ["redises.cache.minop.dev"], ns, 180)

        def claims(name: str) -> set[str]:
            return {
                p["metadata"]["name"]
                for p in items(api, "persistentvolumeclaims", ns)
                if p["metadata"]["name"].startswith(f"data-{name}-")
                and not p["metadata"].get("deletionTimestamp")
            }

        assert claims("keep") == {"data-keep-0", "data-keep-1"}
        assert claims("drop") == {"data-drop-0", "data-drop-1"}
        for name in policies:
            api.request("DELETE", f"{path}/{name}")
        figures.fault(2)
        wait_for(lambda: not items(api, "statefulsets", ns), 120, "the StatefulSets gone")
        wait_for(lambda: not claims("drop"), 120, "the claims of whenDeleted: Delete gone")
        assert claims("keep") == {"data-keep-0", "data-keep-1"}
    finally:
        op.stop()
