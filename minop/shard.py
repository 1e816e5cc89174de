"""Shard arithmetic: buckets, their hash ranges, selectors and their assignment.

An object belongs to a bucket by the 64-bit FNV-1a hash of its ``metadata.uid`` — the
hash Kubernetes' ``shardRange`` (KEP-5866) computes — cut into ``BUCKETS`` contiguous
ranges, so a replica's buckets are a few hash ranges the API server can filter on.
``BUCKETS`` is fixed: it is in every shard label, and changing it would re-bucket
every object. 120 divides evenly among 2, 3, 4, 5, 6, 8 and 10 replicas.

The assignment is kept in the API server by the leader and changed only by
``rebalance``, which moves only the share of the replica that joins or leaves; a
stored assignment (not one each replica derives on its own) is what lets every
replica agree on it and keeps the shares even (±1 bucket).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

BUCKETS = 120
SPACE = 1 << 64  # FNV-1a 64 hashes are in [0, 2^64)
LABEL = "minop.dev/shard"  # the bucket, where the API server cannot filter by hash
NO_BUCKET = "none"  # a label value never set: selects nothing

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3

Assignment = dict[str, frozenset[int]]  # member -> its buckets


def fnv1a64(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) % SPACE
    return h


def bucket_of(uid: str) -> int:
    """The bucket of an object's ``metadata.uid``."""
    return fnv1a64(uid.encode()) * BUCKETS >> 64


def bucket_range(bucket: int) -> tuple[int, int]:
    """The hashes of ``bucket``: [start, end), so that ``bucket_of`` agrees with it."""
    return -(-bucket * SPACE // BUCKETS), -(-(bucket + 1) * SPACE // BUCKETS)


def ranges(buckets: Iterable[int]) -> list[tuple[int, int]]:
    """The hash ranges of ``buckets``, adjacent ones merged."""
    out: list[tuple[int, int]] = []
    for b in sorted(set(buckets)):
        start, end = bucket_range(b)
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def shard_selector(buckets: Iterable[int]) -> str:
    """The ``shardSelector`` list option for ``buckets`` (non-empty): hex bounds of 16
    digits, the end of the space 0x10000000000000000, as the API server requires."""
    parts = [
        f"shardRange(object.metadata.uid, '0x{start:016x}', '0x{end:016x}')"
        for start, end in ranges(buckets)
    ]
    if not parts:
        raise ValueError("a shard selector needs at least one bucket")
    return " || ".join(parts)


def label_selector(buckets: Iterable[int]) -> str:
    """A set-based label selector for ``buckets`` (none: one that selects nothing)."""
    values = ",".join(str(b) for b in sorted(set(buckets))) or NO_BUCKET
    return f"{LABEL} in ({values})"


def rebalance(previous: Mapping[str, Collection[int]], members: Collection[str]) -> Assignment:
    """The assignment after ``members`` replace the members of ``previous``.

    Leavers' buckets (and any unassigned) go one by one to the least loaded member;
    then each joiner, in name order, takes one bucket at a time from the most loaded
    until the shares differ by at most one. So a join moves buckets only to the
    joiner, a leave only the leaver's, and a balanced assignment stays balanced.
    Ties go by name, so the result depends only on the arguments.
    """
    live = sorted(set(members))
    if not live:
        return {}
    held = {m: set(previous.get(m) or ()) for m in live}
    joiners = [m for m in live if m not in previous]
    stayers = [m for m in live if m in previous] or joiners[:1]
    joiners = [m for m in joiners if m not in stayers]
    owned = set().union(*(held[m] for m in stayers))
    for b in range(BUCKETS):
        if b not in owned:
            held[min(stayers, key=lambda m: (len(held[m]), m))].add(b)
    for joiner in joiners:
        held[joiner] = set()
        while True:
            donor = max(stayers, key=lambda m: (len(held[m]), m))
            if len(held[donor]) <= len(held[joiner]) + 1:
                break
            # the donor's highest bucket: shares stay a few contiguous ranges
            top = max(held[donor])
            held[donor].remove(top)
            held[joiner].add(top)
        stayers.append(joiner)
    return {m: frozenset(held[m]) for m in live}
