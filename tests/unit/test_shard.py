"""Shard arithmetic (issue 24): the hash the API server's shardRange uses, buckets that
are contiguous hash ranges, selectors in the API server's syntax, and an assignment
that is a partition, stays even and moves only the share of who joins or leaves."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from minop.shard import (
    BUCKETS,
    SPACE,
    bucket_of,
    bucket_range,
    fnv1a64,
    label_selector,
    ranges,
    rebalance,
    shard_selector,
)


def test_fnv1a64_matches_the_published_vectors():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


@given(st.integers(min_value=0, max_value=SPACE - 1))
def test_a_hash_falls_in_the_range_of_its_bucket(h):
    b = h * BUCKETS >> 64
    start, end = bucket_range(b)
    assert start <= h < end


def test_the_buckets_tile_the_hash_space():
    assert ranges(range(BUCKETS)) == [(0, SPACE)]
    assert sum(e - s for s, e in map(bucket_range, range(BUCKETS))) == SPACE


def test_uids_spread_evenly_over_the_buckets():
    counts = [0] * BUCKETS
    for i in range(12000):
        counts[bucket_of(f"8d3c1f0e-{i:04x}-4c1b-9a55-{i * 7919:012x}")] += 1
    assert min(counts) > 50 and max(counts) < 150  # 100 expected


def test_the_shard_selector_is_in_the_api_servers_syntax():
    """KEP-5866 (k8s.io/apiserver/pkg/sharding): shardRange(object.metadata.uid, start,
    end) joined by ||, 0x-prefixed lower-case hex of 16 digits, the end of the space
    0x10000000000000000."""
    assert shard_selector(range(BUCKETS)) == (
        "shardRange(object.metadata.uid, '0x0000000000000000', '0x10000000000000000')"
    )
    sel = shard_selector([0, 1, 5])
    one = r"shardRange\(object\.metadata\.uid, '0x[0-9a-f]{16}', '0x[0-9a-f]{16,17}'\)"
    assert re.fullmatch(rf"{one} \|\| {one}", sel), sel
    assert sel.startswith("shardRange(object.metadata.uid, '0x0000000000000000', ")


def test_label_selectors_are_set_based_and_an_empty_share_selects_nothing():
    assert label_selector([3, 1, 2]) == "minop.dev/shard in (1,2,3)"
    assert label_selector([]) == "minop.dev/shard in (none)"


def _check(assignment, members):
    assert set(assignment) == set(members)
    owned = [b for share in assignment.values() for b in share]
    assert sorted(owned) == list(range(BUCKETS))  # a partition: each bucket once
    sizes = [len(s) for s in assignment.values()]
    assert max(sizes) - min(sizes) <= 1


names = st.sampled_from([f"minop-{c}" for c in "abcdefghijklmnop"])


@settings(max_examples=300)
@given(st.lists(st.tuples(st.booleans(), names), min_size=1, max_size=30))
def test_joins_and_leaves_move_only_the_movers_share(steps):
    members: list[str] = []
    assignment = rebalance({}, members)
    for join, name in steps:
        if join == (name in members):
            continue
        before = assignment
        members = [*members, name] if join else [m for m in members if m != name]
        assignment = rebalance(before, members)
        if not members:
            assert assignment == {}
            continue
        _check(assignment, members)
        for m in members:
            if m == name:
                continue
            if join:  # the others only give, and only to the joiner
                assert assignment[m] <= before[m]
            else:  # the others only take, only what the leaver had
                assert assignment[m] >= before[m]
                assert assignment[m] - before[m] <= before[name]
        # every replica computing it gets the same answer, whatever its order
        assert rebalance(before, list(reversed(members))) == assignment


@given(st.sets(names, min_size=1))
def test_several_members_at_once_from_nothing(members):
    _check(rebalance({}, members), members)
