"""The self-managed webhook certificate: a CA and a serving certificate it signs.

Issued with the ``openssl`` command (the image installs it; minop has no crypto
dependency and the standard library cannot sign). Kept in one Secret shared by every
replica: ``ca.crt`` is the bundle the API server trusts (the current CA first, older
ones until they expire), ``ca.key`` the current CA's key, ``tls.crt``/``tls.key``
the serving pair.

Rotation never breaks a request: a CA is replaced a third of its life before it
expires by *adding* the new one to the bundle (the serving certificate, signed by
the old CA, stays trusted); the serving certificate is renewed a third of its life
before expiry, signed by the newest CA, which the bundle published long before.
"""

from __future__ import annotations

import base64
import calendar
import functools
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CA_DAYS = 3650
SERVING_DAYS = 90
RENEW_SHARE = 1 / 3  # renewed when less than this share of its validity remains
_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)
KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key")


class CertError(RuntimeError):
    """openssl failed or a stored certificate cannot be read; the message says which."""


def _openssl(tmp: str, *args: str) -> str:
    try:
        done = subprocess.run(
            ["openssl", *args], check=True, capture_output=True, cwd=tmp, text=True, timeout=60
        )
    except FileNotFoundError:
        raise CertError("the openssl command is needed for self-managed certificates") from None
    except subprocess.CalledProcessError as e:
        raise CertError(f"openssl {args[0]} failed: {e.stderr.strip()}") from None
    return done.stdout


def issue(
    cn: str, days: int, *, hosts: tuple[str, ...] = (), ca: tuple[str, str] | None = None
) -> tuple[str, str]:
    """A new (certificate, key) in PEM: a CA when ``ca`` is None, else a serving
    certificate for ``hosts`` (DNS names or IP addresses) signed by ``ca`` (cert, key)."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with tempfile.TemporaryDirectory(prefix="minop-certs-") as tmp:
        if ca is None:
            ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
            Path(tmp, "ext").write_text(ext)
            _openssl(tmp, "req", "-x509", *key, "-subj", f"/CN={cn}", "-days", str(days),
                     "-keyout", "out.key", "-out", "out.crt", "-extensions", "v3",
                     "-config", _config(tmp, ext))  # fmt: skip
        else:
            Path(tmp, "ca.crt").write_text(ca[0])
            Path(tmp, "ca.key").write_text(ca[1])
            sans = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
            Path(tmp, "ext").write_text(
                f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=critical,CA:FALSE\n"
            )
            _openssl(tmp, "req", "-new", *key, "-subj", f"/CN={cn}",
                     "-keyout", "out.key", "-out", "out.csr")  # fmt: skip
            _openssl(tmp, "x509", "-req", "-in", "out.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                     "-CAcreateserial", "-extfile", "ext", "-days", str(days),
                     "-out", "out.crt")  # fmt: skip
        return Path(tmp, "out.crt").read_text(), Path(tmp, "out.key").read_text()


def _config(tmp: str, ext: str) -> str:
    Path(tmp, "req.cnf").write_text(f"[req]\ndistinguished_name=dn\n[dn]\n[v3]\n{ext}")
    return "req.cnf"


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+:[0-9a-fA-F:]*", host))


@functools.lru_cache(maxsize=16)  # an openssl run each; the hourly check reads the same PEMs
def validity(cert_pem: str) -> tuple[float, float]:
    """(notBefore, notAfter) of a PEM certificate, in seconds since the epoch."""
    with tempfile.TemporaryDirectory(prefix="minop-certs-") as tmp:
        Path(tmp, "c.crt").write_text(cert_pem)
        out = _openssl(tmp, "x509", "-in", "c.crt", "-noout", "-startdate", "-enddate")
    dates = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    try:
        return tuple(  # type: ignore[return-value]
            float(calendar.timegm(time.strptime(dates[k].strip(), "%b %d %H:%M:%S %Y %Z")))
            for k in ("notBefore", "notAfter")
        )
    except (KeyError, ValueError) as e:
        raise CertError(f"cannot read the validity of a certificate: {out!r}") from e


def certificates(bundle: str) -> list[str]:
    return [m.group(0).rstrip("\n") + "\n" for m in _CERT.finditer(bundle)]


def _due(cert_pem: str, now: float) -> bool:
    start, end = validity(cert_pem)
    return end - now < (end - start) * RENEW_SHARE


@dataclass(frozen=True)
class Material:
    """The Secret's four PEM values."""

    ca_bundle: str
    ca_key: str
    tls_crt: str
    tls_key: str

    @classmethod
    def from_secret(cls, data: dict[str, str] | None) -> Material | None:
        """From a Secret's ``data`` (base64); None when incomplete or unreadable."""
        if not data or any(k not in data for k in KEYS):
            return None
        try:
            values = [base64.b64decode(data[k]).decode() for k in KEYS]
        except ValueError:
            return None
        return cls(*values)

    def secret_data(self) -> dict[str, str]:
        values = (self.ca_bundle, self.ca_key, self.tls_crt, self.tls_key)
        return {k: base64.b64encode(v.encode()).decode() for k, v in zip(KEYS, values, strict=True)}


def renew(
    current: Material | None,
    cn: str,
    hosts: tuple[str, ...],
    now: float,
    *,
    ca_days: int = CA_DAYS,
    serving_days: int = SERVING_DAYS,
) -> Material | None:
    """What the Secret must hold at ``now``; None when ``current`` is still good."""
    if current is None or not certificates(current.ca_bundle):
        ca = issue(f"{cn} CA", ca_days)
        return Material(ca[0], ca[1], *issue(cn, serving_days, hosts=hosts, ca=ca))
    cas = [c for c in certificates(current.ca_bundle) if validity(c)[1] > now]
    ca = (cas[0], current.ca_key) if cas else issue(f"{cn} CA", ca_days)
    if _due(ca[0], now):  # the new CA joins the bundle; the old one stays trusted
        ca = issue(f"{cn} CA", ca_days)
        cas.insert(0, ca[0])
    elif not cas:
        cas = [ca[0]]
    tls = (current.tls_crt, current.tls_key)
    if _due(current.tls_crt, now) or validity(current.tls_crt)[1] <= now:
        tls = issue(cn, serving_days, hosts=hosts, ca=ca)
    renewed = Material("".join(cas), ca[1], *tls)
    return None if renewed == current else renewed
