"""Leader election's write fence: it never stays open longer than the lease is surely
ours, and once stopping nothing reopens it (issue 22)."""

import copy
import threading

import pytest

from minop.leader import LeaderElector
from minop.lease import LeaseTiming
from minop.metrics import Metrics
from minop.settings import Settings, SettingsError


class LeaseApi:
    """One Lease in memory; ``slow`` runs inside every replace (a slow or stuck PUT)."""

    def __init__(self):
        self.lease = None
        self.metrics = Metrics()
        self.slow = lambda: None
        self.replaces = 0

    def with_timeouts(self, timeout, retries):
        return self

    def get_or_none(self, kind, name, namespace=None):
        return copy.deepcopy(self.lease)

    def get(self, kind, name, namespace=None):
        return copy.deepcopy(self.lease)

    def create(self, kind, body, namespace=None, *, fenced=True):
        self.lease = copy.deepcopy(body) | {
            "metadata": {**body["metadata"], "resourceVersion": "1"}
        }
        return copy.deepcopy(self.lease)

    def replace(self, kind, body, *, fenced=True):
        self.replaces += 1
        self.slow()
        rv = str(int(self.lease["metadata"]["resourceVersion"]) + 1)
        self.lease = copy.deepcopy(body) | {"metadata": {**body["metadata"], "resourceVersion": rv}}
        return copy.deepcopy(self.lease)


def elector(api, clock=None, **kw):
    return LeaderElector(
        api, "ns", "lease", on_started=lambda: None, on_lost=lambda: None,
        clock=clock or (lambda: 0.0), **kw,
    )  # fmt: skip


def test_the_fence_counts_from_before_a_slow_renewal():
    """A renewal that took 3 s kept the fence open 3 s past the renew deadline, counted
    from its answer, while the others count from when the Lease changed."""
    api, now = LeaseApi(), [100.0]
    e = elector(api, clock=lambda: now[0], timing=LeaseTiming(renew_deadline=10.0))
    e.tick()  # acquired (created) at 100
    assert e.may_write()

    def three_seconds():
        now[0] += 3

    api.slow = three_seconds
    now[0] = 105.0
    e.tick()  # renewed: sent at 105, answered at 108
    now[0] = 115.5  # 10.5 s after the renewal was sent
    assert not e.may_write()


def test_a_renewal_answered_after_stop_never_reopens_the_fence():
    api = LeaseApi()
    e = LeaderElector(
        api,
        "ns",
        "lease",
        on_started=lambda: None,
        on_lost=lambda: None,
        timing=LeaseTiming(retry_period=0.01),
    )
    in_flight, answer = threading.Event(), threading.Event()

    def stuck():
        if api.replaces == 1:  # the first renewal hangs until the test answers it
            in_flight.set()
            answer.wait(30)

    api.slow = stuck
    e.start()
    assert in_flight.wait(5)
    assert e.may_write()  # leading since it created the Lease
    e.stop(release=True)  # its join gives up on the stuck renewal
    answer.set()
    e._thread.join(5)
    assert not e.may_write() and not e._thread.is_alive()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"lease_duration": 10, "renew_deadline": 10}, "renew-deadline"),
        ({"renew_deadline": 2, "retry_period": 2}, "retry-period"),
    ],
)
def test_lease_timings_that_cannot_fence_in_time_are_refused(values, named):
    with pytest.raises(SettingsError, match=named):
        Settings(**values)
    with pytest.raises(ValueError, match=named):  # whoever builds them, not only settings
        LeaseTiming(**values)
