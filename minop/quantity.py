"""Kubernetes resource quantities (``1Gi``, ``500m``, ``1.5e3``), parsed exactly: one
parser for the runtime (a child's ``1000m`` is the ``1`` the API server returns) and
the kit's arithmetic and canonical forms (``minop.kit.quantity``)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

QUANTITY_RE = re.compile(
    r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$"
)
BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


class Parsed(NamedTuple):
    text: str
    sign: str
    whole: str  # digits before the point
    frac: str  # digits after it
    suffix: str
    digits: Fraction  # the number without its suffix

    @property
    def magnitude(self) -> Fraction:
        """The exact value without its sign."""
        if self.suffix and self.suffix in BINARY:
            return self.digits * Fraction(1024) ** BINARY.index(self.suffix)
        exponent = DECIMAL[self.suffix] if self.suffix in DECIMAL else int(self.suffix[1:])
        return self.digits * Fraction(10) ** exponent


def parse(q: str | int | float) -> Parsed:
    """``q`` taken apart; ValueError naming it when it is no quantity."""
    text = str(q).strip()
    m = QUANTITY_RE.match(text)
    if not m or not (m.group(2) or m.group(3)):
        raise ValueError(f"not a quantity: {q!r}")
    sign, whole, frac, suffix = m.group(1), m.group(2), m.group(3) or "", m.group(4) or ""
    return Parsed(
        text, sign, whole, frac, suffix, Fraction(int((whole + frac) or "0"), 10 ** len(frac))
    )


def value(q: str | int | float) -> Fraction:
    """The exact value of a quantity; ValueError when it is none."""
    p = parse(q)
    return -p.magnitude if p.sign == "-" else p.magnitude
