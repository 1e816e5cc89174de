"""How a hook call ended: the outcome type ``verdict`` decides over, pure values only."""

from __future__ import annotations

from enum import StrEnum

from minop.apierrors import ApiError, WritesFenced
from minop.errors import PermanentError, TemporaryError


class Ending(StrEnum):
    """How a hook call ended (the ``hook_calls`` metric's ``result`` label but OK's)."""

    OK = "ok"
    TEMPORARY = "temporary"  # TemporaryError
    PERMANENT = "permanent"  # PermanentError
    API = "api"  # an API error worth retrying: the API regime, no hook try used
    ERROR = "error"  # any other exception
    TIMEOUT = "timeout"
    FENCED = "fenced"  # a write refused: leadership in doubt
    INVALID = "invalid"  # returned a status the API server does not (or cannot) take


OK, TEMPORARY, PERMANENT, API, ERROR, TIMEOUT, FENCED, INVALID = Ending


def classify(error: BaseException) -> Ending:
    """The ending of a hook that raised ``error``."""
    if isinstance(error, TemporaryError):
        return TEMPORARY
    if isinstance(error, PermanentError):
        return PERMANENT
    if isinstance(error, WritesFenced):
        return FENCED
    if isinstance(error, ApiError) and error.retryable:
        return API
    return ERROR
