"""The path to the API server breaks: etcd compacted while the operator is cut off
(410 Gone on resume), a watch that stalls without closing, kube-apiserver restarted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import chaos_plugins as cp
import pytest
from chaosops import OperatorProcess, creates, items, plugin_env, ready, wait_converged
from faults import apiserver, compact_etcd
from proxy import Proxy, upstream_of

from minop.kit.e2e.api import ApiError
from minop.kit.e2e.fixtures import metric_sum
from minop.kit.testing import wait_for

NOCACHE = f"{cp.NOCACHE.kind.plural}.{cp.NOCACHE.kind.group}"
MEMCACHED = "memcacheds.cache.minop.dev"


def metric(op: OperatorProcess, name: str, /, **labels: str) -> float:
    code, text = op.get("/metrics")
    assert code == 200, text
    return metric_sum(text, name, **labels)


@pytest.fixture(scope="session")
def nocache_crd(kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(cp.NOCACHE.crd))
    kubectl("wait", "--for=condition=Established", f"crd/{NOCACHE}", "--timeout=60s")


@pytest.fixture
def proxy(kubeconfig: str) -> Iterator[Proxy]:
    p = Proxy(upstream_of(kubeconfig))
    yield p
    p.close()


def mc(kind: Any, name: str, size: int = 1) -> dict[str, Any]:
    meta = {"name": name}
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": meta,
        "spec": {"size": size},
    }


def replicas(api, ns: str, name: str) -> int | None:
    try:
        d = api.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    except ApiError as e:
        if e.status == 404:
            return None
        raise
    return int(d["spec"]["replicas"])


@pytest.mark.chaos_fast
def test_etcd_compaction_while_cut_off_relists_emits_deletions_and_misses_nothing(
    nocache_crd, local_cluster, kubeconfig, api, namespace, tmp_path, proxy, figures
):
    ns, kind = namespace, cp.NOCACHE.kind
    path = api.resource_path(NOCACHE, ns)
    env = {**plugin_env(tmp_path), "KUBECONFIG": str(proxy.kubeconfig(kubeconfig, tmp_path / "kc"))}
    op = OperatorProcess(tmp_path, ["-n", ns, "--plugin", "chaos-nocache"], env=env)
    for name in ("keep", "gone", "change"):
        api.request("POST", path, mc(kind, name))
    op.start()
    try:
        wait_converged(api, [NOCACHE], ns, 90)
        gone_uid = api.request("GET", f"{path}/gone")["metadata"]["uid"]
        expired = metric(op, "minop_watch_restarts_total", kind="Memcached", reason="expired")

        proxy.cut()
        figures.fault()
        api.request("DELETE", f"{path}/gone")
        api.request("PATCH", f"{path}/change", {"spec": {"size": 3}})
        api.request("POST", path, mc(kind, "added"))
        wait_for(
            lambda: "gone" not in {o["metadata"]["name"] for o in items(api, NOCACHE, ns)},
            30,
            "gone deleted",
        )
        rev = compact_etcd()
        figures.note(f"etcd compacted at revision {rev} while cut off")
        proxy.drop()
        proxy.resume()
        t0 = time.monotonic()

        wait_for(
            lambda: (
                metric(op, "minop_watch_restarts_total", kind="Memcached", reason="expired")
                > expired
            ),
            60,
            "the resumed watch answered 410 Gone (a re-list)",
        )
        wait_for(
            lambda: (gone_uid, "deleted") in {(u, v) for u, v, _ in creates(tmp_path)},
            60,
            "the deletion emitted",
        )
        wait_for(
            lambda: replicas(api, ns, "change") == 3, 60, "the change made while cut off applied"
        )
        wait_for(
            lambda: ready(api.request("GET", f"{path}/added")),
            60,
            "the object added meanwhile Ready",
        )
        figures.recovered(time.monotonic() - t0)
        wait_converged(api, [NOCACHE], ns, 60)
        names = {o["metadata"]["name"] for o in items(api, NOCACHE, ns)}
        assert names == {"keep", "change", "added"}
        # the Deployment of "gone" goes with it: the garbage collector follows its owner
        # reference, in its own time
        wait_for(
            lambda: {d["metadata"]["name"] for d in items(api, "deployments", ns)} == names,
            60,
            "the Deployment of gone garbage-collected",
        )
        assert not op.exited()
    finally:
        op.stop()


def test_a_stalled_watch_is_detected_within_the_inactivity_limit(
    plugin_crds, kubeconfig, api, namespace, tmp_path, proxy, figures
):
    ns, limit = namespace, 10.0
    env = {"KUBECONFIG": str(proxy.kubeconfig(kubeconfig, tmp_path / "kc"))}
    args = ["-n", ns, "--plugin", "memcached", "--watch-inactivity", str(limit)]
    op = OperatorProcess(tmp_path, args, env=env)
    path = api.resource_path(MEMCACHED, ns)
    api.request("POST", path, {**mc(_mc_kind(), "m"), "apiVersion": "cache.minop.dev/v1alpha1"})
    op.start()
    try:
        wait_converged(api, [MEMCACHED], ns, 90)
        before = metric(op, "minop_watch_restarts_total", reason="inactivity")
        proxy.stall()  # open connections go silent; new ones work
        t0 = time.monotonic()
        figures.fault()
        api.request("PATCH", f"{path}/m", {"spec": {"size": 2}})
        wait_for(
            lambda: metric(op, "minop_watch_restarts_total", reason="inactivity") > before,
            limit * 3,
            "the stall detected",
        )
        detected = time.monotonic() - t0
        figures.note(f"stall detected after {detected:.1f}s (inactivity limit {limit:g}s)")
        wait_for(
            lambda: replicas(api, ns, "m") == 2, 60, "the change made during the stall applied"
        )
        figures.recovered(time.monotonic() - t0)
        assert detected <= limit + 5, detected
    finally:
        op.stop()


def _mc_kind() -> Any:
    return cp.memcached_hooks.KIND


@pytest.mark.chaos_serial
def test_kube_apiserver_restart_reconnects_relists_and_keeps_the_leader(
    plugin_crds, local_cluster, api, namespace, tmp_path, figures
):
    """kube-apiserver stopped and started while the operator leads and reconciles: it
    reconnects, re-lists, converges, and keeps its lease (the outage is shorter)."""
    ns = namespace
    env = {"MINOP_LEASE_DURATION": "90", "MINOP_RENEW_DEADLINE": "80"}
    args = ["-n", ns, "--plugin", "memcached", "--leader-elect", "--leader-election-namespace", ns]
    op = OperatorProcess(tmp_path, args, env=env)
    path = api.resource_path(MEMCACHED, ns)
    for i in range(5):
        api.request(
            "POST", path, {**mc(_mc_kind(), f"m{i}"), "apiVersion": "cache.minop.dev/v1alpha1"}
        )
    op.start()
    try:
        wait_for(lambda: metric(op, "leader_election_master_status") == 1, 60, "leading")
        wait_converged(api, [MEMCACHED], ns, 90)
        t_stop = time.monotonic()
        apiserver("stop")
        figures.fault()
        apiserver("start")
        t_up = time.monotonic()
        figures.note(f"kube-apiserver was down {t_up - t_stop:.1f}s")
        for i in range(5):
            api.request("PATCH", f"{path}/m{i}", {"spec": {"size": 2}})
        wait_for(
            lambda: all(replicas(api, ns, f"m{i}") == 2 for i in range(5)),
            120,
            "changes after the restart applied",
        )
        figures.recovered(time.monotonic() - t_up)
        wait_converged(api, [MEMCACHED], ns, 120)
        assert not op.exited(), op.log_text()[-3000:]
        assert metric(op, "leader_election_master_status") == 1
        assert metric(op, "minop_watch_restarts_total") >= 1
    finally:
        op.stop()
