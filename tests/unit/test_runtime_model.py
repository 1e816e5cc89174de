"""A model-based search for interleavings that lose work or spin (issue 22).

Hypothesis drives the real runtime (``model_runtime.Replica``) against a ``FakeApi``
(widget a may exist before minop starts): users create, edit, delete and recreate
widgets and delete their children (sometimes unseen: the watch expires); the watch
delivers, repeats or drops (then relists) events; writes fail (409, 422, 429, 500,
timeouts, lost answers) or let a user act and the watch deliver before minop records
their answer; hooks fail, return a bad status or time out; timers come due; a standby
takes over; resourceVersions may be non-numeric. Checked after every step: no two
hooks on one object at once, no hook on a body older than one already handled, no
write through a closed fence, no pass of an object sooner than the backoff floor
(fake time) after its last one unless an event or a timer queued it since. Checked
once everything is healed and quiet: every widget converged (child as the spec says,
observedGeneration, lastHandledSpec) or visibly Degraded, minop_delete at most once
per uid, no spin, and what the runtime remembers bounded by what exists.

``make unit`` searches for MINOP_MODEL_SECONDS (60), ``make fuzz`` for FUZZ_SECONDS
with longer schedules. A failure prints the seed and the shortest schedule; pin it
in ``test_runtime_model_found.py`` as an explicit test (``run``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
)

from minop.kit.fakeapi import FakeApi
from minop.kube import Obj

from .model_runtime import CM, NS, WIDGETS, Clock, Plugin, Replica, validate

# A batch of examples per seed, batches until the time budget is spent: ``make unit``
# spends about a minute, ``make fuzz`` MINOP_MODEL_SECONDS. MINOP_MODEL_SEED replays one
# batch (the seed a failure prints).
BATCH = settings(
    max_examples=100,
    stateful_step_count=int(os.environ.get("MINOP_MODEL_STEPS", "30")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
BUDGET = float(os.environ.get("MINOP_MODEL_SECONDS", "60"))

NAMES = st.sampled_from(["a", "b"])
SIZES = st.integers(0, 3)
KINDS = st.sampled_from(["widgets", "configmaps"])  # names: short falsifying schedules
BY_PLURAL = {k.plural: k for k in (WIDGETS, CM)}
SETTLE_PASSES = 200  # worker passes to quiet after healing; a spin exceeds it
# Thousands of passes per run: the runtime's warnings would cost more than the passes.
logging.getLogger("minop").setLevel(logging.CRITICAL)


class RuntimeModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.plugin = Plugin()
        self.replicas: list[Replica] = []
        self.gone: list[Replica] = []  # deposed
        self.failovers = 0
        self.writes_seen = 0
        self.mid_write: str | None = None  # see work

    @initialize(numeric=st.booleans(), existing=st.booleans())
    def start(self, numeric: bool, existing: bool = False) -> None:
        """``existing``: widget a exists before minop starts (its first list queues it):
        most schedules then reach a reconciled widget with a child."""
        rv = str if numeric else (lambda n: f"x{n:04x}")
        self.api = FakeApi([WIDGETS, CM], validate=validate, rv_format=rv)
        if existing:
            self.create_or_edit("a", 0, True)
        self.api.after_write = self._after_write
        self.replicas.append(Replica(self.api, self.plugin, self.clock, "r0", leading=True))

    @property
    def leader(self) -> Replica:
        return self.replicas[0]

    # -- users --------------------------------------------------------------------------

    def _widget(self, name: str) -> Obj | None:
        return self.api.get(WIDGETS, NS, name)

    @rule(name=NAMES, size=SIZES, ok=st.booleans())
    def create_or_edit(self, name: str, size: int, ok: bool) -> None:
        """A user creates the widget, or edits it (a recreation, if it was deleted)."""
        live = self._widget(name)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            return
        spec = {"size": size} if ok else {"size": size, "statusOk": False}
        body = live or {"apiVersion": WIDGETS.api_version, "kind": WIDGETS.kind,
                        "metadata": {"name": name, "namespace": NS}}  # fmt: skip
        self.api.put(WIDGETS, {**body, "spec": spec})

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        if self._widget(name) is not None:
            self.api.remove(WIDGETS, NS, name)

    @rule(name=NAMES, unseen=st.booleans())
    def delete_child(self, name: str, unseen: bool = False) -> None:
        """A user deletes the widget's child (``unseen``: then the watch expires before
        delivering it, and whatever else it had not delivered, and relists)."""
        if self.api.get(CM, NS, f"{name}-cm") is not None:
            self.api.remove(CM, NS, f"{name}-cm")
            if unseen:
                self.leader.relist(CM)

    # -- the watch ----------------------------------------------------------------------

    @rule(kind=KINDS, n=st.integers(0, 4), again=st.booleans())
    def deliver(self, kind: str, n: int, again: bool) -> None:
        """The watch delivers ``n`` events to every replica (``again``: first the leader
        gets the last one a second time)."""
        if again:
            self.leader.deliver(BY_PLURAL[kind], again=True)
        for r in self.replicas:
            for _ in range(n):
                r.deliver(BY_PLURAL[kind])

    @rule(kind=KINDS)
    def gone_and_relist(self, kind: str) -> None:
        """The watch drops what it had not delivered yet and expires (410): a relist."""
        self.leader.relist(BY_PLURAL[kind])

    # -- writes -------------------------------------------------------------------------

    @rule(answer=st.sampled_from([409, 422, 429, 500, "timeout", "lost"]))
    def fail_next_write(self, answer: int | str) -> None:
        self.api.faults.append(answer)

    def _after_write(self, path: str) -> None:
        """Once a write is stored, before minop reads its answer (see ``work``)."""
        action = self.mid_write
        child, widget = "/configmaps/" in path, f"/{WIDGETS.plural}/" in path
        if action is None or (action, child, widget) in (("delete-child", False, True),
                                                         ("edit", True, False)):  # fmt: skip
            return
        self.mid_write = None
        name = path.split(f"/{WIDGETS.plural}/")[-1].split("/")[0]
        if action == "delete-child":
            self.api.remove(CM, NS, path.rsplit("/", 1)[-1])
        elif action == "edit":
            live = self._widget(name)
            if live is not None:
                live["spec"] = {**live["spec"], "size": live["spec"]["size"] + 1}
                self.api.put(WIDGETS, live)
        for kind in (WIDGETS, CM):
            while self.leader.deliver(kind):
                pass

    # -- hooks, workers, time -------------------------------------------------------------

    @rule(outcome=st.sampled_from(["temporary", "permanent", "crash", "not-a-dict", "slow"]))
    def next_hook_fails(self, outcome: str) -> None:
        self.plugin.script.append(outcome)

    @rule(outcome=st.sampled_from(["temporary", "crash", "slow"]))
    def next_timer_fails(self, outcome: str) -> None:
        self.plugin.timer_script.append(outcome)

    @rule(
        n=st.integers(1, 4),
        during=st.sampled_from([None, "deliver", "delete-child", "edit"]),
        dt=st.sampled_from([0.0, 0.005, 0.1, 1.0, 2.5, 61.0, 400.0]),
        finish=st.booleans(),
    )
    def work(self, n: int, during: str | None, dt: float, finish: bool) -> None:
        """``dt`` seconds pass (``finish``: slow hooks end), then worker passes;
        ``during``: what happens once one of their writes is stored, before minop reads
        its answer (the watch delivers; first a user deletes the child just written, or
        edits the widget just written)."""
        self.clock.now += dt
        if finish:
            self._release()
        self.mid_write = during
        for _ in range(n):
            self.leader.work()
        self.mid_write = None

    def _release(self) -> None:
        release, self.plugin.release = self.plugin.release, type(self.plugin.release)()
        release.set()
        for r in self.replicas + self.gone:
            r.wait_held()

    # -- leadership -------------------------------------------------------------------------

    @precondition(lambda self: len(self.replicas) == 1)
    @rule()
    def standby_starts(self) -> None:
        name = f"r{self.failovers + 1}"
        self.replicas.append(Replica(self.api, self.plugin, self.clock, name, leading=False))

    @precondition(lambda self: len(self.replicas) == 2)
    @rule()
    def failover(self) -> None:
        """The leader loses its lease (its fence closes, the process ends); the standby
        takes over."""
        old = self.replicas.pop(0)
        old.stop()  # a hook it still runs keeps running: the fence must stop its writes
        self.gone.append(old)
        self.failovers += 1
        self.leader.takeover()

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def no_hook_overlap_or_older_body(self) -> None:
        assert not self.plugin.violations, self.plugin.violations

    @invariant()
    def no_requeue_sooner_than_the_backoff_floor_without_an_event(self) -> None:
        for r in self.replicas:
            assert not r.hasty, "requeued with no event:\n" + "\n".join(r.hasty[:12])

    @invariant()
    def no_write_through_a_closed_fence(self) -> None:
        if not hasattr(self, "api"):
            return
        new, self.writes_seen = self.api.writes[self.writes_seen :], len(self.api.writes)
        leading = {r.name for r in self.replicas if r.leading}
        for method, path, result, agent in new:
            assert agent in leading, f"{method} {path} ({result}) by {agent}, not the leader"

    def teardown(self) -> None:
        if not self.replicas:
            return
        try:
            self._settle()
            self._check_converged()
        finally:
            self._release()
            for r in self.replicas:
                r.stop()

    def _settle(self) -> None:
        """Heal every fault and run until nothing is queued; a spin never gets there."""
        self.plugin.script.clear()
        self.plugin.timer_script.clear()
        self.api.faults.clear()
        self.mid_write = None
        self._release()
        passes: list[str] = []
        while True:
            delivered = False
            for r in self.replicas:
                for kind in (WIDGETS, CM):
                    while r.deliver(kind):
                        delivered = True
            if self.leader.work():
                key, causes = self.leader.queue.took or ("?", set())
                passes.append(f"{self.clock.now:.3f} {key} {sorted(causes)}")
                assert len(passes) < SETTLE_PASSES, "no quiet: a spin?\n" + "\n".join(passes[-12:])
                continue
            if delivered:
                continue
            due = self.leader.queue.next_due()
            if due is None:
                self.no_requeue_sooner_than_the_backoff_floor_without_an_event()
                return
            self.clock.now = max(self.clock.now, due)

    def _check_converged(self) -> None:
        rec = self.leader.controller.reconciler
        live: set[tuple[str, str]] = set()
        for w in self.api.all(WIDGETS):
            meta, status = w["metadata"], w.get("status") or {}
            name, uid, gen = meta["name"], meta["uid"], meta["generation"]
            live.add((NS, name))
            assert not meta.get("deletionTimestamp"), f"{name}: deletion never finished"
            assert self.plugin.deleted[uid] == 0, f"{name}: minop_delete on a live object"
            degraded = [c for c in status.get("conditions") or [] if c["type"] == "Degraded"]
            if not w["spec"].get("statusOk", True) or self.plugin.last.get(uid) == (
                gen,
                "permanent",
            ):
                assert degraded and degraded[0]["status"] == "True", f"{name}: not Degraded"
                continue
            assert status.get("observedGeneration") == gen, f"{name}: {status} at gen {gen}"
            assert json.loads(status.get("lastHandledSpec", "null")) == {"spec": w["spec"]}, (
                f"{name}: lastHandledSpec {status.get('lastHandledSpec')} for {w['spec']}"
            )
            child = self.api.get(CM, NS, f"{name}-cm")
            assert child is not None, f"{name}: its ConfigMap is missing"
            assert child["data"] == {"size": str(w["spec"]["size"])}, f"{name}: {child['data']}"
            assert child["metadata"]["ownerReferences"][0]["uid"] == uid
        for uid, n in self.plugin.deleted.items():
            assert n <= 1, f"minop_delete ran {n} times for {uid}"
        # what the runtime remembers is bounded by what exists
        cached = {(k.namespace, k.name) for k in rec.tombstones}
        assert cached <= live, f"tombstones of {cached - live}"
        timers = {(k.namespace, k.name) for k, _ in self.leader.controller.timers._due}
        assert timers <= live, f"timers of {timers - live}"
        remembered = {(k.namespace, k.name) for k in rec.retries.remembered()}
        assert remembered <= live, f"failure records of {remembered - live}"
        for kind in (WIDGETS, CM):
            in_api = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["metadata"]["uid"]
                      for o in self.api.all(kind)}  # fmt: skip
            cache = self.leader.m.cache
            seen = {(k.namespace, k.name): (cache.get(kind, k.namespace, k.name) or {})
                    .get("metadata", {}).get("uid") for k in cache.keys(kind)}  # fmt: skip
            assert seen == in_api, f"{kind.kind}: cache {seen} but API {in_api}"


def test_runtime_model_finds_no_lost_work_or_spin() -> None:
    fixed = os.environ.get("MINOP_MODEL_SEED")
    end = time.monotonic() + BUDGET
    while True:
        batch = int(fixed) if fixed else random.getrandbits(64)
        test = seed(batch)(get_state_machine_test(RuntimeModel, settings=BATCH))
        try:
            test()
        except BaseException:
            print(f"model batch seed {batch}: replay with MINOP_MODEL_SEED={batch}")
            raise
        print(f"model batch seed {batch}: passed")  # shown with -s: what a run covered
        if fixed or time.monotonic() > end:
            return


# -- schedules the search found, pinned (each failed on main before its fix) ----------------


def run(*steps: tuple[str, dict[str, object]], numeric: bool = True) -> None:
    model = RuntimeModel()
    model.start(numeric=numeric)
    try:
        for step, args in steps:
            getattr(model, step)(**args)
            model.no_hook_overlap_or_older_body()
            model.no_write_through_a_closed_fence()
            model.no_requeue_sooner_than_the_backoff_floor_without_an_event()
    except BaseException:
        model.plugin.release.set()  # no hook left blocked
        raise
    model.teardown()
