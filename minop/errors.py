"""Exceptions a hook raises to steer its retries (``minop.retries``: API trouble is
retried on a backoff of its own and never uses up these tries)."""


class HookFailure(Exception):
    """Base of the errors a hook raises on purpose."""


class TemporaryError(HookFailure):
    """Retry later: after ``delay`` seconds, or 1 s x 2^n capped at 5 min.

    Counts against the resource's ``max_tries``; once used up the object is
    marked ``Degraded`` (reason ``RetriesExhausted``) until its spec changes.
    """

    def __init__(self, message: str = "", delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(HookFailure):
    """Do not retry: the object is marked ``Degraded`` until its spec changes."""
