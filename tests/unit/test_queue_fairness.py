"""The urgent tier goes first, but never starves the rest (issue 22: a sustained stream
of CR edits kept child, timer and retry work waiting for as long as it lasted)."""

from minop.queue import URGENT_SHARE, WorkQueue

from .test_queue import Clock


def test_a_sustained_edit_stream_cannot_starve_a_child_triggered_key():
    clock = Clock()
    q = WorkQueue(clock=clock, urgent=frozenset({"watch"}))
    q.add("scaled", "child")
    q.add("retried", "retry")
    served = []
    for i in range(3 * (URGENT_SHARE + 1)):
        q.add(f"edit-{i}", "watch")  # a new edit arrives before every get
        key, _ = q.get(timeout=0)
        served.append(key)
        q.done(key)
    assert served.index("scaled") == URGENT_SHARE  # after URGENT_SHARE edits
    assert served.index("retried") == 2 * URGENT_SHARE + 1
    assert served.count("scaled") == served.count("retried") == 1


def test_edits_served_while_nothing_else_waited_do_not_count():
    clock = Clock()
    q = WorkQueue(clock=clock, urgent=frozenset({"watch"}))
    for i in range(3 * URGENT_SHARE):  # only edits: each served at once
        q.add(f"edit-{i}", "watch")
        assert q.get(timeout=0)[0] == f"edit-{i}"
    q.add("child", "child")
    for i in range(URGENT_SHARE + 1):
        q.add(f"more-{i}", "watch")
    order = [q.get(timeout=0)[0] for _ in range(URGENT_SHARE + 2)]
    assert order.index("child") == URGENT_SHARE  # edits still first, up to their share
