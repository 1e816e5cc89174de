import threading

from minop.metrics import Metrics
from minop.queue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_dedup_merges_causes():
    q = WorkQueue()
    q.add("a", "watch")
    q.add("a", "child")
    q.add("b", "watch")
    assert len(q) == 2
    key, causes = q.get(timeout=0)
    assert key == "a" and causes == {"watch", "child"}


def test_key_never_handed_out_twice_while_processing():
    q = WorkQueue()
    q.add("a")
    _key, _ = q.get(timeout=0)
    q.add("a", "child")  # arrives while "a" is processed
    assert q.get(timeout=0.05) is None  # held back, not given to a second worker
    q.done("a")
    assert q.get(timeout=0) == ("a", {"child"})


def test_delayed_add_becomes_due_later():
    clock = Clock()
    q = WorkQueue(clock=clock)
    q.add("a", "retry", delay=5)
    assert q.get(timeout=0) is None
    clock.t += 5
    assert q.get(timeout=0) == ("a", {"retry"})


def test_earlier_add_pulls_a_delayed_entry_forward_but_not_the_reverse():
    clock = Clock()
    q = WorkQueue(clock=clock)
    q.add("a", "retry", delay=5)
    q.add("a", "child")
    assert q.get(timeout=0) == ("a", {"retry", "child"})
    q.done("a")
    q.add("b", "watch")
    q.add("b", "retry", delay=5)  # a later due time does not postpone pending work
    assert q.get(timeout=0) == ("b", {"watch", "retry"})


def test_shutdown_wakes_blocked_workers():
    q = WorkQueue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.shutdown()
    t.join(2)
    assert not t.is_alive() and got == [None]


def test_depth_metric_returns_to_zero():
    m = Metrics()
    q = WorkQueue("minop", m)
    q.add("a")
    q.add("b")
    assert m.queue_depth.value(name="minop") == 2
    for _ in range(2):
        key, _ = q.get(timeout=0)
        q.done(key)
    assert m.queue_depth.value(name="minop") == 0
    assert m.queue_adds.value(name="minop") == 2


def test_queue_duration_counts_waiting_after_due_not_intended_delays_and_longest_runner():
    """Defect 10: a backoff of 100 s showed as 100 s of queueing."""
    clock, m = Clock(), Metrics()
    q = WorkQueue("widget", m, clock=clock)
    q.add("a", "retry", delay=100)
    clock.t += 100.5  # due at +100, picked up half a second later
    q.get(timeout=0)
    text = m.render()
    assert 'workqueue_queue_duration_seconds_bucket{name="widget",le="1"} 1' in text
    assert 'workqueue_queue_duration_seconds_bucket{name="widget",le="0.1"} 0' in text
    clock.t += 7
    q.add("b")  # any change refreshes the gauges
    assert m.longest_running.value(name="widget") == 7
    q.done("a")
    assert m.longest_running.value(name="widget") == 0


def test_urgent_causes_go_first_among_due_keys_and_a_merged_cause_promotes():
    clock = Clock()
    q = WorkQueue(clock=clock, urgent=frozenset({"watch"}))
    for name in ("p1", "p2", "p3"):
        q.add(name, "child")
        clock.t += 1
    q.add("edit", "watch")  # due last, served first
    q.add("p3", "watch")  # a child-queued key that the user edits: promoted
    q.add("later", "watch", delay=60)  # urgent but not due: never ahead of due keys
    order = [q.get(timeout=0)[0] for _ in range(4)]
    assert order == ["p3", "edit", "p1", "p2"]
    assert q.get(timeout=0) is None
    clock.t += 60
    assert q.get(timeout=0) == ("later", {"watch"})
