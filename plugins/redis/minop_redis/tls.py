"""spec.tls: Redis and its Sentinels speak only TLS, with the certificate of a
kubernetes.io/tls Secret (``tls.crt``, ``tls.key``, ``ca.crt``, as cert-manager
writes it), mounted whole at ``DIR``.

init.sh writes the ``tls-*`` directives (``port 0``: no plain listener) from the
environment the pod spec sets; the probes and init.sh's own redis-cli calls add
``--tls --cacert ca.crt --cert tls.crt --key tls.key``. The Secret's content hash
is a pod-template annotation: a renewed certificate rolls the pods (Redis reads
its certificate only when it starts). The operator reads the Secret once per
content hash: to name a missing key, and to talk TLS to the pods (failover).
"""

from __future__ import annotations

import base64
import functools
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minop
from minop import kinds
from minop.kit import crd

DIR = "/etc/redis-tls"
HASH = "minop.dev/tls-hash"  # pod-template annotation: the Secret's content hash
VOLUME = "tls"
KEYS = ("tls.crt", "tls.key", "ca.crt")

SCHEMA = crd.obj(
    "TLS with the certificate of a kubernetes.io/tls Secret (tls.crt, tls.key and ca.crt, as "
    "cert-manager writes it; every key is mounted at /etc/redis-tls): Redis and the "
    "Sentinels accept only TLS on their usual ports, replicas replicate and Sentinels talk "
    "over TLS. A new certificate in the Secret rolls the pods. Needs a server built with "
    "TLS (the official and Debian images are).",
    {
        "secretName": crd.object_name(
            "The Secret, in this namespace, with tls.crt, tls.key and ca.crt."
        ),
        "clientAuth": crd.boolean(
            "Clients must present a certificate signed by ca.crt (Redis' tls-auth-clients), "
            "as Redis itself defaults to; false: any client that trusts ca.crt may connect "
            "and authenticates with the password only.",
            default=True,
        ),
    },
    required=["secretName"],
)


def settings(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """spec.tls when it names a Secret, else None."""
    tls = spec.get("tls") or {}
    return tls if tls.get("secretName") else None


def client_auth(spec: Mapping[str, Any]) -> bool:
    return bool((settings(spec) or {}).get("clientAuth", True))


def env(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What init.sh and the probes read (none without TLS)."""
    if settings(spec) is None:
        return []
    auth = "yes" if client_auth(spec) else "no"
    return [
        {"name": "REDIS_TLS_DIR", "value": DIR},
        {"name": "REDIS_TLS_AUTH_CLIENTS", "value": auth},
    ]


def mounts(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    if settings(spec) is None:
        return []
    return [{"name": VOLUME, "mountPath": DIR, "readOnly": True}]


def volumes(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    tls = settings(spec)
    if tls is None:
        return []
    # group-readable only: the pods' fsGroup owns the files, the key stays private
    return [{"name": VOLUME, "secret": {"secretName": tls["secretName"], "defaultMode": 0o440}}]


@dataclass(frozen=True)
class Material:
    """The Secret's content as last read, with the content hash it was read at."""

    hash: str
    ca: bytes
    cert: bytes
    key: bytes


_read: dict[tuple[str, str], Material] = {}  # (namespace, Secret) -> its last content


def material(ctx: minop.Context) -> Material | None:
    """The TLS Secret of ``ctx``'s Redis (None without spec.tls); a PermanentError naming
    spec.tls.secretName when it is missing or lacks a key. It is a related object: its
    creation or any change re-runs the reconcile, so no retry is needed."""
    tls = settings(ctx.spec)
    if tls is None:
        return None
    name = tls["secretName"]
    where = f"spec.tls.secretName: Secret {name!r}"
    found = ctx.related_hash(kinds.SECRET, name)
    if found is None:
        raise minop.PermanentError(f"{where} not found in namespace {ctx.namespace}")
    known = _read.get((ctx.namespace, name))
    if known is not None and known.hash == found:
        return known
    obj = ctx.api.get_or_none(kinds.SECRET, name, ctx.namespace)
    if obj is None:
        raise minop.PermanentError(f"{where} not found in namespace {ctx.namespace}")
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    missing = [k for k in KEYS if not data.get(k)]
    if missing:
        raise minop.PermanentError(
            f"{where} has no (non-empty) {', '.join(missing)}: Redis needs tls.crt, tls.key "
            "and ca.crt (a cert-manager Certificate from a CA issuer has all three)"
        )
    known = Material(found, data["ca.crt"], data["tls.crt"], data["tls.key"])
    _read[(ctx.namespace, name)] = known
    return known


@functools.lru_cache(maxsize=32)
def client_context(m: Material, present_certificate: bool) -> ssl.SSLContext:
    """How the operator talks to the pods: their certificate must chain to ca.crt; the
    host name is not checked (it dials pod IPs, and Redis' replicas and Sentinels check
    only the chain too). With clientAuth it presents the pods' own certificate."""
    context = ssl.create_default_context(cadata=m.ca.decode())
    context.check_hostname = False
    if present_certificate:
        with tempfile.TemporaryDirectory(prefix="minop-redis-tls-") as tmp:  # 0700
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert.write_bytes(m.cert)
            key.write_bytes(m.key)
            context.load_cert_chain(cert, key)
    return context
