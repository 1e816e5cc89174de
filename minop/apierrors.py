"""Errors of talking to the API server, raised by ``kube`` and the watch stream.

Apart from the errors hooks raise (``minop.errors``): these retry in the API
regime and never use up a hook's tries.
"""

from __future__ import annotations

from typing import Any

# Server-side apply answers 500 when it cannot type the patch against the kind's schema
# (an unknown field in a free-form part of the desired state): the request is at fault,
# and sending it again cannot help.
_UNTYPEABLE_PATCH = "failed to create typed patch object"


class ApiError(Exception):
    """The API server refused a request (or could not be reached: ``status == 0``)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status, self.reason, self.message, self.body = status, reason, message, body or {}
        # Seconds the server asked us to wait (Retry-After of a 429 or 503): every retry
        # of this request, however far up it is retried, waits at least that long.
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth retrying later: conflicts, throttling, server trouble, no connection."""
        if self.status == 500 and _UNTYPEABLE_PATCH in self.message:
            return False
        return self.status in (0, 409, 429) or self.status >= 500

    @property
    def causes(self) -> list[dict[str, Any]]:
        """Field-level validation causes (``field``, ``message``) of a 422."""
        return list((self.body.get("details") or {}).get("causes") or [])


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Gone(ApiError):
    """410: the resourceVersion is too old (watch) or a continue token expired (list)."""


class WritesFenced(Exception):
    """A write was refused because this process may no longer be the leader."""


class StreamStalled(Exception):
    """A watch delivered nothing (not even a bookmark) within its read timeout."""
