"""Passwords, and rotating the client password without an outage.

Why not simply roll the pods with the new password: a RollingUpdate replaces
the highest ordinal first, so with ``masterauth`` equal to the client password
the replicas would present the new password to a primary that still only
knows the old one (and with a held partition or OnDelete, for good).

The design:

* Replication has its own ACL user (``replication``: ``+psync +replconf +ping``)
  with a random password the operator generates once (it changes only when asked,
  in three phases: see "The internal password" below).
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

The internal password: sent by the replicas (masterauth), the Sentinels (auth-pass,
sentinel-pass), the probes, the scripts and the operator; accepted by the users
replication, probe and sentinel. It rotates when spec.auth.rotateInternalPassword
changes. Not in one step: the Secret volume's files change in running pods within
a minute, so the probes and scripts would send a new password to servers configured
with the old one. Three phases instead, each once every pod runs the previous one
(``rolled``, as for client passwords):
1. ``replication-next`` (NEW) beside ``replication`` (OLD, still sent): the pods roll
   to accept both;
2. ``replication`` NEW, ``replication-previous`` OLD: what reads the files live (probes,
   scripts) and the operator send NEW, which every pod accepts since 1; the pods roll
   to send it in masterauth and sentinel.conf (written once per pod: a roll recreates
   it) while still accepting OLD from the pods not yet rolled;
3. OLD dropped: one more roll.
A change of the field during a rotation starts another one after it.
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
ROTATION = "minop.dev/internal-rotation"  # spec.auth.rotateInternalPassword handled last
INTERNAL = "minop.dev/internal-rotating"  # "true" while the internal password rotates
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
        "rotateInternalPassword": crd.string(
            "Change it (any new value, e.g. a date) to rotate the internal password "
            "(users replication, probe and sentinel) without an outage: the pods roll "
            "three times (accept the new one too, send it, drop the old one), each roll "
            "once every pod runs the previous one. A change during a rotation starts "
            "another after it.",
            max_length=63,
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
    # rotating the internal password (see "The internal password" above)
    replication_next: bytes | None = None  # phase 1: accepted, not yet sent
    replication_previous: bytes | None = None  # phase 2: still accepted, no longer sent
    rotation: str = ""  # the spec.auth.rotateInternalPassword handled last

    def digest(self) -> str:
        """Changes whenever the pods' password config does; reveals nothing about it."""
        parts: list[Any] = [_b64(self.password) if self.password is not None else None]
        parts += [_b64(p) for p in self.previous]
        internal = (self.replication_next, self.replication_previous)
        if internal != (None, None):  # (absent before: the same digest, no roll)
            parts += [["internal", *(_b64(p) if p else None for p in internal)]]
        blob = json.dumps(parts).encode()
        return hmac.new(self.replication, blob, hashlib.sha256).hexdigest()[:16]

    @property
    def rotating(self) -> bool:
        return bool(self.previous)

    @property
    def rotating_internal(self) -> bool:
        return self.replication_next is not None or self.replication_previous is not None


def new_replication_password() -> bytes:
    # hex: safe unquoted in redis.conf's masterauth line
    return secrets.token_hex(32).encode()


def step(
    state: State | None,
    password: bytes | None,
    source: str,
    rolled: bool,
    generate: Callable[[], bytes] = new_replication_password,
    rotation: str = "",
) -> State:
    """The next state, given the user's ``password`` (None: no password), whether
    every pod runs the revision configured from ``state`` (``rolled``) and
    spec.auth.rotateInternalPassword (``rotation``)."""
    if state is None:
        return State(generate(), password, (), source, rotation=rotation)
    state = _internal_step(state, rolled, rotation, generate)
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


def _internal_step(
    state: State, rolled: bool, rotation: str, generate: Callable[[], bytes]
) -> State:
    """One phase of the internal password's rotation, each once every pod runs the
    previous one: accept NEXT too; send NEXT (the old one still accepted); drop it."""
    if state.replication_next is not None:
        if not rolled:
            return state
        return replace(
            state,
            replication=state.replication_next,
            replication_next=None,
            replication_previous=state.replication,
        )
    if state.replication_previous is not None:
        return replace(state, replication_previous=None) if rolled else state
    if rotation != state.rotation:  # only between rotations: a change meanwhile waits
        return replace(state, replication_next=generate(), rotation=rotation)
    return state


def internal_events(old: State, new: State) -> list[tuple[str, str]]:
    """(reason, message) of each phase of the internal password's rotation begun."""
    if new.replication_next is not None and old.replication_next is None:
        return [("InternalPasswordRotationStarted", "pods accept a new internal password too")]
    if new.replication_previous is not None and old.replication_previous is None:
        msg = "every pod accepts the new internal password: pods roll to send it"
        return [("InternalPasswordRotationSending", msg)]
    if old.replication_previous is not None and new.replication_previous is None:
        msg = "every pod sends the new internal password: dropping the old one (one more roll)"
        return [("InternalPasswordRotationFinishing", msg)]
    return []


def secret(name: str, state: State) -> dict[str, Any]:
    """The operator's Secret the pods mount (``data`` as the API server returns it)."""
    data = {"replication": _b64(state.replication)}
    if state.password is not None:
        data["password"] = _b64(state.password)
    for i, p in enumerate(state.previous):
        data[f"previous-{i}"] = _b64(p)
    if state.replication_next is not None:
        data["replication-next"] = _b64(state.replication_next)
    if state.replication_previous is not None:
        data["replication-previous"] = _b64(state.replication_previous)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {
                DIGEST: state.digest(),
                SOURCE: state.source,
                PREVIOUS: str(len(state.previous)),
                ROTATION: state.rotation,
                INTERNAL: str(state.rotating_internal).lower(),
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
        replication_next=data.get("replication-next"),
        replication_previous=data.get("replication-previous"),
        rotation=str(annotations.get(ROTATION, "")),
    )


@dataclass(frozen=True)
class Summary:
    """What the cached copy of <name>-auth tells (the cache keeps no Secret data)."""

    digest: str
    source: str
    previous: int
    rotation: str = ""
    internal: bool = False  # the internal password rotating

    @property
    def in_flight(self) -> bool:
        """A rotation moves on once every pod runs this revision."""
        return bool(self.previous) or self.internal


def summary(cached: Mapping[str, Any] | None, content: str | None) -> Summary | None:
    """From the cached Secret's annotations; None if missing or its data was edited
    (``content``: the cache's hash of the data) — then the Secret must be read."""
    if cached is None:
        return None
    ann = (cached.get("metadata") or {}).get("annotations") or {}
    if DIGEST not in ann or content is None or ann.get(DATA_HASH) != content:
        return None
    try:
        return Summary(
            str(ann[DIGEST]),
            str(ann.get(SOURCE, "")),
            int(ann.get(PREVIOUS, "0")),
            str(ann.get(ROTATION, "")),
            ann.get(INTERNAL) == "true",
        )
    except ValueError:
        return None
