"""Quantities as the operator turns them into program settings: exact, rounded up."""

from __future__ import annotations

import pytest

from minop.kit import workloads as wl


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Mi", 1 << 20),
        ("1.5Mi", 3 << 19),
        ("0.5", 1),  # rounded up, never truncated to 0 (which Redis reads as "no limit")
        ("1048576.3", 1048577),
        ("1e7", 10_000_000),
        ("100m", 1),
        ("8Ei", 8 << 60),  # beyond a float's 53 bits: still exact
        (123, 123),
        ("-1.5", -2),  # away from zero, as apimachinery's Quantity.Value()
    ],
)
def test_quantity_value_is_exact_and_rounds_up(text, value):
    assert wl.quantity_value(text) == value


@pytest.mark.parametrize("text", ["1e1.5", "lots", "", "1.2.3Mi", "Mi"])
def test_quantity_value_refuses_what_no_parser_reads(text):
    with pytest.raises(ValueError, match="not a quantity"):
        wl.quantity_value(text)
