"""One trial: a contender alone on a fresh namespace through every scenario.

burst (N objects at once) -> update latency -> restart over the converged
objects -> optional memory points (more objects). Times come from the
harness's own watches (time.monotonic on receipt), API cost from the audit
log, CPU and RSS from /proc.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.kubeapi import GROUP, VERSION, Api, ApiError, crs
from tests.bench.observe import Audit, Observer, Seen
from tests.bench.procs import Contender, Operator

QUIET = 2.0  # seconds without a write by the contender: it has settled


@dataclass
class Plan:
    n: int
    updates: int
    rate: float  # updates per second
    memory: tuple[int, ...]  # extra object counts to measure RSS at (each > n)
    logs: Path
    run: str  # names this run's namespaces: bench-<run>-<contender>-<repeat>
    profile: bool = False  # py-spy the minop contender through burst and updates
    seed: int = 14


@dataclass
class Trial:
    contender: str
    repeat: int
    n: int
    create_s: float = 0.0  # the harness's POSTs of the burst
    children_s: float | None = None  # burst start -> last object has both children
    ready_s: float | None = None  # burst start -> last object Ready
    children_lat: list[float] = field(default_factory=list)  # per object, from its ADDED
    ready_lat: list[float] = field(default_factory=list)
    burst_writes: dict[str, int] = field(default_factory=dict)
    burst_reads: dict[str, int] = field(default_factory=dict)
    cpu_burst_s: float = 0.0
    update_lat: list[float] = field(default_factory=list)
    update_writes: dict[str, int] = field(default_factory=dict)
    cpu_update_s: float = 0.0
    restart_ready_s: float | None = None
    restart_idle_s: float | None = None
    restart_writes: dict[str, int] = field(default_factory=dict)
    restart_reads: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[int, float] = field(default_factory=dict)  # watched objects -> idle RSS
    errors: list[str] = field(default_factory=list)
    transport: str = ""  # minop's API transport (its /metrics): http.client or requests

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def memcached(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Memcached",
        "metadata": {"name": name},
        "spec": {"size": 1},
    }


def namespace(run: str, contender: str, repeat: int) -> str:
    return f"bench-{run}-{contender}-{repeat}"


def create_namespace(api: Api, ns: str) -> None:
    api.create("/api/v1/namespaces", {"metadata": {"name": ns}})


def _create_all(api: Api, ns: str, names: Iterable[str]) -> None:
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda n: api.create(crs(ns), memcached(n)), names))


def _has_children(s: Seen, names: list[str]) -> bool:
    return all(n in s.dep_added and n in s.svc_added for n in names)


def _all_ready(s: Seen, names: list[str]) -> bool:
    return all(n in s.cr_ready for n in names)


def _converge(api: Api, obs: Observer, ns: str, names: list[str], trial: Trial) -> None:
    """Create ``names`` at once and wait for their children and Ready."""
    timeout = 90 + 0.5 * len(names)
    t0 = time.monotonic()
    _create_all(api, ns, names)
    trial.create_s = time.monotonic() - t0
    s = obs.seen
    if obs.wait(lambda s: _has_children(s, names), timeout):
        trial.children_s = max(max(s.dep_added[n], s.svc_added[n]) for n in names) - t0
        trial.children_lat = sorted(
            max(s.dep_added[n], s.svc_added[n]) - s.cr_added[n] for n in names
        )
    else:
        trial.errors.append(f"children of {len(names)} objects not seen in {timeout:.0f}s")
    if obs.wait(lambda s: _all_ready(s, names), timeout):
        trial.ready_s = max(s.cr_ready[n] for n in names) - t0
        trial.ready_lat = sorted(s.cr_ready[n] - s.cr_added[n] for n in names)
    else:
        missing = sum(1 for n in names if n not in s.cr_ready)
        trial.errors.append(f"{missing} of {len(names)} objects not Ready in {timeout:.0f}s")


def _update(api: Api, obs: Observer, ns: str, names: list[str], plan: Plan, trial: Trial) -> None:
    """Scale random objects 1 -> 2 at a steady rate; latency from the harness seeing the
    new spec.size to it seeing the Deployment's new spec.replicas."""
    chosen = random.Random(plan.seed + trial.repeat).sample(names, min(plan.updates, len(names)))
    start = time.monotonic()
    for i, name in enumerate(chosen):
        due = start + i / plan.rate
        time.sleep(max(0.0, due - time.monotonic()))
        api.patch(crs(ns, name), {"spec": {"size": 2}})

    def all_scaled(s: Seen) -> bool:
        return all(s.dep_replicas.get(n, [(0.0, 0)])[-1][1] == 2 for n in chosen)

    def all_shown(s: Seen) -> bool:  # converged again: the restart that follows must be idle
        return all(s.cr_shown.get(n) == (2, True) for n in chosen)

    if not obs.wait(all_scaled, 60):
        trial.errors.append("updates: not every Deployment scaled within 60s")
    if not obs.wait(all_shown, 120):
        trial.errors.append("updates: not every object showed 2 ready pods within 120s")
    s = obs.seen
    for n in chosen:
        asked = next((t for t, size in s.cr_sizes.get(n, []) if size == 2), None)
        scaled = next((t for t, r in s.dep_replicas.get(n, []) if r == 2), None)
        if asked is not None and scaled is not None:
            trial.update_lat.append(scaled - asked)
    trial.update_lat.sort()


def _settle(audit: Audit, mark: int, op: Operator) -> None:
    audit.wait_quiet(mark, op.contender.agent, QUIET, timeout=120)
    op.wait_idle()


def run_trial(
    api: Api, audit: Audit, kubeconfig: str, contender: Contender, repeat: int, plan: Plan
) -> Trial:
    trial = Trial(contender.name, repeat, plan.n)
    ns = namespace(plan.run, contender.name, repeat)
    create_namespace(api, ns)
    log = plan.logs / f"{ns}.log"
    spy = plan.logs / f"{ns}.pyspy.txt" if plan.profile and contender.name == "minop" else None
    op = Operator(contender, ns, kubeconfig, log, spy)
    op.start()
    try:
        op.wait_ready()
        trial.transport = op.transport()
        op.wait_idle()
        trial.rss_mb[0] = op.rss_mb()
        obs = Observer(api, ns)
        obs.start()
        names = [f"mc-{i:05d}" for i in range(plan.n)]

        mark, cpu0 = audit.mark(), op.cpu_seconds()
        _converge(api, obs, ns, names, trial)
        _settle(audit, mark, op)
        trial.cpu_burst_s = op.cpu_seconds() - cpu0
        cost = audit.cost(mark, contender.agent, ns)
        trial.burst_writes, trial.burst_reads = dict(cost.writes), dict(cost.reads)
        trial.rss_mb[plan.n] = op.rss_mb()

        if plan.updates:
            mark, cpu0 = audit.mark(), op.cpu_seconds()
            _update(api, obs, ns, names, plan, trial)
            _settle(audit, mark, op)
            trial.cpu_update_s = op.cpu_seconds() - cpu0
            trial.update_writes = dict(audit.cost(mark, contender.agent, ns).writes)

        op.stop()
        mark = audit.mark()
        op = Operator(contender, ns, kubeconfig, log)
        op.start()
        trial.restart_ready_s = op.wait_ready()
        trial.restart_idle_s = op.wait_idle() + trial.restart_ready_s
        audit.wait_quiet(mark, contender.agent, QUIET, timeout=60)
        cost = audit.cost(mark, contender.agent, ns)
        trial.restart_writes, trial.restart_reads = dict(cost.writes), dict(cost.reads)

        for point in plan.memory:
            more = [f"mc-{i:05d}" for i in range(len(names), point)]
            grow = Trial(contender.name, repeat, len(more))
            mark = audit.mark()
            _converge(api, obs, ns, more, grow)
            trial.errors += grow.errors
            names += more
            _settle(audit, mark, op)
            trial.rss_mb[point] = op.rss_mb()
    except (ApiError, OSError, RuntimeError, TimeoutError) as e:
        trial.errors.append(f"{type(e).__name__}: {e}")
    finally:
        op.stop()
    return trial
