"""The core against a real API server: lifecycle, retries, isolation, zero-write restart."""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import widgets
import yaml
from conftest import install_entry_points
from widgets import CALLS

import minop
from minop.kit.testing import OperatorRunner, wait_for

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("test_crds")


def get(kubectl, what, ns, missing_ok=False):
    r = kubectl("get", what, "-n", ns, "-o", "json", check=not missing_ok)
    if missing_ok and r.returncode != 0:
        return None
    return json.loads(r.stdout)


def create(kubectl, ns, kind, name, **spec):
    obj = {
        "apiVersion": f"{kind.group}/{kind.version}",
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def condition(obj, ctype):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def calls(ns, what=None):
    return [c[1:] for c in CALLS[ns] if what is None or c[1] == what]


def test_lifecycle_create_update_status_child_delete(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"widgets": widgets.Widgets()}, namespaces=[ns]):
        create(kubectl, ns, widgets.WIDGET, "w1", size=1, message="hi")
        kubectl("wait", "--for=condition=Ready", "widget/w1", "-n", ns, "--timeout=30s")
        cr = get(kubectl, "widget/w1", ns)
        cm = get(kubectl, "configmap/w1-data", ns)
        ref = cm["metadata"]["ownerReferences"][0]
        assert ref["uid"] == cr["metadata"]["uid"] and ref["controller"] is True
        assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "minop"
        assert cr["status"]["observedGeneration"] == cr["metadata"]["generation"]
        assert cr["status"]["size"] == 1
        assert "minop.dev/finalizer" in cr["metadata"]["finalizers"]
        assert calls(ns, "create") == [("create", "w1")]

        # spec edit -> update with the diff
        kubectl("patch", "widget/w1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":2}}')
        wait_for(lambda: [c for c in calls(ns, "update") if c[2] == "spec"], 20, "spec update")
        spec_update = next(c for c in calls(ns, "update") if c[2] == "spec")
        assert spec_update[3] == [("change", ("spec", "size"), 1, 2)]
        wait_for(
            lambda: get(kubectl, "configmap/w1-data", ns)["data"]["size"] == "2",
            20,
            "child updated",
        )

        # status-only edit -> no hook call (a late child event may still reconcile)
        def not_child():
            return [c for c in CALLS[ns] if not (c[1] == "update" and c[3] == "child")]

        before = len(not_child())
        kubectl(
            "patch",
            "widget/w1",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"size":99}}',
        )
        wait_for(lambda: get(kubectl, "widget/w1", ns)["status"]["size"] == 99, 10, "status edit")
        time.sleep(2)  # a bounded window in which no hook may run for it
        assert len(not_child()) == before

        # child deleted -> recreated
        old_uid = get(kubectl, "configmap/w1-data", ns)["metadata"]["uid"]
        kubectl("delete", "configmap/w1-data", "-n", ns)
        wait_for(
            lambda: (
                (get(kubectl, "configmap/w1-data", ns, missing_ok=True) or {})
                .get("metadata", {})
                .get("uid")
                not in (None, old_uid)
            ),
            20,
            "child recreated",
        )

        # CR deleted -> finalize, finalizer removed, object gone, delete hook
        kubectl("delete", "widget/w1", "-n", ns, "--wait=false")
        wait_for(lambda: get(kubectl, "widget/w1", ns, missing_ok=True) is None, 30, "CR gone")
        wait_for(lambda: calls(ns, "delete"), 10, "delete hook")
        kinds = [c[0] for c in calls(ns) if c[0] in ("finalize", "delete")]
        assert kinds == ["finalize", "delete"]


def test_referenced_secret_is_cached_as_a_hash_and_its_change_reconciles(namespace, kubectl):
    ns = namespace
    kubectl("create", "secret", "generic", "creds", "-n", ns, "--from-literal=password=one")
    kubectl("create", "secret", "generic", "unrelated", "-n", ns, "--from-literal=x=y")

    def secret_hash():
        cm = get(kubectl, "configmap/w1-data", ns, missing_ok=True) or {}
        return (cm.get("metadata", {}).get("annotations") or {}).get("test.minop.dev/secret-hash")

    with OperatorRunner({"widgets": widgets.Widgets()}, namespaces=[ns]) as op:
        create(kubectl, ns, widgets.WIDGET, "w1", secretName="creds")
        first = wait_for(secret_hash, 20, "hash on the child")
        assert first != "missing"  # known at create time, not one reconcile later
        kubectl("patch", "secret/unrelated", "-n", ns, "-p", '{"stringData":{"x":"z"}}')
        kubectl("patch", "secret/creds", "-n", ns, "-p", '{"stringData":{"password":"two"}}')
        wait_for(lambda: secret_hash() not in (None, first), 20, "hash follows the Secret")
        assert any(c[2] == "related" for c in calls(ns, "update"))
        # one informer for the kind (not one watch per referenced name), holding a
        # hash of each Secret, never its data
        secrets = [i for i in op.op.cache.informers() if i.kind.kind == "Secret"]
        assert len(secrets) == 1 and secrets[0].field_selector is None
        cached = secrets[0].get(ns, "creds")
        assert cached is not None and "data" not in cached and minop.HASH_KEY in cached


def test_timer_fires_on_schedule(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"tickers": widgets.Tickers()}, namespaces=[ns]):
        start = time.monotonic()
        create(kubectl, ns, widgets.TICKER, "t1")
        wait_for(lambda: len(calls(ns, "timer")) >= 3, 20, "three ticks")
        ticks = [c[0] for c in CALLS[ns] if c[1] == "timer"]
        assert ticks[0] - start >= 0.9  # initial delay
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert all(1.5 < g < 3.5 for g in gaps[:2]), gaps
        wait_for(
            lambda: (get(kubectl, "ticker/t1", ns)["status"].get("ticks") or 0) >= 2,
            10,
            "ticks in status",
        )
        kubectl("delete", "ticker/t1", "-n", ns)
        n = len(calls(ns, "timer"))
        time.sleep(3)  # timers stop with the object
        assert len(calls(ns, "timer")) <= n + 1


def test_temporary_error_backs_off_then_degrades_until_spec_changes(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"flaky": widgets.Flaky()}, namespaces=[ns]):
        create(kubectl, ns, widgets.FLAKY, "f1", size=1)
        wait_for(
            lambda: (
                (condition(get(kubectl, "flaky/f1", ns), "Degraded") or {}).get("reason")
                == "RetriesExhausted"
            ),
            30,
            "RetriesExhausted",
        )
        times = [c[0] for c in CALLS[ns] if c[1] == "create"]
        assert len(times) == 4
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 0.8 < gaps[0] < 2.0, gaps
        for prev, nxt in itertools.pairwise(gaps):
            assert 1.5 < nxt / prev < 2.8, gaps  # roughly doubling
        time.sleep(2)
        assert len(calls(ns, "create")) == 4  # given up: no fifth call
        cr = get(kubectl, "flaky/f1", ns)
        assert condition(cr, "Ready")["status"] == "False"
        events = get(kubectl, "events", ns)["items"]
        assert any(e["reason"] == "RetriesExhausted" and e["type"] == "Warning" for e in events)

        kubectl("patch", "flaky/f1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":2}}')
        wait_for(lambda: len(calls(ns, "create")) == 5, 10, "retried after spec edit")
        wait_for(
            lambda: condition(get(kubectl, "flaky/f1", ns), "Degraded")["status"] == "False",
            10,
            "Degraded cleared",
        )


def test_permanent_error_degrades_at_once_with_one_call(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"broken": widgets.Broken()}, namespaces=[ns]):
        create(kubectl, ns, widgets.BROKEN, "b1")
        wait_for(
            lambda: (
                (condition(get(kubectl, "broken/b1", ns), "Degraded") or {}).get("reason")
                == "PermanentError"
            ),
            15,
            "PermanentError",
        )
        msg = condition(get(kubectl, "broken/b1", ns), "Degraded")["message"]
        assert "spec.size" in msg
        time.sleep(2)
        assert calls(ns, "create") == [("create", "b1")]


@pytest.fixture
def isolation_entry_points(tmp_path, monkeypatch):
    """The isolation plugins as installed entry points (one of them unimportable)."""
    entries = {
        "iso-a": "widgets:ISO_A",
        "iso-a-startup": "widgets:ISO_A_STARTUP",
        "iso-a-resources": "widgets:ISO_A_RESOURCES",
        "iso-b": "widgets:ISO_B",
        "iso-c": "minop_no_such_module_for_tests",
        "iso-d": "widgets:ISO_D",
    }
    install_entry_points(tmp_path, entries)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tuple(entries)


def test_plugin_isolation(namespace, kubectl, isolation_entry_points, caplog):
    ns = namespace
    caplog.set_level(logging.WARNING)
    with OperatorRunner(None, namespaces=[ns], plugins=isolation_entry_points) as op:
        infos = op.op.plugins.plugins
        assert "import failed" in infos["iso-c"].error
        assert "startup failed" in infos["iso-a-startup"].error
        assert "startup failed" in infos["iso-a-resources"].error
        create(kubectl, ns, widgets.RAISER, "a1")
        create(kubectl, ns, widgets.SLOW, "d1")
        create(kubectl, ns, widgets.WIDGET, "b1")
        kubectl("wait", "--for=condition=Ready", "widget/b1", "-n", ns, "--timeout=30s")
        wait_for(
            lambda: (
                (condition(get(kubectl, "raiser/a1", ns), "Degraded") or {}).get("reason")
                == "HookError"
            ),
            20,
            "A degraded",
        )
        wait_for(
            lambda: (
                (condition(get(kubectl, "slow/d1", ns), "Degraded") or {}).get("reason")
                == "HookTimeout"
            ),
            20,
            "D degraded",
        )
        events = get(kubectl, "events", ns)["items"]
        warned = {
            (e["involvedObject"]["name"], e["reason"]) for e in events if e["type"] == "Warning"
        }
        assert {("a1", "HookError"), ("d1", "HookTimeout")} <= warned
        time.sleep(3)
        # B keeps working while A fails and D hangs
        kubectl("patch", "widget/b1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":3}}')
        wait_for(
            lambda: get(kubectl, "configmap/b1-data", ns)["data"]["size"] == "3", 20, "B reconciles"
        )
    named = [
        r
        for r in caplog.records
        if getattr(r, "k_plugin", None) == "iso-a" and r.levelno >= logging.ERROR
    ]
    # one line per failure, with backoff (1 s, 2 s, 4 s, ...): never a hot loop
    assert 1 <= len(named) <= 6, [r.getMessage() for r in named]
    for plugin in ("iso-c", "iso-a-startup", "iso-a-resources", "iso-d"):
        assert any(getattr(r, "k_plugin", None) == plugin for r in caplog.records), plugin


def test_restart_over_converged_objects_writes_only_the_missing_child(
    namespace, kubectl, audit_log
):
    ns = namespace
    for i in range(3):
        create(kubectl, ns, widgets.WIDGET, f"w{i}", size=i)
    with OperatorRunner({"widgets": widgets.Widgets()}, namespaces=[ns]):
        for i in range(3):
            kubectl("wait", "--for=condition=Ready", f"widget/w{i}", "-n", ns, "--timeout=30s")
    kubectl("delete", "configmap/w1-data", "-n", ns)
    second = OperatorRunner({"widgets": widgets.Widgets()}, namespaces=[ns])
    with second:
        wait_for(
            lambda: get(kubectl, "configmap/w1-data", ns, missing_ok=True), 20, "child recreated"
        )
        # settle: the recreated child's own watch event must not cause more writes
        time.sleep(3)

    def mine(e: dict) -> bool:
        return e.get("userAgent") == second.agent and e.get("stage") == "ResponseComplete"

    entries = wait_for(lambda: audit_log.entries(mine), 10, "audit entries")
    writes = [(e["verb"], e["objectRef"]["resource"], e["objectRef"].get("name")) for e in entries]
    assert writes == [("patch", "configmaps", "w1-data")]


def run_cli(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **env_extra}
    cmd = [sys.executable, "-m", "minop", "run", "--health-addr", "0", "--metrics-addr", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def test_cli_errors_are_one_clear_line(tmp_path, kubeconfig):
    install_entry_points(tmp_path, {"nocrd": "widgets:NO_CRD"})
    path = f"{tmp_path}:{Path(__file__).parent}"
    r = run_cli({"PYTHONPATH": path}, "--plugin", "nocrd")
    assert r.returncode == 1
    assert "CRD not installed: missings.test.minop.dev" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    r = run_cli({"KUBECONFIG": str(tmp_path / "absent")})
    assert r.returncode == 1 and "no kubeconfig found" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    bad = yaml.safe_load(Path(kubeconfig).read_text())
    for c in bad["clusters"]:
        c["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "kc").write_text(yaml.safe_dump(bad))
    r = run_cli({"KUBECONFIG": str(tmp_path / "kc")})
    assert r.returncode == 1 and "cannot reach the API server" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
