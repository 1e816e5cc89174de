"""minop.kit.testing's ``wait_for``: quick for what is nearly there, and at most one call
a second for what takes time (each call is often a kubectl subprocess)."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from minop.kit.testing import free_port, wait_for


def test_wait_for_answers_at_once_when_the_condition_holds() -> None:
    t0 = time.monotonic()
    assert wait_for(lambda: "ok", 5, "ready") == "ok"
    assert time.monotonic() - t0 < 0.5


def test_wait_for_backs_off_to_one_call_a_second() -> None:
    calls: list[float] = []
    t0 = time.monotonic()

    def after_4s() -> bool:
        calls.append(time.monotonic() - t0)
        return calls[-1] >= 4

    assert wait_for(after_4s, 10, "4 s passed")
    # 0.1, 0.2, 0.4, 0.8, then 1 s apart: 7 or 8 calls in 4 s (at 0.1 s apart, 40)
    assert len(calls) <= 9, calls
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert min(gaps[-3:]) >= 0.9, gaps
    # a fixed interval is still honoured where a caller asks for one
    fixed: list[float] = []
    wait_for(lambda: fixed.append(0) or len(fixed) >= 5, 5, "5 calls", interval=0.05)
    assert len(fixed) == 5


def test_wait_for_names_what_it_waited_for_and_the_last_value() -> None:
    expected = r"timed out after 1.5s waiting for the answer; last: 0"
    with pytest.raises(AssertionError, match=expected):
        wait_for(lambda: 0, 1.5, "the answer")


def test_free_port_is_never_one_an_outgoing_connection_may_take() -> None:
    """A port from bind(0) is ephemeral: a chaos run's operator could not bind its probe
    port because a client connection had taken it meanwhile ("Address already in use").
    free_port picks below the ephemeral range, and only a port no server holds."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    ports = {free_port() for _ in range(50)}
    assert all(1024 <= p < low for p in ports), sorted(p for p in ports if p >= low)
    assert len(ports) > 40  # random, not the same few
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free indeed
