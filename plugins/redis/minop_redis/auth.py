"""Passwords, and rotating the client password without an outage.

Why not simply roll the pods with the new password: a RollingUpdate replaces
the highest ordinal first, so with ``masterauth`` equal to the client password
the replicas would present the new password to a primary that still only
knows the old one (and with a held partition or OnDelete, for good).

The design:

* Replication has its own ACL user (``replication``: ``+psync +replconf +ping``)
  with a random password the operator generates once and never changes.
  Replicas authenticate with it (``masteruser``/``masterauth``), and so do the
  probes. A client-password change therefore never touches replication, in
  whatever order pods restart: RollingUpdate, a held partition, OnDelete.
* Clients use the ``default`` user. When the password changes from A to B the
  operator keeps A as a *previous* password: the new revision's pods accept
  both A and B (phase 1), so every client keeps working while the pods roll.
  Once every pod (all ordinals, whatever the partition) runs that revision,
  the operator drops A, which is one more roll (phase 2), after which only B
  works. With a held partition or OnDelete, phase 2 waits until the user has
  let every pod update; until then the old password keeps working.
* Dropping A by rolling rather than ``ACL SETUSER`` on the running pods: the
  operator need not reach the pods over the network (nor run in the cluster),
  the per-pod config stays a pure function of the Secret (a restarted pod can
  never resurrect or lose a password), and it works the same under OnDelete.

Everything lives in the operator's Secret ``<name>-auth`` (keys
``replication``, ``password``, ``previous-<i>``), the only Secret the pods mount.
Client passwords reach redis.conf as SHA-256 hashes (``#<hash>`` ACL rules).
The pod-template annotation is an HMAC keyed by the replication password, so it
reveals nothing about the passwords. Values are never logged.

Not yet: rotating the internal (replication) password, e.g. when
``spec.auth.rotateInternalPassword`` (a token) changes. Why not one step: the
Secret volume's files change in running pods within a minute, so the probes,
handover.sh and record.sh would send the new password to servers configured with
the old one (every pod unready). The plan, three rolls as each phase waits for
every pod to run its revision (``status.everyone_on``, as phase 2 above):
1. keys ``replication`` (sent: OLD) and ``replication-next`` (NEW): the users
   replication, probe and sentinel accept both hashes; everything still sends OLD;
2. ``replication`` NEW, ``replication-previous`` OLD: the scripts (live file) and
   the operator send NEW, which every pod accepts since 1; the roll moves
   masterauth and the Sentinels' auth-pass/sentinel-pass (sentinel.conf is written
   once per pod: a roll recreates it) to NEW;
3. OLD dropped: one more roll. The operator tries the sent password first and the
   other one on WRONGPASS while a phase is in flight. Each roll hands over the
   primary once; the real-program test would do it the operator's way, as
   test_redis_real_rotation.py does for the client password, with a failover.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from minop import data_hash
from minop.kit import crd
from minop_redis.scripts import CLIENT_COMMANDS

# Annotations of <name>-auth: what a reconcile needs without reading the data.
DIGEST = "minop.dev/auth-hash"  # also on the pod template
SOURCE = "minop.dev/password-source"  # content hash of the user's Secret last read
PREVIOUS = "minop.dev/previous-passwords"  # how many old passwords are still accepted
DATA_HASH = "minop.dev/data-hash"  # detects edits of the data behind our back
NO_PASSWORD = "none"

# One ACL command rule: +cmd, -cmd, +cmd|sub, +@category, -@category, allcommands,
# nocommands. No passwords, users, key or channel patterns: the operator sets those.
_ACL_WORD = r"([+-]@?[a-zA-Z0-9_.-]+([|][a-zA-Z0-9_.-]+)?|allcommands|nocommands)"
SCHEMA = crd.obj(
    "What clients (Redis's default user) may do.",
    {
        "clientCommands": crd.string(
            "The commands clients may run on Redis, as ACL rules separated by spaces, e.g. "
            "'+@all' (every command: what operators before this field gave) or '+@read "
            "+@write +@connection -@dangerous'. Default: '"
            + CLIENT_COMMANDS
            + "': data, scripting, Pub/Sub, transactions, WAIT and INFO, not the server's "
            "administration (CONFIG, which reads the internal password, REPLICAOF, FAILOVER, "
            "ACL, DEBUG, SHUTDOWN, MONITOR, SAVE, CLIENT KILL...); on Redis 6.x, where all of "
            "CLIENT and ACL are @admin, the default also allows what client libraries send "
            "(CLIENT SETNAME, ID, TRACKING...): a rule of your own must name them. Keys and "
            "channels: all. Sentinels' clients always get discovery only. A rule the server "
            "does not know stops the pod from starting (the rollout waits on it). Changing "
            "it rolls the pods.",
            max_length=1024,
        ),
        "generatePassword": crd.boolean(
            "Without passwordSecretRef: true, the operator generates the client password "
            "once into Secret <name>-password (key password, 43 random characters; owned "
            "by this Redis, never overwritten: edit or delete it to rotate); false, no "
            "password (anyone who reaches the pods may do what clientCommands allows). "
            "Unset: generated, except for a Redis whose pods run without a password (one "
            "an earlier operator version created without passwordSecretRef), which keeps "
            "none until this is set. status.passwordSecretRef names the Secret clients "
            "read."
        ),
    },
    rules=[
        crd.Rule(
            "!has(self.clientCommands) || self.clientCommands.matches("
            f"'^ *{_ACL_WORD}( +{_ACL_WORD})* *$')",
            "auth.clientCommands must be ACL command rules separated by spaces, such as "
            "'+@all -@admin' or '+get -flushall +client|setname': no passwords, users, key or "
            "channel patterns",
            field=".clientCommands",
        )
    ],
)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@dataclass(frozen=True)
class State:
    """What the pods are configured with."""

    replication: bytes
    password: bytes | None = None
    previous: tuple[bytes, ...] = ()
    source: str = NO_PASSWORD

    def digest(self) -> str:
        """Changes whenever the pods' password config does; reveals nothing about it."""
        blob = json.dumps(
            [_b64(self.password) if self.password is not None else None]
            + [_b64(p) for p in self.previous]
        ).encode()
        return hmac.new(self.replication, blob, hashlib.sha256).hexdigest()[:16]

    @property
    def rotating(self) -> bool:
        return bool(self.previous)


def new_replication_password() -> bytes:
    # hex: safe unquoted in redis.conf's masterauth line
    return secrets.token_hex(32).encode()


def step(
    state: State | None,
    password: bytes | None,
    source: str,
    rolled: bool,
    generate: Callable[[], bytes] = new_replication_password,
) -> State:
    """The next state, given the user's ``password`` (None: no password) and whether
    every pod runs the revision configured from ``state`` (``rolled``)."""
    if state is None:
        return State(generate(), password, (), source)
    if password != state.password:
        if password is None or state.password is None:
            # no password on one side is `nopass`, which accepts every password:
            # there is no window to keep open
            previous: tuple[bytes, ...] = ()
        else:
            old = (*state.previous, state.password)
            previous = tuple(dict.fromkeys(p for p in old if p != password))
        return replace(state, password=password, previous=previous, source=source)
    if state.previous and rolled:
        return replace(state, previous=(), source=source)  # phase 2: drop the old ones
    return replace(state, source=source)


def secret(name: str, state: State) -> dict[str, Any]:
    """The operator's Secret the pods mount (``data`` as the API server returns it)."""
    data = {"replication": _b64(state.replication)}
    if state.password is not None:
        data["password"] = _b64(state.password)
    for i, p in enumerate(state.previous):
        data[f"previous-{i}"] = _b64(p)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {
                DIGEST: state.digest(),
                SOURCE: state.source,
                PREVIOUS: str(len(state.previous)),
                DATA_HASH: data_hash({"data": data}),
            },
        },
        "type": "Opaque",
        "data": data,
    }


def parse(obj: Mapping[str, Any] | None) -> State | None:
    """The state in a Secret read from the API server (None without a replication key)."""
    if obj is None:
        return None
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    if not data.get("replication"):
        return None
    previous = sorted(
        (k for k in data if k.startswith("previous-") and k[9:].isdigit()),
        key=lambda k: int(k[9:]),
    )
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return State(
        replication=data["replication"],
        password=data.get("password"),
        previous=tuple(data[k] for k in previous),
        source=str(annotations.get(SOURCE, "")),
    )


@dataclass(frozen=True)
class Summary:
    """What the cached copy of <name>-auth tells (the cache keeps no Secret data)."""

    digest: str
    source: str
    previous: int


def summary(cached: Mapping[str, Any] | None, content: str | None) -> Summary | None:
    """From the cached Secret's annotations; None if missing or its data was edited
    (``content``: the cache's hash of the data) — then the Secret must be read."""
    if cached is None:
        return None
    ann = (cached.get("metadata") or {}).get("annotations") or {}
    if DIGEST not in ann or content is None or ann.get(DATA_HASH) != content:
        return None
    try:
        return Summary(str(ann[DIGEST]), str(ann.get(SOURCE, "")), int(ann.get(PREVIOUS, "0")))
    except ValueError:
        return None
