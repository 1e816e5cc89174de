"""The retry scheduler: when a failed pass of one resource's objects runs again.

Two backoffs, never mixed: trouble with the API server (a hook's API errors, or our own
writes) backs off from 5 ms and never uses up a hook's tries; a hook's own failure backs
off from 1 s, up to the resource's ``max_tries`` (``verdict`` decides). A failed hook is
not run again before its retry is due, whatever events come meanwhile (its own status
write echoes back at once); a new spec clears that. The records are one object's:
another uid under the same name starts afresh. State only, no I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from minop.objects import Key, content_hash

FENCED_RETRY = 2.0  # seconds before a fenced pass is tried again (leadership may return)


class Backoff:
    """Per-key exponential backoff: ``base`` x 2^n, capped, reset on success."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap = base, cap
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> float:
        """The delay ``next`` would return, without using it up."""
        return min(self.cap, self.base * 2.0 ** self._failures.get(key, 0))

    def next(self, key: Hashable) -> float:
        with self._lock:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        return min(self.cap, self.base * 2.0**n)

    def keys(self) -> set[Any]:
        with self._lock:
            return set(self._failures)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def reset(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)


class Retries:
    """One resource's retries: the two backoffs, a failed hook's tries and when it may
    run again, per object."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.api_backoff = Backoff(0.005, 1000.0)  # API trouble: never uses up hook tries
        self.hook_backoff = Backoff(1.0, 300.0)  # TemporaryError and hook failures
        self._uid: dict[Key, str] = {}  # whose records these are
        self._tried_spec: dict[Key, str] = {}
        self._not_before: dict[Key, float] = {}
        self._lock = threading.Lock()

    def remembered(self) -> set[Key]:
        """Every object something is kept for: bounded by the live objects."""
        with self._lock:
            keys = {*self._uid, *self._tried_spec, *self._not_before}
        return keys | self.api_backoff.keys() | self.hook_backoff.keys()

    def identify(self, key: Key, uid: str) -> None:
        """The object under ``key`` now is ``uid``: another one (recreated under the same
        name) starts with no failures."""
        with self._lock:
            before = self._uid.get(key)
            self._uid[key] = uid
        if before is not None and before != uid:
            self._drop(key)

    def tries(self, key: Key) -> int:
        """How many times the hook failed since it last succeeded (its context's retry)."""
        return self.hook_backoff.failures(key)

    def new_spec(self, key: Key, spec: dict[str, Any]) -> None:
        """A spec not tried before gets the full tries again, at once."""
        h = content_hash(spec)
        with self._lock:
            if self._tried_spec.get(key) != h:
                self._tried_spec[key] = h
                self._not_before.pop(key, None)
                self.hook_backoff.reset(key)

    def due_in(self, key: Key, causes: set[str]) -> float:
        """Seconds until a failed hook's retry is due (0: go). A referenced object that
        changed may be the fix, so it is tried at once."""
        with self._lock:
            at = self._not_before.get(key)
        if at is None or "related" in causes:
            return 0.0
        return max(0.0, at - self._clock())

    def api_delay(self, key: Key, error: BaseException | None) -> float:
        """The API backoff, but never sooner than the server's Retry-After."""
        asked = getattr(error, "retry_after", None) or 0.0
        return max(self.api_backoff.next(key), asked)

    def hook_delay(self, key: Key) -> float:
        """The hook backoff's next step, for ``verdict`` to decide on (not used up)."""
        return self.hook_backoff.peek(key)

    def hook_failed(self, key: Key, delay: float) -> None:
        """A hook's retry in ``delay`` s: one backoff step used up, the hook held back."""
        self.hook_backoff.next(key)
        with self._lock:
            self._not_before[key] = self._clock() + delay

    def succeeded(self, key: Key) -> None:
        self.hook_backoff.reset(key)
        self.api_backoff.reset(key)
        with self._lock:
            self._not_before.pop(key, None)

    def forget(self, key: Key) -> None:
        """The object is gone: nothing of it is kept."""
        with self._lock:
            self._uid.pop(key, None)
        self._drop(key)

    def _drop(self, key: Key) -> None:
        with self._lock:
            self._tried_spec.pop(key, None)
            self._not_before.pop(key, None)
        self.hook_backoff.reset(key)
        self.api_backoff.reset(key)
