"""The retry scheduler's backoff."""

from minop.retries import Backoff


def test_backoff_doubles_caps_and_resets():
    b = Backoff(1, 5)
    assert b.peek("k") == 1  # a look uses nothing up
    assert [b.next("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    assert b.failures("k") == 5 and b.peek("k") == 5
    b.reset("k")
    assert b.next("k") == 1
    assert b.next("other") == 1
