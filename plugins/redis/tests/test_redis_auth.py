"""Password state machine, the operator's Secret, and the hook's read discipline."""

from __future__ import annotations

import base64
from typing import Any

from minop_redis import auth, hooks
from minop_redis.children import Instance
from redis_objects import pod, statefulset, user_secret

from minop import data_hash, kinds
from minop.kit.testing import FakeContext

A, B, C = b"alpha", b"bravo", b"charlie"


def fixed() -> bytes:
    return b"r" * 64


def test_first_state_then_a_rotation_in_two_phases() -> None:
    s0 = auth.step(None, A, "h1", rolled=False, generate=fixed)
    assert s0 == auth.State(fixed(), A, (), "h1") and not s0.rotating
    assert auth.step(s0, A, "h1", rolled=True) == s0  # nothing to do
    s1 = auth.step(s0, B, "h2", rolled=False)
    assert s1.password == B and s1.previous == (A,) and s1.rotating
    assert s1.replication == s0.replication  # replication never changes
    assert auth.step(s1, B, "h2", rolled=False) == s1  # partition held / OnDelete: wait
    s2 = auth.step(s1, B, "h2", rolled=True)
    assert s2.password == B and s2.previous == ()
    assert len({s0.digest(), s1.digest(), s2.digest()}) == 3  # each phase is a new revision


def test_changes_during_a_rotation_keep_every_password_a_pod_may_use() -> None:
    s1 = auth.step(auth.step(None, A, "h1", False, fixed), B, "h2", rolled=False)
    s2 = auth.step(s1, C, "h3", rolled=True)  # changed again before phase 2
    assert s2.password == C and s2.previous == (A, B)
    back = auth.step(s1, A, "h4", rolled=False)  # changed back to the old one
    assert back.password == A and back.previous == (B,)


def test_no_password_on_either_side_needs_no_window() -> None:
    none = auth.step(None, None, auth.NO_PASSWORD, rolled=False, generate=fixed)
    assert none.password is None
    with_pw = auth.step(none, A, "h1", rolled=False)
    assert with_pw.previous == ()  # old pods are nopass: they accept A already
    assert auth.step(with_pw, None, auth.NO_PASSWORD, rolled=False).previous == ()


def test_secret_round_trip_and_digest_reveals_nothing() -> None:
    s = auth.State(fixed(), A, (B, C), "h")
    obj = auth.secret("r-auth", s)
    data = {k: base64.b64decode(v) for k, v in obj["data"].items()}
    assert data == {"replication": fixed(), "password": A, "previous-0": B, "previous-1": C}
    ann = obj["metadata"]["annotations"]
    assert ann[auth.DIGEST] == s.digest() and ann[auth.PREVIOUS] == "2"
    assert ann[auth.SOURCE] == "h"
    assert auth.parse(obj) == s
    assert all(pw.decode() not in s.digest() for pw in (A, B, C))
    # the same passwords under another replication key give another digest
    assert auth.State(b"x" * 64, A, (B, C)).digest() != s.digest()
    assert auth.parse({"data": {}}) is None and auth.parse(None) is None


def test_summary_trusts_the_cache_only_while_the_data_is_ours() -> None:
    obj = auth.secret("r-auth", auth.State(fixed(), A, (B,), "h"))
    assert auth.summary(obj, data_hash(obj)) == auth.Summary(obj_digest(obj), "h", 1)
    edited = {**obj, "data": {**obj["data"], "password": "eHh4"}}
    assert auth.summary(edited, data_hash(edited)) is None
    assert auth.summary(None, None) is None


def obj_digest(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["annotations"][auth.DIGEST])


SPEC = {"replicas": 2, "passwordSecretRef": {"name": "pw"}}


def inst() -> Instance:
    return Instance("r", "ns", SPEC, {}, {}, "redis")


def context(*objects: dict[str, Any]) -> FakeContext:
    [resource] = hooks.minop_resources()
    return FakeContext(resource, SPEC, name="r", objects=objects)


def auth_state(ctx: FakeContext) -> auth.State | None:
    """The operator's Secret as the API server holds it."""
    return auth.parse(ctx.get(kinds.SECRET, "r-auth"))


def test_sync_auth_reads_secrets_only_when_something_may_change() -> None:
    ctx = context(user_secret(A))
    digest, previous, problem = hooks.sync_auth(ctx, inst(), None, [])
    assert problem is None and previous == 0 and ctx.reads == ["r-auth", "pw"]
    assert auth_state(ctx).password == A  # type: ignore[union-attr]

    ctx.server.reads.clear()
    pods = [pod(0, "rev-1"), pod(1, "rev-1")]
    sts = statefulset(2, update="rev-1", current="rev-1", digest=digest or "")
    assert hooks.sync_auth(ctx, inst(), sts, pods)[:2] == (digest, 0)
    assert ctx.reads == []  # steady state: the cached annotations suffice

    ctx.put(user_secret(B))  # the user rotates
    d1, previous, _ = hooks.sync_auth(ctx, inst(), sts, pods)
    assert d1 != digest and previous == 1
    assert [e[1] for e in ctx.events] == ["PasswordRotationStarted"]
    assert all(b"alpha" not in m.encode() for _, _, m in ctx.events)

    ctx.server.reads.clear()  # pods still on the old revision: keep both, read nothing
    assert hooks.sync_auth(ctx, inst(), sts, pods)[:2] == (d1, 1)
    assert ctx.reads == []

    rolled = statefulset(2, update="rev-2", current="rev-2", digest=d1 or "")
    pods = [pod(0, "rev-2"), pod(1, "rev-2")]
    d2, previous, _ = hooks.sync_auth(ctx, inst(), rolled, pods)
    assert previous == 0 and d2 not in (digest, d1)
    state = auth_state(ctx)
    assert state is not None and state.password == B and state.previous == ()
    assert ctx.events[-1][1] == "PasswordRotationFinishing"


def test_sync_auth_without_the_users_secret_waits_instead_of_failing() -> None:
    ctx = context()
    digest, _, problem = hooks.sync_auth(ctx, inst(), None, [])
    assert digest is None and problem is not None and "'pw'" in problem
    assert ctx.applied == []
    ctx.put(user_secret(A, key="other"))
    digest, _, problem = hooks.sync_auth(ctx, inst(), None, [])
    assert digest is None and problem is not None and "'password'" in problem


def test_sync_auth_repairs_an_edited_secret_and_keeps_replication() -> None:
    ctx = context(user_secret(A))
    hooks.sync_auth(ctx, inst(), None, [])
    before = auth_state(ctx)
    assert before is not None
    edited = ctx.get(kinds.SECRET, "r-auth")
    assert edited is not None
    edited["data"]["password"] = base64.b64encode(b"tampered").decode()
    ctx.put(edited)  # a user edits the operator's Secret
    ctx.applied.clear()
    hooks.sync_auth(ctx, inst(), None, [])
    after = auth_state(ctx)
    assert after is not None and after.replication == before.replication
    assert after.password == A  # written back
    assert [s["metadata"]["name"] for s in ctx.applied] == ["r-auth"]


def test_the_internal_password_rotates_in_three_phases_when_asked() -> None:
    new = iter([b"n" * 64, b"m" * 64])
    s0 = auth.step(None, A, "h1", rolled=False, generate=fixed, rotation="")
    assert auth.step(s0, A, "h1", rolled=True) == s0  # not asked: nothing
    s1 = auth.step(s0, A, "h1", rolled=True, generate=lambda: next(new), rotation="t1")
    assert (s1.replication, s1.replication_next, s1.rotation) == (fixed(), b"n" * 64, "t1")
    assert s1.digest() != s0.digest()  # phase 1: accept both, a roll
    assert auth.step(s1, A, "h1", rolled=False, rotation="t1") == s1  # waits for the roll
    s2 = auth.step(s1, A, "h1", rolled=True, rotation="t2")  # asked again meanwhile: waits
    assert (s2.replication, s2.replication_next, s2.replication_previous) == (
        b"n" * 64,
        None,
        fixed(),
    )  # phase 2: send the new one, the old one still accepted
    assert s2.digest() != s1.digest()
    s3 = auth.step(s2, A, "h1", rolled=True, rotation="t2")
    assert s3.replication_previous is None and s3.replication == b"n" * 64  # phase 3
    assert s3.rotation == "t1" and not s3.rotating_internal
    s4 = auth.step(s3, A, "h1", rolled=True, generate=lambda: next(new), rotation="t2")
    assert s4.replication_next == b"m" * 64 and s4.rotation == "t2"  # the next one now
    # the Secret carries every phase, and the events say which began
    for s in (s1, s2, s3):
        assert auth.parse(auth.secret("r-auth", s)) == s
    assert [r for r, _ in auth.internal_events(s0, s1)] == ["InternalPasswordRotationStarted"]
    assert [r for r, _ in auth.internal_events(s1, s2)] == ["InternalPasswordRotationSending"]
    assert [r for r, _ in auth.internal_events(s2, s3)] == ["InternalPasswordRotationFinishing"]
    # an object that never rotated keeps its digest (no roll on upgrade)
    assert auth.State(fixed(), A).digest() == s0.digest()
