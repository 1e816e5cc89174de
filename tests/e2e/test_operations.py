"""What an SRE relies on: leader election, probes, metrics, graceful shutdown."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import widgets
from leasehold import LeaseHold
from prometheus_client.parser import text_string_to_metric_families
from proxy import Proxy, upstream_of
from test_core import calls, condition, create, get
from widgets import install_entry_points

from minop.kit.e2e.fixtures import AuditLog, http_get, local_cluster_dir, metric_sum
from minop.kit.testing import OperatorRunner, free_port, wait_for

pytestmark = pytest.mark.usefixtures("test_crds")
LEASE, RENEW, RETRY = 15, 10, 2


class OperatorProcess:
    """``python -m minop run`` as a user runs it, with the test plugins installed."""

    def __init__(self, workdir: Path, ns: str, *args: str, env: dict[str, str] | None = None):
        self.health, self.metrics_port = free_port(), free_port()
        self.log = workdir / f"operator-{self.health}.log"
        cmd = [
            sys.executable,
            "-m",
            "minop",
            "run",
            "-n",
            ns,
            "--log-format",
            "json",
            "--health-addr",
            f"127.0.0.1:{self.health}",
            "--metrics-addr",
            f"127.0.0.1:{self.metrics_port}",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            env={**os.environ, **(env or {})},
        )
        self.agent_pid = self.proc.pid
        wait_for(lambda: http_get(self.url("/healthz"))[0] == 200, 30, "operator probes up")

    def url(self, path: str) -> str:
        port = self.metrics_port if path == "/metrics" else self.health
        return f"http://127.0.0.1:{port}{path}"

    def metric(self, sample: str, **labels: str) -> float:
        code, text = http_get(self.url("/metrics"))
        return metric_sum(text, sample, **labels) if code == 200 else -1.0

    def leading(self) -> bool:
        return self.metric("leader_election_master_status") == 1

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)


@pytest.fixture
def plugin_env(tmp_path):
    path = install_entry_points(
        tmp_path / "ep", {"ops-widgets": "widgets:WIDGETS", "ops-sleepers": "widgets:SLEEPERS"}
    )
    markers = tmp_path / "markers"
    markers.mkdir()
    return {"PYTHONPATH": path, "MINOP_TEST_MARKERS": str(markers)}


@pytest.fixture
def processes():
    started: list[OperatorProcess] = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL)


def elect_args(ns: str) -> list[str]:
    return [
        "--leader-elect",
        "--leader-election-namespace",
        ns,
        "--leader-election-id",
        "minop-e2e",
    ]


def pid_of(entry: dict) -> int | None:
    """The pid in a minop User-Agent, ``minop/<version> (<host>/<pid>)[ suffix]``."""
    m = re.match(r"minop/\S+ \(.*/(\d+)\)", entry.get("userAgent", ""))
    return int(m.group(1)) if m else None


def stamp_of(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stamp(entry: dict) -> float:
    return stamp_of(entry["requestReceivedTimestamp"])


def writes_by_pid(audit_log: AuditLog, ns: str) -> list[tuple[str, int]]:
    """(time, pid) of every write in ``ns`` by a minop process, Leases excluded."""
    out = []
    for e in audit_log.entries():
        ref = e.get("objectRef") or {}
        pid = pid_of(e)
        if (
            pid is not None
            and e.get("stage") == "ResponseComplete"
            and ref.get("namespace") == ns
            and ref.get("resource") != "leases"
        ):
            out.append((e["requestReceivedTimestamp"], pid))
    return sorted(out)


def test_leader_election_failover(
    namespace, kubectl, tmp_path, plugin_env, processes, maybe_audit_log
):
    ns = namespace
    args = [*elect_args(ns), "--plugin", "ops-widgets"]
    a = OperatorProcess(tmp_path, ns, *args, env=plugin_env)
    b = OperatorProcess(tmp_path, ns, *args, env=plugin_env)
    processes += [a, b]
    wait_for(lambda: a.leading() or b.leading(), 30, "a leader")
    leader, standby = (a, b) if a.leading() else (b, a)
    assert not standby.leading()
    assert standby.metric("leader_election_master_status", name="minop-e2e") == 0
    create(kubectl, ns, widgets.WIDGET, "w1")
    kubectl("wait", "--for=condition=Ready", "widget/w1", "-n", ns, "--timeout=30s")

    # kill -9: the standby takes over once the lease expires
    leader.stop(signal.SIGKILL)
    killed = time.monotonic()
    create(kubectl, ns, widgets.WIDGET, "w2")
    kubectl("wait", "--for=condition=Ready", "widget/w2", "-n", ns, "--timeout=40s")
    took = time.monotonic() - killed
    # not before the lease expired (the last renewal was at most RETRY before the kill),
    # and once: a slow machine adds seconds, a takeover waiting out a second lease adds 15
    assert LEASE - RETRY <= took < 2 * LEASE, took
    assert standby.leading()

    # SIGTERM of an idle leader releases the lease: a new standby takes over fast
    c = OperatorProcess(tmp_path, ns, *args, env=plugin_env)
    processes.append(c)
    wait_for(lambda: http_get(c.url("/readyz"))[0] == 200, 30, "standby caches synced")
    assert standby.stop() == 0
    released = time.monotonic()
    wait_for(c.leading, LEASE + RETRY + 5, "new leader after release")
    took = time.monotonic() - released
    # the released lease is taken at the next try, not after it expired
    assert took < LEASE - RETRY, f"took {took:.1f}s: as long as waiting for the lease to expire"

    if maybe_audit_log is not None:  # never two writers at once
        pids = [pid for _, pid in writes_by_pid(maybe_audit_log, ns)]
        runs = [p for i, p in enumerate(pids) if i == 0 or pids[i - 1] != p]
        assert len(runs) == len(set(runs)), f"interleaved writers: {runs}"


def test_sigterm_lets_a_slow_hook_finish_and_releases_the_lease(
    namespace, kubectl, tmp_path, plugin_env, processes
):
    ns = namespace
    markers = Path(plugin_env["MINOP_TEST_MARKERS"])
    p = OperatorProcess(
        tmp_path, ns, *elect_args(ns), "--plugin", "ops-sleepers", "--grace", "20", env=plugin_env
    )
    processes.append(p)
    wait_for(p.leading, 30, "leader")
    create(kubectl, ns, widgets.SLEEPER, "s1", sleep=4)
    wait_for(lambda: (markers / "s1.started").exists(), 30, "slow hook running")
    start = time.monotonic()
    assert p.stop(signal.SIGTERM) == 0
    assert time.monotonic() - start < 20
    assert (markers / "s1.done").exists()
    lease = json.loads(kubectl("get", "lease", "minop-e2e", "-n", ns, "-o", "json").stdout)
    assert not lease["spec"].get("holderIdentity")
    cr = get(kubectl, "sleeper/s1", ns)
    assert condition(cr, "Ready")["status"] == "True"  # its result was still recorded


def test_probes_follow_the_api_connection(namespace, kubectl, kubeconfig, tmp_path):
    proxy = Proxy(upstream_of(kubeconfig))
    proxied = proxy.kubeconfig(kubeconfig, tmp_path / "kubeconfig")
    proxy.cut()
    runner = OperatorRunner(
        {"widgets": widgets.Widgets(), "slow": widgets.Hanging(widgets.SLOW, timeout=1)},
        namespaces=[namespace],
        kubeconfig=str(proxied),
        watch_inactivity=4.0,
    )
    starting = threading.Thread(target=runner.__enter__, daemon=True)
    starting.start()
    try:
        wait_for(lambda: runner.operator and runner.operator.servers, 10, "probes up")
        health = f"http://127.0.0.1:{runner.op.servers[0].port}"
        assert http_get(health + "/healthz")[0] == 200
        assert http_get(health + "/readyz")[0] == 503
        proxy.resume()
        wait_for(lambda: http_get(health + "/readyz")[0] == 200, 60, "ready after resume")
        starting.join(30)

        # a stalled API connection: the watchdog restarts the stream within the inactivity
        # limit, while liveness stays healthy (restarting the pod would not help; the
        # informers keep trying), and a change made meanwhile is applied after it
        proxy.cut()
        # within the inactivity limit (4 s) and the watchdog's check, whatever the load
        # adds: a watch that stalls for good never restarts
        wait_for(
            lambda: metric_sum(runner.metrics(), "minop_watch_restarts_total", reason="inactivity"),
            15,
            "the stalled watch restarted",
        )
        assert http_get(health + "/healthz")[0] == 200
        create(kubectl, namespace, widgets.WIDGET, "during-outage")
        assert http_get(health + "/healthz")[0] == 200
        proxy.resume()
        kubectl("wait", "--for=condition=Ready", "widget/during-outage", "-n", namespace,
                "--timeout=60s")  # fmt: skip
        assert http_get(health + "/healthz")[0] == 200

        # a hook stuck past its timeout does not make /healthz fail on its own
        create(kubectl, namespace, widgets.SLOW, "stuck")
        wait_for(
            lambda: (
                (condition(get(kubectl, "slow/stuck", namespace), "Degraded") or {}).get("reason")
                == "HookTimeout"
            ),
            20,
            "hook timed out",
        )
        assert http_get(health + "/healthz")[0] == 200
    finally:
        proxy.resume()
        runner.stop()
        proxy.close()


def test_metrics_after_a_scripted_scenario(namespace, kubectl):
    ns = namespace
    hooks = {
        "widgets": widgets.Widgets(),
        "flaky": widgets.Flaky(),
        "broken": widgets.Broken(),
        "racers": widgets.Racers(),
    }
    with OperatorRunner(hooks, namespaces=[ns]) as op:
        create(kubectl, ns, widgets.WIDGET, "w1")
        create(kubectl, ns, widgets.FLAKY, "f1")
        create(kubectl, ns, widgets.BROKEN, "b1")
        create(kubectl, ns, widgets.RACER, "r1")
        kubectl("wait", "--for=condition=Ready", "widget/w1", "-n", ns, "--timeout=30s")
        kubectl("wait", "--for=condition=Ready", "racer/r1", "-n", ns, "--timeout=30s")
        wait_for(
            lambda: (
                (condition(get(kubectl, "flaky/f1", ns), "Degraded") or {}).get("reason")
                == "RetriesExhausted"
            ),
            30,
            "flaky gave up",
        )
        queues = [c.queue for c in op.op.controllers.values()]
        wait_for(lambda: all(len(q) == 0 for q in queues), 10, "queues drained")
        code, text = op.get("/metrics")
        assert code == 200
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {
            "controller_runtime_reconcile",
            "workqueue_depth",
            "minop_hook_calls",
            "rest_client_requests",
        } <= families
        m = lambda sample, **kw: metric_sum(text, sample, **kw)  # noqa: E731
        assert m("controller_runtime_reconcile_total", controller="widget", result="success") >= 1
        assert (
            m("controller_runtime_reconcile_total", controller="flaky", result="requeue_after") == 3
        )
        assert m("controller_runtime_reconcile_total", controller="flaky", result="error") == 1
        assert m("controller_runtime_reconcile_total", controller="broken", result="error") == 1
        for name in ("widget", "flaky", "broken", "racer"):  # one queue per controller
            assert m("workqueue_depth", name=name) == 0
        # a 409 inside a hook: retried as an API error, not counted against max_tries=1
        assert m("controller_runtime_reconcile_total", controller="racer", result="requeue") == 1
        assert m("controller_runtime_reconcile_total", controller="racer", result="success") == 1
        assert m("minop_hook_calls_total", plugin="racers", hook="minop_create", result="api") == 1
        assert m(
            "minop_hook_calls_total", plugin="flaky", hook="minop_create", result="temporary"
        ) == len([c for c in calls(ns, "create") if c[1] == "f1"])
        assert (
            m("minop_hook_calls_total", plugin="broken", hook="minop_create", result="permanent")
            == 1
        )
        assert (
            m("minop_hook_calls_total", plugin="widgets", hook="minop_create", result="success")
            == 1
        )
        assert m("rest_client_requests_total", method="PATCH") >= 1


def test_remove_finalizers_frees_objects_when_the_operator_is_gone(namespace, kubectl, plugin_env):
    ns = namespace
    kubectl("create", "configmap", "keep", "-n", ns)
    with OperatorRunner({"widgets": widgets.Widgets()}, namespaces=[ns]):
        create(kubectl, ns, widgets.WIDGET, "w1")
        kubectl("wait", "--for=condition=Ready", "widget/w1", "-n", ns, "--timeout=30s")
    kubectl(
        "patch",
        "widget/w1",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"add","path":"/metadata/finalizers/-","value":"other.io/keep"}]',
    )
    kubectl("delete", "widget/w1", "-n", ns, "--wait=false")
    r = subprocess.run(
        [sys.executable, "-m", "minop", "remove-finalizers", "-n", ns, "--plugin", "ops-widgets"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **plugin_env},
    )
    assert r.returncode == 0, r.stderr
    assert f"Widget {ns}/w1" in r.stdout
    cr = get(kubectl, "widget/w1", ns)
    assert cr["metadata"]["finalizers"] == ["other.io/keep"]  # only ours removed


def test_leader_cut_off_mid_hook_never_writes_after_the_standby_leads(
    namespace, kubectl, kubeconfig, tmp_path, plugin_env, processes, audit_log
):
    """The leader's renewals hang (an admission webhook holds Lease updates) while its
    hook keeps writing through a path that still works: only the write fence stops it
    at the renew deadline, counted from the last renewal that went through, before the
    leader exits and long before the standby may lead. Without the fence the hook's
    writes go on until the process exits."""
    if local_cluster_dir(kubeconfig) is None:
        pytest.skip("the API server must reach a webhook on 127.0.0.1 (CLUSTER=local)")
    ns = namespace
    markers = Path(plugin_env["MINOP_TEST_MARKERS"])
    args = [*elect_args(ns), "--plugin", "ops-sleepers"]
    hold = LeaseHold(kubectl, ns)
    try:
        a = OperatorProcess(tmp_path, ns, *args, env=plugin_env)
        processes.append(a)
        wait_for(a.leading, 30, "A leads")
        b = OperatorProcess(tmp_path, ns, *args, env=plugin_env)
        processes.append(b)
        wait_for(lambda: http_get(b.url("/readyz"))[0] == 200, 30, "B synced")
        create(kubectl, ns, widgets.SLEEPER, "s1", sleep=16, beat=True)
        wait_for(lambda: (markers / "s1.started").exists(), 30, "A's hook running")
        hold.install()  # A can no longer renew; its hook still writes
        assert a.proc.wait(RENEW + 15) == 1  # deposed: exits, as no thread can be stopped
        assert hold.held, "A's renewals were held"
        hold.remove()  # B may acquire once the lease expired
        wait_for(b.leading, LEASE + RETRY + 10, "B leads after the lease expired")
        kubectl("wait", "--for=condition=Ready", "sleeper/s1", "-n", ns, "--timeout=60s")
    finally:
        hold.close()
    renewed = [
        stamp(e)
        for e in audit_log.entries()
        if pid_of(e) == a.agent_pid
        and (e.get("objectRef") or {}).get("resource") == "leases"
        # the acquisition counts too: a fast start can have the hold in place before
        # A's first renewal
        and e.get("verb") in ("create", "update")
        and e.get("stage") == "ResponseComplete"
        and (e.get("responseStatus") or {}).get("code") in (200, 201)
    ]
    deadline = max(renewed) + RENEW  # A's fence counts from before its last good renewal
    by_pid = writes_by_pid(audit_log, ns)
    a_writes = [stamp_of(t) for t, p in by_pid if p == a.agent_pid]
    b_writes = [stamp_of(t) for t, p in by_pid if p == b.agent_pid]
    assert any(t > max(renewed) for t in a_writes), "A's hook wrote while its renewals hung"
    assert max(a_writes) < deadline, f"A wrote {max(a_writes) - deadline:.1f}s past its deadline"
    assert b_writes and max(a_writes) < min(b_writes)
