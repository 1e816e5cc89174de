"""The generated client password (<name>-password): created once, owned by the Redis,
never overwritten, used in <name>-auth; objects whose pods run without a password
keep none until the user opts in."""

from __future__ import annotations

import base64
from typing import Any

from minop_redis import auth, hooks, password
from minop_redis.children import Instance

from minop import kinds
from minop.kit.testing import FakeContext


def context(spec: dict[str, Any], *objects: dict[str, Any]) -> FakeContext:
    [resource] = hooks.minop_resources()
    return FakeContext(resource, spec, name="r", objects=objects)


def sync(ctx: FakeContext) -> tuple[str | None, int, str | None]:
    return hooks.sync_auth(ctx, Instance("r", "ns", ctx.spec, {}, {}, "redis"), None, [])


def generated(ctx: FakeContext) -> bytes | None:
    obj = ctx.get(kinds.SECRET, "r-password")
    return None if obj is None else base64.b64decode(obj["data"]["password"])


def auth_password(ctx: FakeContext) -> bytes | None:
    state = auth.parse(ctx.get(kinds.SECRET, "r-auth"))
    assert state is not None
    return state.password


def secret(name: str, value: bytes) -> dict[str, Any]:
    data = {"password": base64.b64encode(value).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}


def test_a_new_redis_gets_a_generated_password_once_owned_and_never_overwritten() -> None:
    ctx = context({"replicas": 2})
    digest, _, problem = sync(ctx)
    assert problem is None and digest is not None
    pw = generated(ctx)
    assert pw is not None and len(pw) >= 32 and auth_password(ctx) == pw
    obj = ctx.get(kinds.SECRET, "r-password")
    assert obj is not None
    [owner] = obj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Redis", "r", True)
    assert [e[1] for e in ctx.events] == ["PasswordGenerated"]
    assert all(pw.decode() not in m for _, _, m in ctx.events)
    # created, never applied: an apply would overwrite a user's edit
    assert "r-password" not in [o["metadata"]["name"] for o in ctx.applied]
    assert password.status(password.source(ctx.spec, "r", None)) == {
        "name": "r-password",
        "key": "password",
    }

    # later passes: nothing created, nothing read, the same digest
    ctx.server.reads.clear()
    assert sync(ctx)[0] == digest and generated(ctx) == pw
    assert ctx.reads == [] and [e[1] for e in ctx.events] == ["PasswordGenerated"]

    # the user edits it: kept as edited, and it becomes the password (a rotation)
    ctx.put(secret("r-password", b"chosen-by-the-user"))
    d1, previous, _ = sync(ctx)
    assert generated(ctx) == b"chosen-by-the-user" == auth_password(ctx)
    assert d1 != digest and previous == 1


def test_a_generated_password_that_exists_but_is_not_cached_yet_is_kept() -> None:
    ctx = context({"replicas": 1})
    there = secret("r-password", b"already-there")
    ctx.server.put(kinds.SECRET, {**there, "metadata": {"name": "r-password", "namespace": "ns"}})
    assert ctx.child(kinds.SECRET, "r-password") is None  # in the API server only
    sync(ctx)  # the create gets 409 AlreadyExists: the existing one is used
    assert generated(ctx) == b"already-there" == auth_password(ctx)


def test_a_redis_running_without_a_password_keeps_none_until_the_user_opts_in() -> None:
    """An object an earlier version made without passwordSecretRef: its <name>-auth says
    the pods run without a password. Giving it one would lock out every client."""
    earlier = auth.secret("r-auth", auth.State(b"r" * 64, None, (), auth.NO_PASSWORD))
    ctx = context({"replicas": 2}, {**earlier, "apiVersion": "v1", "kind": "Secret"})
    digest, _, problem = sync(ctx)
    assert problem is None and digest == auth.State(b"r" * 64).digest()  # no roll
    assert generated(ctx) is None and auth_password(ctx) is None and ctx.events == []
    cached = ctx.child(kinds.SECRET, "r-auth")
    assert password.status(password.source(ctx.spec, "r", cached)) is None

    ctx.body["spec"] = {"replicas": 2, "auth": {"generatePassword": True}}  # opts in
    d1, previous, _ = sync(ctx)
    pw = generated(ctx)
    assert pw is not None and auth_password(ctx) == pw
    assert d1 != digest and previous == 0  # nopass accepted every password: no window


def test_generate_password_false_is_no_password_and_a_users_secret_wins() -> None:
    ctx = context({"replicas": 1, "auth": {"generatePassword": False}})
    sync(ctx)
    assert generated(ctx) is None and auth_password(ctx) is None
    ctx.put(secret("pw", b"users-own"))
    ctx.body["spec"] = {"replicas": 1, "passwordSecretRef": {"name": "pw"}}
    sync(ctx)
    assert generated(ctx) is None and auth_password(ctx) == b"users-own"
    # passwordSecretRef removed later: a generated one, not none (set false for none)
    ctx.body["spec"] = {"replicas": 1}
    sync(ctx)
    assert generated(ctx) is not None and auth_password(ctx) == generated(ctx)


def test_an_operators_secret_without_a_source_annotation_counts_as_no_password() -> None:
    """<name>-auth from before the annotation existed, when no passwordSecretRef meant no
    password: still none (the annotation is only missing from such objects)."""
    earlier = auth.secret("r-auth", auth.State(b"r" * 64, None, (), auth.NO_PASSWORD))
    del earlier["metadata"]["annotations"][auth.SOURCE]
    assert password.source({}, "r", earlier) is None
    assert password.source({}, "r", None) == password.Source("r-password", "password", True)
