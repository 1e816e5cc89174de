"""minop: a minimal Kubernetes operator framework built on pluggy hooks.

The public API: what this module exports, and ``minop.kit``. Every other module is
the runtime's own and may change; plugins import nothing else (a test enforces it).
"""

from minop import kinds
from minop.admission import AdmissionRequest, ConversionError, FieldError, Validation
from minop.api import Api
from minop.apierrors import ApiError, Conflict, NotFound
from minop.conditions import DEGRADED, PROGRESSING, READY
from minop.context import Context
from minop.errors import PermanentError, TemporaryError
from minop.events import NORMAL, WARNING
from minop.objects import Obj, content_hash, data_hash
from minop.plugin.marker import hookimpl
from minop.resource import Kind, Related, Resource, Timer, Webhook

__version__ = "0.1.0"

__all__ = [
    "DEGRADED",
    "NORMAL",
    "PROGRESSING",
    "READY",
    "WARNING",
    "AdmissionRequest",
    "Api",
    "ApiError",
    "Conflict",
    "Context",
    "ConversionError",
    "FieldError",
    "Kind",
    "NotFound",
    "Obj",
    "PermanentError",
    "Related",
    "Resource",
    "TemporaryError",
    "Timer",
    "Validation",
    "Webhook",
    "__version__",
    "content_hash",
    "data_hash",
    "hookimpl",
    "kinds",
]
