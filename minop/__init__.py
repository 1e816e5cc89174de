"""minop: a minimal Kubernetes operator framework built on pluggy hooks."""

from minop.context import Context
from minop.errors import PermanentError, TemporaryError
from minop.plugin.marker import hookimpl
from minop.resource import Kind, Related, Resource, Timer

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Kind",
    "PermanentError",
    "Related",
    "Resource",
    "TemporaryError",
    "Timer",
    "__version__",
    "hookimpl",
]
