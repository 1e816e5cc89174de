"""The schedules the runtime model (``test_runtime_model``) found, pinned: each failed
before its fix and replays as a plain test."""

from __future__ import annotations

from .test_runtime_model import run


def test_found_status_refused_after_a_successful_hook_is_no_spin():
    """The hook succeeds, the API server refuses its status (422): main ran hook and
    PATCH every 5 ms forever, with no Degraded condition."""
    run(("create_or_edit", {"name": "a", "size": 0, "ok": False}), numeric=False)


def test_found_child_deleted_before_its_apply_answer_is_recreated():
    """The watch shows the child's ADDED and a user's DELETED before minop records the
    apply's answer: main kept the answer as a ghost and never recreated the child."""
    run(
        ("create_or_edit", {"name": "a", "size": 0, "ok": True}),
        ("deliver", {"kind": "widgets", "n": 1, "again": False}),
        ("work", {"n": 3, "during": "delete-child", "dt": 0.0, "finish": False}),
    )


def test_found_a_repeated_deleted_event_runs_minop_delete_once():
    """The watch repeats a DELETED: the informer passed on a deletion of an object it no
    longer held (client-go's DeltaFIFO drops those), and minop_delete ran twice."""
    run(
        ("create_or_edit", {"name": "a", "size": 0, "ok": True}),
        ("delete", {"name": "a"}),
        ("deliver", {"kind": "widgets", "n": 2, "again": False}),
        ("work", {"n": 1, "during": None, "dt": 0.0, "finish": False}),
        ("deliver", {"kind": "widgets", "n": 0, "again": True}),
    )


def test_found_a_timed_out_hook_keeps_its_key_when_its_failure_report_fails():
    """A hook times out and the status write reporting it fails (500): the API error left
    the pass without the running hook, so the key was free for a second hook at once."""
    run(
        ("create_or_edit", {"name": "a", "size": 0, "ok": True}),
        ("deliver", {"kind": "widgets", "n": 1, "again": False}),
        ("work", {"n": 1, "during": None, "dt": 0.0, "finish": False}),
        ("next_hook_fails", {"outcome": "slow"}),
        ("fail_next_write", {"answer": 500}),
        ("work", {"n": 1, "during": None, "dt": 0.0, "finish": False}),
        ("work", {"n": 2, "during": None, "dt": 0.1, "finish": False}),
    )


def test_found_a_deletion_the_old_leader_handled_gets_no_second_minop_delete():
    """The leader handles a deletion (a relist's DELETED, then the name recreated) while
    the standby's watch has not delivered it yet; the standby takes over with the deleted
    object still in its warm cache: main ran minop_delete again when its watch caught up.
    (Seed 10779064855598526973.) A new leader now re-lists before it takes events."""
    run(
        ("standby_starts", {}),
        ("failover", {}),
        ("create_or_edit", {"name": "a", "size": 0, "ok": False}),
        ("standby_starts", {}),
        ("failover", {}),
        ("standby_starts", {}),
        ("delete", {"name": "a"}),
        ("gone_and_relist", {"kind": "widgets"}),
        ("create_or_edit", {"name": "a", "size": 0, "ok": False}),
        ("work", {"n": 1, "during": None, "dt": 0.0, "finish": False}),
        ("failover", {}),
        numeric=False,
    )


def test_found_adding_the_finalizer_is_no_requeue_without_an_event():
    """The pass that adds minop's finalizer requeued its key at once, with no new event:
    the next pass ran at the same instant to read its own write's answer."""
    run(
        ("create_or_edit", {"name": "a", "size": 0, "ok": True}),
        ("deliver", {"kind": "widgets", "n": 1, "again": False}),
        ("work", {"n": 2, "during": None, "dt": 0.0, "finish": False}),
    )


def test_found_child_deleted_in_a_watch_gap_after_its_apply_answer_is_recreated():
    """The apply's answer is recorded, then a user deletes the child and the watch
    expires before delivering either event (410, a relist): a re-list that keeps what
    only the overlay knew keeps the answer as a ghost, and the child is never recreated
    (the relist variant; without ``unseen`` the search rarely found it in 60 s)."""
    run(
        ("create_or_edit", {"name": "a", "size": 0, "ok": True}),
        ("deliver", {"kind": "widgets", "n": 1, "again": False}),
        ("work", {"n": 1, "during": None, "dt": 0.0, "finish": False}),
        ("delete_child", {"name": "a", "unseen": True}),
    )


def test_found_a_timer_hook_that_outlived_its_timeout_is_no_requeue_without_an_event():
    """A timer's hook times out and ends later: the key, held meanwhile, was queued again
    the moment the hook ended, with no new event and no failure's backoff elapsed (seen
    under load, where a hook outlives the model's 0.2 s timeout)."""
    run(
        ("create_or_edit", {"name": "a", "size": 0, "ok": True}),
        ("deliver", {"kind": "widgets", "n": 1, "again": False}),
        ("work", {"n": 3, "during": None, "dt": 0.0, "finish": False}),
        ("next_timer_fails", {"outcome": "slow"}),
        ("work", {"n": 2, "during": None, "dt": 61.0, "finish": False}),
        ("work", {"n": 2, "during": None, "dt": 0.0, "finish": True}),
    )
