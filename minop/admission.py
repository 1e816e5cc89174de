"""What the admission and conversion hooks receive and return (public API).

The API server sends an AdmissionReview or a ConversionReview to the operator's
webhook server (``minop.webhook``); the core turns it into the values below, calls
the owning plugin's ``minop_validate``, ``minop_mutate`` or ``minop_convert`` and
answers. A plugin never sees the review format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minop.resource import CREATE, DELETE, FAIL, IGNORE, UPDATE, Kind, Webhook

__all__ = [
    "CREATE",
    "DELETE",
    "FAIL",
    "IGNORE",
    "UPDATE",
    "AdmissionRequest",
    "ConversionError",
    "FieldError",
    "Validation",
    "Webhook",
]


@dataclass(frozen=True)
class FieldError:
    """One reason an object is refused; ``field`` is its path, e.g. ``spec.config.maxmemory``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class Validation:
    """What ``minop_validate`` returns: every error at once (the object is refused when
    there is one) and warnings (shown by kubectl, the object is admitted)."""

    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass(frozen=True)
class AdmissionRequest:
    """One object on its way into the API server.

    ``kind.version`` is the version the client used, ``object`` the object in that
    version (for DELETE it is ``None`` and ``old_object`` is set), ``old_object`` the
    stored object on UPDATE and DELETE. ``dry_run`` requests change nothing: a hook
    with side effects must not act on them (minop's hooks declare none).
    """

    uid: str
    operation: str
    kind: Kind
    namespace: str
    name: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None = None
    dry_run: bool = False
    user: str = ""


class ConversionError(Exception):
    """``minop_convert`` cannot express the object in the target version; ``field``
    names what stands in the way. The API server refuses the request with the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
