"""A long re-list keeps the informer's heartbeat (what /healthz reads) turning: a list
of many pages is progress, not a stalled watch (issue 22)."""

import threading

from minop.apierrors import ApiError
from minop.informer import Informer
from minop.kinds import CONFIGMAP
from minop.kit.testing import wait_for
from minop.metrics import Metrics


class PagedKube:
    """Lists in three pages, noting whether each page turned the heartbeat."""

    def __init__(self):
        self.metrics = Metrics()
        self.informer: Informer | None = None
        self.beats: list[bool] = []
        self.listed = threading.Event()

    def list(
        self,
        kind,
        namespace=None,
        *,
        label_selector=None,
        shard_selector=None,
        progress=None,
        transform=None,
    ):
        assert self.informer is not None
        for _ in range(3):
            before = self.informer.heartbeat
            if progress is not None:
                progress()
            self.beats.append(self.informer.heartbeat > before)
        self.listed.set()
        return [], "5"

    def watch(self, kind, namespace, params, read_timeout):
        raise ApiError(503, "ServiceUnavailable", "not in this test")


def test_every_page_of_a_relist_turns_the_heartbeat():
    kube = PagedKube()
    informer = Informer(kube, CONFIGMAP, lambda *a, **kw: None, namespace="ns")  # type: ignore[arg-type]
    kube.informer = informer
    informer.start()
    try:
        wait_for(kube.listed.is_set, 5, "listed")
        assert kube.beats == [True, True, True]
    finally:
        informer.stop()
        # it logs the refused watch: not after the test's log capture
        wait_for(lambda: not informer.alive, 5, "the informer's thread to end")
