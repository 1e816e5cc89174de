import pytest

from minop.apply import APPLIED_HASH, needs_apply, prepare, subset
from minop.conditions import Condition, merge
from minop.diff import Change, diff
from minop.status import InvalidStatus, new_status, write_status

OWNER = {
    "apiVersion": "cache.minop.dev/v1alpha1",
    "kind": "Memcached",
    "metadata": {"name": "mc", "namespace": "ns", "uid": "u-1", "generation": 3},
}


def test_diff_reports_add_change_remove_with_paths():
    old = {"spec": {"size": 1, "image": "a", "gone": True}}
    new = {"spec": {"size": 2, "image": "a", "port": 1}}
    assert diff(old, new) == [
        Change("remove", ("spec", "gone"), True, None),
        Change("add", ("spec", "port"), None, 1),
        Change("change", ("spec", "size"), 1, 2),
    ]
    assert diff(new, new) == []


def test_prepare_sets_owner_labels_namespace_and_hash():
    child = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mc"}, "spec": {}}
    out = prepare(child, OWNER, {"app.kubernetes.io/managed-by": "minop"})
    meta = out["metadata"]
    assert meta["namespace"] == "ns"
    assert meta["ownerReferences"][0]["uid"] == "u-1"
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "minop"
    assert APPLIED_HASH in meta["annotations"]
    assert "metadata" not in child or "namespace" not in child["metadata"]  # input untouched


def test_prepare_refuses_cross_namespace_children():
    child = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "o"}}
    with pytest.raises(ValueError, match="namespace"):
        prepare(child, OWNER, {})


def test_subset_ignores_server_defaults_but_not_changed_values():
    desired = {"spec": {"replicas": 2, "ports": [{"port": 80}]}}
    live = {"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "x": 1}}
    assert subset(desired, live)
    assert not subset({"spec": {"replicas": 3}}, live)
    assert not subset({"spec": {"ports": [{"port": 80}, {"port": 81}]}}, live)


def test_needs_apply_when_missing_changed_or_drifted_only():
    child = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "mc"},
        "spec": {"type": "ClusterIP"},
    }
    desired = prepare(child, OWNER, {})
    assert needs_apply(desired, None)
    live = {
        **desired,
        "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5"},
        "metadata": {
            **desired["metadata"],
            "annotations": {**desired["metadata"]["annotations"], "user": "kept"},
        },
    }
    assert not needs_apply(desired, live)  # user annotations and defaults don't count
    drifted = {**live, "spec": {"type": "NodePort"}}
    assert needs_apply(desired, drifted)
    changed = prepare({**child, "spec": {"type": "NodePort"}}, OWNER, {})
    assert needs_apply(changed, live)  # desired state changed since the last apply


def test_condition_transition_time_moves_only_on_flip():
    first = merge(None, [Condition("Ready", False, "Starting", "")], 1, stamp="t1")
    same = merge(first, [Condition("Ready", False, "StillStarting", "x")], 2, stamp="t2")
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["reason"] == "StillStarting"
    assert same[0]["observedGeneration"] == 2
    flipped = merge(same, [Condition("Ready", True, "Reconciled", "")], 2, stamp="t3")
    assert flipped[0]["lastTransitionTime"] == "t3"


def test_condition_reason_must_be_camel_case():
    with pytest.raises(ValueError, match="CamelCase"):
        Condition("Ready", True, "not camel")


def test_status_merges_results_and_writes_only_changes():
    class FakeKube:
        def __init__(self):
            self.calls = []

        def patch(self, kind, name, patch, ns, subresource=None):
            self.calls.append(patch)
            return {"patched": True}

    obj = {**OWNER, "status": {"nodes": ["a"], "old": 1}}
    status = new_status(
        obj, [{"nodes": ["a", "b"], "old": None}], [Condition("Ready", True, "Reconciled")]
    )
    assert status["nodes"] == ["a", "b"] and "old" not in status
    assert status["observedGeneration"] == 3
    kube = FakeKube()
    write_status(kube, None, obj, status)
    patch = kube.calls[0]["status"]
    assert patch["old"] is None and patch["nodes"] == ["a", "b"]
    converged = {**OWNER, "status": status}
    assert write_status(kube, None, converged, dict(status)) is None
    assert len(kube.calls) == 1


def test_hook_returning_a_non_dict_is_a_clear_error():
    with pytest.raises(InvalidStatus, match="return a dict"):
        new_status(OWNER, ["oops"], [])


def test_needs_apply_settles_on_what_the_api_server_stores():
    """Defect 10: stringData, normalised quantities and None values never settled, so
    such a child was written on every reconcile."""
    from minop.apply import needs_apply, prepare
    from minop.objects import hash_only

    owner = {
        "apiVersion": "x/v1",
        "kind": "W",
        "metadata": {"name": "w", "namespace": "ns", "uid": "u"},
    }
    secret = prepare(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
        owner,
        {},
    )
    live = hash_only({**secret, "data": {"k": "dg=="}, "stringData": None})
    live.pop("stringData", None)
    assert not needs_apply(secret, live)
    dep = prepare(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"cpu": "1", "mem": "1024Mi", "gone": None},
        },
        owner,
        {},
    )
    live_dep = {**dep, "spec": {"cpu": "1000m", "mem": "1Gi", "extra": 1}}
    assert not needs_apply(dep, live_dep)
    assert needs_apply(dep, {**dep, "spec": {"cpu": "2", "mem": "1Gi"}})
    assert needs_apply(dep, {**dep, "spec": {"cpu": "1", "mem": "1Gi", "gone": 3}})


def test_events_are_sent_in_the_background_and_aggregation_memory_is_bounded():
    """Defect 10: Events were written synchronously on the workers, and the counts kept
    for aggregation grew without bound."""
    import threading
    import time

    from minop import events

    class Kube:
        def __init__(self, gate):
            self.gate, self.sent = gate, []

        def create(self, kind, body, ns):
            self.gate.wait(5)
            self.sent.append(body["metadata"]["name"])

    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o", "uid": "u"}}
    stuck = Kube(threading.Event())  # an API server that does not answer
    rec = events.Recorder(stuck)  # type: ignore[arg-type]
    rec.start()
    start = time.monotonic()
    for i in range(events.MAX_PENDING + 20):  # one more may be in flight
        rec.event(obj, events.WARNING, "Tick", str(i))
    assert time.monotonic() - start < 2  # no worker ever waits for an Event
    assert rec.dropped >= 10  # the oldest unsent ones went, not the work
    stuck.gate.set()
    rec.stop(10)

    fast = Kube(threading.Event())
    fast.gate.set()
    rec = events.Recorder(fast)  # type: ignore[arg-type]
    for i in range(events.MAX_COUNTS + 50):
        rec.event(obj, events.WARNING, "Tick", str(i))  # distinct: each its own Event
    assert len(fast.sent) == events.MAX_COUNTS + 50
    rec.event(obj, events.WARNING, "Tick", "0")  # forgotten long ago: a new Event, no leak
    assert len(fast.sent) == events.MAX_COUNTS + 51


def test_needs_apply_repairs_configmap_data_another_manager_changed():
    # a ConfigMap child is cached whole (only referenced Secrets are cached as a hash):
    # its data is compared like any other field we own
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}}
    desired = prepare({**child, "data": {"nginx.conf": "events {}"}}, OWNER, {})
    live = {**desired, "data": {"nginx.conf": "events {}", "extra": "kept"}}
    assert not needs_apply(desired, live)
    assert needs_apply(desired, {**desired, "data": {"nginx.conf": "include /etc/x;"}})
    assert needs_apply(desired, {k: v for k, v in desired.items() if k != "data"})
