"""Kubernetes resource quantities (``1Gi``, ``500m``, ``1.5e3``) as numbers and in the
canonical form the API server returns, so a converged child costs no write."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import NamedTuple

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 10**-3,
}


def quantity(q: str | int) -> float:
    """A Kubernetes quantity (``1Gi``, ``500M``, ``100m``, ``2``) as a number."""
    text = str(q).strip()
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIX[suffix]
    return float(text)


def quantity_value(q: str | int) -> int:
    """``q`` as a whole number, rounded up (away from zero) like apimachinery's
    ``Quantity.Value()``: ``0.5`` is 1, ``1.5Mi`` is 1572864; exact for any size."""
    p = _parse(q)
    value, suffix = p.digits, p.suffix
    if suffix and suffix in _BINARY:
        value *= 1024 ** _BINARY.index(suffix)
    else:
        value *= Fraction(10) ** (_DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:]))
    return -math.ceil(value) if p.sign == "-" else math.ceil(value)


_QUANTITY_RE = re.compile(
    r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$"
)
_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}


class _Parsed(NamedTuple):
    text: str
    sign: str
    whole: str  # digits before the point
    frac: str  # digits after it
    suffix: str
    digits: Fraction  # the number without its suffix


def _parse(q: str | int) -> _Parsed:
    text = str(q).strip()
    m = _QUANTITY_RE.match(text)
    if not m or not (m.group(2) or m.group(3)):
        raise ValueError(f"not a quantity: {q!r}")
    sign, whole, frac, suffix = m.group(1), m.group(2), m.group(3) or "", m.group(4) or ""
    return _Parsed(
        text, sign, whole, frac, suffix, Fraction(int((whole + frac) or "0"), 10 ** len(frac))
    )


def canonical_quantity(q: str | int) -> str:
    """``q`` as the API server returns it in a ResourceList (``1024Mi`` → ``1Gi``,
    ``0.5`` → ``500m``, ``1.5G`` → ``1500M``), so ``ctx.apply`` sees no change.

    Mirrors apimachinery's Quantity: rounded up to milli precision, verbatim when
    ParseQuantity keeps the string, else the largest exact suffix of its format.
    """
    text, sign, whole, frac, suffix, value = _parse(q)
    whole = whole.lstrip("0") or "0"
    if suffix and suffix in _BINARY:
        power = _BINARY.index(suffix)
        if not frac and 14 - len(whole) - 3 * power >= 0 and int(whole) % 8:
            return text
        value, fmt = value * 1024**power, "binary"
    else:
        fmt = "decimal" if suffix in _DECIMAL else "exponent"
        exponent = _DECIMAL[suffix] if fmt == "decimal" else int(suffix[1:])
        shifted, scale = whole + frac, exponent - len(frac)
        if (
            len(shifted) <= 18
            and scale >= -3
            and scale % 3 == 0
            and not shifted.endswith("000")
            and not shifted.startswith("0")
        ):
            return text
        value *= Fraction(10) ** exponent
    value = Fraction(math.ceil(value * 1000), 1000)
    if value == 0:
        return "0"
    sign = "-" if sign == "-" else ""
    if fmt == "binary" and value >= 1024 and value.denominator == 1:
        n, power = int(value), 0
        while power < 6 and n % 1024 == 0:
            n, power = n // 1024, power + 1
        return f"{sign}{n}{_BINARY[power]}"
    n, exp = int(value * 1000), -3
    while n % 10 == 0:
        n, exp = n // 10, exp + 1
    while exp % 3:
        n, exp = n * 10, exp - 1
    out = _DECIMAL_SUFFIX.get(exp) if fmt != "exponent" else ("" if exp == 0 else None)
    return f"{sign}{n}{out if out is not None else f'e{exp}'}"
