"""Kubernetes resource quantities (``1Gi``, ``500m``, ``1.5e3``) as numbers and in the
canonical form the API server returns, so a converged child costs no write (parsed by
the runtime's ``minop.quantity``, which compares a child's quantities too)."""

from __future__ import annotations

import math
from fractions import Fraction

from minop.quantity import BINARY, DECIMAL, parse
from minop.quantity import value as exact_value


def quantity(q: str | int) -> float:
    """A Kubernetes quantity (``1Gi``, ``500M``, ``100m``, ``2``) as a number."""
    return float(exact_value(q))


def quantity_value(q: str | int) -> int:
    """``q`` as a whole number, rounded up (away from zero) like apimachinery's
    ``Quantity.Value()``: ``0.5`` is 1, ``1.5Mi`` is 1572864; exact for any size."""
    p = parse(q)
    return -math.ceil(p.magnitude) if p.sign == "-" else math.ceil(p.magnitude)


_DECIMAL_SUFFIX = {v: k for k, v in DECIMAL.items()}


def canonical_quantity(q: str | int) -> str:
    """``q`` as the API server returns it in a ResourceList (``1024Mi`` → ``1Gi``,
    ``0.5`` → ``500m``, ``1.5G`` → ``1500M``), so ``ctx.apply`` sees no change.

    Mirrors apimachinery's Quantity: rounded up to milli precision, verbatim when
    ParseQuantity keeps the string, else the largest exact suffix of its format.
    """
    text, sign, whole, frac, suffix, value = parse(q)
    whole = whole.lstrip("0") or "0"
    if suffix and suffix in BINARY:
        power = BINARY.index(suffix)
        if not frac and 14 - len(whole) - 3 * power >= 0 and int(whole) % 8:
            return text
        value, fmt = value * 1024**power, "binary"
    else:
        fmt = "decimal" if suffix in DECIMAL else "exponent"
        exponent = DECIMAL[suffix] if fmt == "decimal" else int(suffix[1:])
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
        return f"{sign}{n}{BINARY[power]}"
    n, exp = int(value * 1000), -3
    while n % 10 == 0:
        n, exp = n // 10, exp + 1
    while exp % 3:
        n, exp = n * 10, exp - 1
    out = _DECIMAL_SUFFIX.get(exp) if fmt != "exponent" else ("" if exp == 0 else None)
    return f"{sign}{n}{out if out is not None else f'e{exp}'}"
