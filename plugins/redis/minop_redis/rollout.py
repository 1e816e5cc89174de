"""Rollouts with failover: the primary updated last, handed over first, and no
replica of another revision promoted while one of the primary's revision is left.

Why: the StatefulSet replaces pods from the highest ordinal down. After any
failover the primary may sit at ordinal k > 0: it would be replaced early (one
hand-over), then the pod promoted in its place, and so on (up to n hand-overs).
And Sentinel promotes whichever replica ranks best, possibly one already on the
new revision: a canary below a held partition, or an 8.0 pod whose RDB the 7.2
replicas left cannot load.

What the operator does on every tick (level-triggered, nothing remembered but
when a hand-over started):

* **replica-priority** (``CONFIG SET`` as user sentinel): a replica whose
  revision differs from the primary's gets 0 (never promoted) as long as some
  replica runs the primary's revision; once none does (the primary is the last
  pod on its revision) every replica may be promoted, which the primary's own
  hand-over (handover.sh) needs.
* **primary last**: while the rollout would replace the primary before other
  pods (its ordinal > 0 and within the partition), the StatefulSet's partition
  is held at ``replicas`` (nothing is replaced) and the primary is handed over to
  pod 0 first: only pod 0 promotable, then ``SENTINEL FAILOVER`` on a Sentinel
  that already sees those priorities. Pod 0 is replaced last, or never below a
  canary partition. When pod 0 is not a ready, linked replica, or no hand-over
  happened within ``HOLD_S``, the hold is released and the rollout goes on as
  the StatefulSet orders it, each primary handing over in its preStop hook.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from minop import Obj, content_hash
from minop.kit import workloads as wl
from minop_redis.children import Instance
from minop_redis.roles import Addresses, Member, RespError, call, pod_addresses
from minop_redis.status import ordinal, revision

DEFAULT_PRIORITY = 100  # Redis' default replica-priority
HOLD_S = 60.0  # how long the partition is held for a hand-over to pod 0
TEMPLATE_HASH = "minop.dev/template-hash"  # on the StatefulSet: the pod template applied last


def _live(pods: list[Obj]) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in pods if not p["metadata"].get("deletionTimestamp")}


def priorities(pods: list[Obj], primary: str | None, target: str | None = None) -> dict[str, int]:
    """The replica-priority each live replica should have. ``target``: the pod a
    hand-over goes to (the only one promotable meanwhile)."""
    live = _live(pods)
    if primary not in live:
        return {}
    replicas = {n: p for n, p in live.items() if n != primary}
    if target is not None:
        return {n: DEFAULT_PRIORITY if n == target else 0 for n in replicas}
    own = revision(live[primary])
    kept = any(revision(p) == own for p in replicas.values())
    return {
        n: DEFAULT_PRIORITY if not kept or revision(p) == own else 0 for n, p in replicas.items()
    }


def primary_due_early(
    inst: Instance, sts: Obj | None, template_hash: str, pods: list[Obj], primary: str | None
) -> bool:
    """The rollout would replace the primary before another pod: a RollingUpdate
    whose template changes now or is not yet on the primary, the primary at an
    ordinal > 0 within the partition."""
    strategy = inst.spec.get("updateStrategy") or {}
    if sts is None or strategy.get("type") == "OnDelete":
        return False
    live = _live(pods)
    if primary not in live:
        return False
    k = ordinal(live[primary])
    if k <= 0 or k < int((strategy.get("rollingUpdate") or {}).get("partition", 0)):
        return False
    applied = (sts["metadata"].get("annotations") or {}).get(TEMPLATE_HASH)
    changes = applied is not None and applied != template_hash  # older operators set none
    update = (sts.get("status") or {}).get("updateRevision")
    return changes or (update is not None and revision(live[primary]) != update)


def ready_target(inst: Instance, pods: list[Obj], members: list[Member]) -> str | None:
    """Pod 0, when it is a ready replica with its link to the primary up."""
    name = f"{inst.name}-0"
    pod = _live(pods).get(name)
    member = next((m for m in members if m.name == name), None)
    if pod is None or member is None or not wl.pod_ready(pod):
        return None
    return name if member.role == "replica" and member.link_up else None


@dataclass
class Hold:
    """Per Redis: the template a hand-over to pod 0 was started for, and when."""

    template_hash: str
    since: float
    gave_up: bool = False


_holds: dict[tuple[str, str], Hold] = {}


def hold(inst: Instance, template_hash: str, due: bool, now: float | None = None) -> str:
    """``held`` (keep the partition, hand over), ``expired`` (give up: said once,
    the first tick after HOLD_S), ``gave-up`` (later ticks, same template) or ``free``."""
    key = (inst.namespace, inst.name)
    if not due:
        _holds.pop(key, None)
        return "free"
    now = time.monotonic() if now is None else now
    held = _holds.get(key)
    if held is None or held.template_hash != template_hash:
        _holds[key] = held = Hold(template_hash, now)
    if held.gave_up:
        return "gave-up"
    if now - held.since <= HOLD_S:
        return "held"
    held.gave_up = True
    return "expired"


def mark(sts: dict[str, Any]) -> str:
    """Annotate the desired StatefulSet with its pod template's hash (returned): the
    next tick tells a template change from a rollout already under way."""
    digest = content_hash(sts["spec"]["template"])
    sts["metadata"].setdefault("annotations", {})[TEMPLATE_HASH] = digest
    return digest


def hold_partition(sts: dict[str, Any]) -> None:
    """The partition at ``replicas``: the StatefulSet controller replaces no pod."""
    if "rollingUpdate" in sts["spec"]["updateStrategy"]:
        sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = sts["spec"]["replicas"]


def set_priorities(
    inst: Instance,
    pods: list[Obj],
    members: list[Member],
    wanted: Mapping[str, int],
    password: bytes,
    addresses: Callable[[Instance, Obj], Addresses | None] = pod_addresses,
    tls: ssl.SSLContext | None = None,
) -> list[str]:
    """CONFIG SET replica-priority where a replica reports another; returns those pods."""
    have = {m.name: m.priority for m in members}
    changed = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        if name not in wanted or have.get(name) is None or have[name] == wanted[name]:
            continue
        where = addresses(inst, pod)
        if where is None:
            continue
        try:
            value = str(wanted[name])
            call(*where.redis, password, "CONFIG", "SET", "replica-priority", value, tls=tls)
        except (OSError, RespError):  # gone, or a pod of an older plugin (no +config|set)
            continue
        changed.append(name)
    return changed


def hand_over(
    inst: Instance,
    pods: list[Obj],
    primary: str,
    target: str,
    password: bytes,
    addresses: Callable[[Instance, Obj], Addresses | None] = pod_addresses,
    tls: ssl.SSLContext | None = None,
) -> str | None:
    """The primary hands over to ``target`` as handover.sh does when its pod stops:
    writes paused, every online replica caught up, the primary demoted (a replica of
    nothing), then SENTINEL FAILOVER on ``target``'s Sentinel, which sees ``target``
    as the only promotable replica. No acknowledged write is lost and no two
    primaries take writes. Blocks for at most about 20 s. Returns None once that
    Sentinel names ``target``, else why not (nothing changed, or undone: writes
    resume; the next tick tries again)."""
    by_name = {p["metadata"]["name"]: p for p in pods}
    old = addresses(inst, by_name[primary]) if primary in by_name else None
    new = addresses(inst, by_name[target]) if target in by_name else None
    if old is None or new is None:
        return "no address"

    def ask(*args: str) -> Any:
        return call(*new.sentinel, password, "SENTINEL", *args, inst.name, tls=tls)

    def here(*args: str) -> Any:
        return call(*old.redis, password, *args, tls=tls)

    try:
        if _promotable(ask("REPLICAS")) != {new.announced}:
            return "its Sentinel does not see the priorities yet"
        if tuple(ask("get-master-addr-by-name")) != (old.announced[0], str(old.announced[1])):
            return "its Sentinel names another primary"
        here("CLIENT", "PAUSE", str(int(PAUSE_S * 1000)), "WRITE")
    except (OSError, RespError, ValueError, TypeError, KeyError):
        return "not reachable"
    demoted = False
    try:
        if not _until(lambda: _caught_up(here("INFO", "replication")), 5):
            raise RespError("no replica caught up within 5s")
        here("REPLICAOF", "127.0.0.1", "1")  # port 1: nothing answers
        demoted = True
        # INPROG: still finishing an earlier failover; NOGOODSLAVE: not seen the
        # replicas answer again yet (both soon after another failover)
        if not _until(lambda: _failover(ask), 5):
            raise RespError("SENTINEL FAILOVER refused for 5s")
        if not _until(lambda: tuple(ask("get-master-addr-by-name")) == (
            new.announced[0], str(new.announced[1])), 8):  # fmt: skip
            raise RespError(f"{target} not promoted within 8s")
    except (OSError, RespError, ValueError, TypeError) as e:
        with contextlib.suppress(OSError, RespError):  # else the pause ends by itself
            if demoted:
                here("REPLICAOF", "NO", "ONE")
            here("CLIENT", "UNPAUSE")
        return str(e)
    # a replica now (READONLY): unpaused, it syncs from the new primary at once
    with contextlib.suppress(OSError, RespError):
        here("CLIENT", "UNPAUSE")
    return None


PAUSE_S = 25.0  # longer than hand_over may take: writes never resume on a primary demoted


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _failover(ask: Callable[..., Any]) -> bool:
    try:
        return bool(ask("FAILOVER") == "OK")
    except RespError as e:
        if "INPROG" in str(e) or "NOGOODSLAVE" in str(e):
            return False
        raise


def _caught_up(info: str) -> bool:
    """Every online replica acknowledged the primary's offset (writes are paused:
    it stands still), and there is one."""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    top = fields.get("master_repl_offset")
    online = [v for k, v in fields.items() if k.startswith("slave") and "state=online" in v]
    return bool(online) and all(f"offset={top}," in v for v in online)


def _promotable(replicas: Any) -> set[tuple[str, int]]:
    """The (host, port) of every replica a Sentinel would consider promoting."""
    out = set()
    for flat in replicas:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        flags = set(str(fields["flags"]).split(","))
        if flags & {"s_down", "o_down", "disconnected"} or int(fields["slave-priority"]) == 0:
            continue
        out.add((str(fields["ip"]), int(fields["port"])))
    return out
