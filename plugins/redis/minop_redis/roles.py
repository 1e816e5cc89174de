"""With failover: who is primary, read over the network from the pods (no exec),
and the role label the <name> Service selects.

The operator asks every pod's Sentinel whom it names primary and every Redis for
its replication state (as user ``sentinel``, with the internal password of the
<name>-auth Secret; with spec.tls over TLS). A pod is labelled ``master`` only
when a majority of all pods' Sentinels (not only of those answering) name it AND
it reports the master role itself;
every other pod loses the label first, so the Service never selects two pods.
When nothing can be read, labels stay as they are: the Sentinels keep working
without the operator.
"""

from __future__ import annotations

import socket
import ssl
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from minop import Obj
from minop_redis.children import PORT, ROLE_LABEL, SENTINEL_PORT, Instance

TIMEOUT = 0.5  # seconds per connection and answer: a reconcile must not hang on a pod


class RespError(Exception):
    """An error reply, or no (valid) answer."""


def call(
    host: str, port: int, password: bytes, *args: str | bytes, tls: ssl.SSLContext | None = None
) -> Any:
    """One command as user sentinel over a fresh connection (RESP2), with ``tls`` over TLS."""
    with socket.create_connection((host, port), TIMEOUT) as raw:
        sock = tls.wrap_socket(raw) if tls is not None else raw
        sock.settimeout(TIMEOUT)
        reader = sock.makefile("rb")
        for command in (("AUTH", "sentinel", password), args):
            sock.sendall(_encode(command))
            reply = _read(reader)
        return reply


def _encode(args: tuple[str | bytes, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read(reader: Any) -> Any:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise RespError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read(reader) for _ in range(size)]
    raise RespError(f"unexpected reply {line[:20]!r}")


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # master, replica, unknown
    offset: int | None = None
    link_up: bool | None = None
    priority: int | None = None  # a replica's replica-priority (0: never promoted)


@dataclass(frozen=True)
class Addresses:
    """Where a pod's Redis and Sentinel listen, and the (host, port) Sentinels name
    it by (its stable DNS name: they announce hostnames)."""

    redis: tuple[str, int]
    sentinel: tuple[str, int]
    announced: tuple[str, int]


def pod_addresses(inst: Instance, pod: Obj) -> Addresses | None:
    """In the cluster: the pod IP; None while it has none or is going away."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip or pod["metadata"].get("deletionTimestamp"):
        return None
    ordinal = int(pod["metadata"]["name"].rsplit("-", 1)[1])
    return Addresses((ip, PORT), (ip, SENTINEL_PORT), (inst.pod_host(ordinal), PORT))


def observe(
    inst: Instance,
    pods: list[Obj],
    password: bytes,
    addresses: Callable[[Instance, Obj], Addresses | None] = pod_addresses,
    tls: ssl.SSLContext | None = None,
) -> tuple[str | None, list[Member]]:
    """The pod a majority of the pods' Sentinels name primary, if it also reports the
    master role itself (else None), and every pod's replication state."""
    votes: Counter[tuple[str, int]] = Counter()
    members: list[Member] = []
    announced: dict[tuple[str, int], str] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name, where = pod["metadata"]["name"], addresses(inst, pod)
        if where is None:
            members.append(Member(name, "unknown"))
            continue
        announced[where.announced] = name
        try:
            ask = ("SENTINEL", "get-master-addr-by-name", inst.name)
            addr = call(*where.sentinel, password, *ask, tls=tls)
            if isinstance(addr, list) and len(addr) == 2:
                votes[(str(addr[0]), int(addr[1]))] += 1
        except OSError:  # unreachable (e.g. KWOK), or TLS refused: do not wait for it twice
            members.append(Member(name, "unknown"))
            continue
        except (RespError, ValueError):
            pass
        members.append(_member(name, where.redis, password, tls))
    if not votes:
        return None, members
    (named, count) = votes.most_common(1)[0]
    primary = announced.get(named)
    confirmed = any(m.name == primary and m.role == "master" for m in members)
    # a majority of every pod's Sentinel, not of those that answered: one answering
    # Sentinel of three may be the one cut off, with a stale view
    return (primary if confirmed and count * 2 > len(pods) else None), members


def forget_departed(
    inst: Instance,
    pods: list[Obj],
    password: bytes,
    addresses: Callable[[Instance, Obj], Addresses | None] = pod_addresses,
    tls: ssl.SSLContext | None = None,
) -> str | None:
    """SENTINEL RESET of one Sentinel that counts more peers than there are other
    pods: departed pods' Sentinels (scaled down), or an ID that a recreated pod's
    Sentinel no longer has (6.2 keeps it). Each counts toward the majority a
    failover needs and never votes. One at a time, and only while every pod's
    Sentinel answers and none knows fewer peers or replicas than there are (one
    reset or restarted is still rediscovering them: peers within seconds, replicas
    at its next INFO of the primary, up to 10 s), so at most one Sentinel is ever
    short of either. Returns the pod whose Sentinel was reset."""
    if len(pods) != inst.replicas:
        return None
    counted: list[tuple[str, Addresses, int]] = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        where = addresses(inst, pod)
        if where is None:
            return None
        try:
            fields = _master(inst, where, password, tls)
            peers, replicas = int(fields["num-other-sentinels"]), int(fields["num-slaves"])
        except (OSError, RespError, ValueError, TypeError, KeyError):
            return None
        if peers < inst.replicas - 1 or replicas < inst.replicas - 1:
            return None
        counted.append((pod["metadata"]["name"], where, peers))
    for name, where, peers in counted:
        if peers > inst.replicas - 1:
            call(*where.sentinel, password, "SENTINEL", "RESET", inst.name, tls=tls)
            return name
    return None


def align_quorum(
    inst: Instance,
    pods: list[Obj],
    password: bytes,
    addresses: Callable[[Instance, Obj], Addresses | None] = pod_addresses,
    tls: ssl.SSLContext | None = None,
) -> list[str]:
    """SENTINEL SET quorum on every Sentinel that answers with another quorum than the
    spec's: a scale changes the default (a majority), and running Sentinels keep the
    one their pod started with (a new pod's reads the ConfigMap). Returns the pods
    whose Sentinel was changed."""
    changed = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        where = addresses(inst, pod)
        if where is None:
            continue
        try:
            fields = _master(inst, where, password, tls)
            if int(fields["quorum"]) == inst.quorum:
                continue
            call(*where.sentinel, password, "SENTINEL", "SET", inst.name, "quorum",
                 str(inst.quorum), tls=tls)  # fmt: skip
        except (OSError, RespError, ValueError, TypeError, KeyError):
            continue
        changed.append(pod["metadata"]["name"])
    return changed


def _master(
    inst: Instance, where: Addresses, password: bytes, tls: ssl.SSLContext | None
) -> dict[str, Any]:
    """What a pod's Sentinel knows of the primary it monitors (SENTINEL MASTER)."""
    flat = call(*where.sentinel, password, "SENTINEL", "MASTER", inst.name, tls=tls)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _member(
    name: str, redis: tuple[str, int], password: bytes, tls: ssl.SSLContext | None
) -> Member:
    try:
        info = call(*redis, password, "INFO", "replication", tls=tls)
    except (OSError, RespError, ValueError):
        return Member(name, "unknown")
    fields = dict(
        line.split(":", 1) for line in str(info).splitlines() if ":" in line and line[0] != "#"
    )
    if fields.get("role") == "master":
        return Member(name, "master", int(fields.get("master_repl_offset", 0)))
    return Member(
        name,
        "replica",
        int(fields.get("slave_repl_offset", 0)),
        fields.get("master_link_status") == "up",
        int(fields["slave_priority"]) if "slave_priority" in fields else None,
    )


def label_changes(pods: list[Obj], primary: str | None) -> list[tuple[str, str]]:
    """(pod, role) label patches, demotions first: at no moment do two pods carry
    ``master``. A pod going away loses ``master`` at once: it hands over (handover.sh)
    or dies, and new clients get a refused connection and retry rather than wait on
    it. Otherwise, without a known primary, nothing changes."""
    demote: list[tuple[str, str]] = []
    promote: list[tuple[str, str]] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        have = (pod["metadata"].get("labels") or {}).get(ROLE_LABEL)
        going = bool(pod["metadata"].get("deletionTimestamp"))
        if primary is None and not (going and have == "master"):
            continue
        want = "master" if name == primary and not going else "replica"
        if have != want:
            (promote if want == "master" else demote).append((name, want))
    return demote + promote


def status(primary: str | None, members: list[Member]) -> dict[str, Any]:
    """status.primary and status.members; lag is measured against the primary."""
    top = next((m.offset for m in members if m.name == primary), None)
    out: list[Mapping[str, Any]] = []
    for m in members:
        entry: dict[str, Any] = {"name": m.name, "role": m.role}
        if m.role == "replica":
            entry["linkUp"] = bool(m.link_up)
            if top is not None and m.offset is not None:
                entry["lagBytes"] = max(top - m.offset, 0)
        out.append(entry)
    return {"primary": primary, "members": out}
