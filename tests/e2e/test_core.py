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
from widgets import CALLS, install_entry_points

from minop.kit.testing import OperatorRunner, wait_for
from minop.objects import HASH_KEY

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
            return [c[1:] for c in CALLS[ns] if not (c[1] == "update" and c[3] == "child")]

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
        # then a spec edit, which reaches the operator after the status edit (one watch,
        # in order): once its update ran, the status edit's turn has passed without a call
        kubectl("patch", "widget/w1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":3}}')
        marker = ("update", "w1", "spec", [("change", ("spec", "size"), 2, 3)])
        wait_for(lambda: marker in not_child(), 20, "the spec edit's update")
        assert not_child()[before:] == [marker]

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
        assert len(secrets) == 1
        cached = secrets[0].get(ns, "creds")
        assert cached is not None and "data" not in cached and HASH_KEY in cached


def test_timer_fires_on_schedule(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"tickers": widgets.Tickers()}, namespaces=[ns]):
        start = time.monotonic()
        create(kubectl, ns, widgets.TICKER, "t1")
        wait_for(lambda: len(calls(ns, "timer")) >= 3, 20, "three ticks")
        ticks = [c[0] for c in CALLS[ns] if c[1] == "timer"]
        assert ticks[0] - start >= 0.9  # initial delay
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        # never early (the 2 s interval, less the latency from due to hook); lateness under
        # load is bounded by the wait for three ticks
        assert all(g > 1.0 for g in gaps[:2]), gaps
        wait_for(
            lambda: (get(kubectl, "ticker/t1", ns)["status"].get("ticks") or 0) >= 2,
            10,
            "ticks in status",
        )
        kubectl("delete", "ticker/t1", "-n", ns)
        n = len(calls(ns, "timer"))
        # timers stop with the object: a ticker created now ticks twice (after 1 s, then
        # 2 s), by when t1's 2 s timer would have ticked at least once more
        create(kubectl, ns, widgets.TICKER, "t2")
        wait_for(lambda: _ticks(ns, "t2") >= 2, 20, "t2 ticked twice")
        assert _ticks(ns, "t1") <= n + 1  # one tick may have been under way at the delete


def _ticks(ns: str, name: str) -> int:
    return len([c for c in calls(ns, "timer") if c[1] == name])


def _creates(ns: str, name: str) -> int:
    return len([c for c in calls(ns, "create") if c[1] == name])


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
        # doubling from 1 s: each retry waits at least its delay (a slow machine only adds
        # to it), and not 5 s more (a stall that long is not load, a growth too fast is)
        for gap, delay in zip(gaps, (1, 2, 4), strict=True):
            assert delay - 0.05 <= gap < delay + 5, gaps
        cr = get(kubectl, "flaky/f1", ns)
        # given up: no next try is announced (a retry would say "next in ...")
        assert condition(cr, "Degraded")["message"].endswith("(gave up after 4 tries)")
        assert condition(cr, "Ready")["status"] == "False"
        events = get(kubectl, "events", ns)["items"]
        assert any(e["reason"] == "RetriesExhausted" and e["type"] == "Warning" for e in events)

        # an edit that is not to the spec (one watch, in order before the spec edit) gets no
        # try; the spec edit gets a fresh first one: the fifth call, with retry 0
        kubectl("annotate", "flaky/f1", "-n", ns, "test.minop.dev/poke=1")
        kubectl("patch", "flaky/f1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":2}}')
        wait_for(lambda: len(calls(ns, "create")) >= 5, 10, "retried after spec edit")
        assert [c[2] for c in calls(ns, "create")] == [0, 1, 2, 3, 0]
        wait_for(
            lambda: condition(get(kubectl, "flaky/f1", ns), "Degraded")["status"] == "False",
            10,
            "Degraded cleared",
        )


def test_permanent_error_degrades_at_once_with_one_call(namespace, kubectl):
    ns = namespace
    plugins = {"broken": widgets.Broken(), "flaky": widgets.Flaky()}
    with OperatorRunner(plugins, namespaces=[ns]):
        create(kubectl, ns, widgets.BROKEN, "b1")
        # the clock: a Flaky created with it is retried after 1 s, then 2 s more
        create(kubectl, ns, widgets.FLAKY, "f1")
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
        # a retry of b1 with the same backoff would have come before f1's third call
        wait_for(lambda: _creates(ns, "f1") >= 3, 15, "f1 called three times")
        assert [c for c in calls(ns, "create") if c[1] == "b1"] == [("create", "b1")]


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
        # B keeps working while A fails (retried: 1 s, then 2 s later) and D hangs
        wait_for(lambda: _creates(ns, "a1") >= 3, 20, "A retried twice")
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
        # the marker: the child deleted again (on the ConfigMaps watch, after the recreated
        # child's own events, for the same owner): once it is back, those events have had
        # their turn, and must have caused no write
        first_uid = get(kubectl, "configmap/w1-data", ns)["metadata"]["uid"]
        kubectl("delete", "configmap/w1-data", "-n", ns)
        wait_for(
            lambda: (
                (get(kubectl, "configmap/w1-data", ns, missing_ok=True) or {})
                .get("metadata", {})
                .get("uid")
                not in (None, first_uid)
            ),
            20,
            "child recreated again",
        )

    def mine(e: dict) -> bool:
        return e.get("userAgent") == second.agent and e.get("stage") == "ResponseComplete"

    def writes() -> list[tuple[str, str, str]]:
        entries = audit_log.entries(mine)
        return [
            (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("name")) for e in entries
        ]

    wait_for(lambda: len(writes()) >= 2, 10, "audit entries of both recreations")
    assert writes() == [("patch", "configmaps", "w1-data")] * 2


def run_cli(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **env_extra}
    cmd = [sys.executable, "-m", "minop", "run", "--health-addr", "0", "--metrics-addr", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.apionly
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
