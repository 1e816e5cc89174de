"""minop: a minimal Kubernetes operator framework built on pluggy hooks."""

from minop.apierrors import ApiError, Conflict, NotFound
from minop.apply import HASH_KEY, content_hash
from minop.context import Context
from minop.errors import PermanentError, TemporaryError
from minop.kube import Obj
from minop.plugin.marker import hookimpl
from minop.resource import Kind, Related, Resource, Timer

__version__ = "0.1.0"

__all__ = [
    "HASH_KEY",
    "ApiError",
    "Conflict",
    "Context",
    "Kind",
    "NotFound",
    "Obj",
    "PermanentError",
    "Related",
    "Resource",
    "TemporaryError",
    "Timer",
    "__version__",
    "content_hash",
    "hookimpl",
]
