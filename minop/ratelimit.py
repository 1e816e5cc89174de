"""The client-side rate limit every API request waits on."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Token bucket: ``qps`` sustained, ``burst`` at once; ``qps`` 0 is no limit (the
    default, as in controller-runtime since v0.21: the API server's Priority and
    Fairness protects it, and answers 429 with Retry-After, which is honoured)."""

    def __init__(self, qps: float = 0.0, burst: int = 0) -> None:
        self._lock = threading.Lock()
        self.configure(qps, burst)

    def configure(self, qps: float, burst: int) -> None:
        with self._lock:
            self.qps, self.burst = qps, burst if burst > 0 else max(1, int(qps * 1.5))
            self._tokens = float(self.burst)
            self._stamp = time.monotonic()

    def acquire(self) -> None:
        if self.qps <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait:
            time.sleep(wait)
