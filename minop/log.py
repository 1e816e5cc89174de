"""JSON or text logs carrying object keys (namespace, name, kind, plugin, hook)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

KEYS = ("namespace", "name", "kind", "plugin", "hook")
# LogRecord reserves "name" (the logger's), so object keys travel prefixed.
_ATTR = {k: f"k_{k}" for k in KEYS}


def fields(**keys: str | None) -> dict[str, str]:
    """``extra=`` for a log call: ``log.info(..., extra=fields(kind=..., name=...))``."""
    unknown = set(keys) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown log keys {sorted(unknown)}")
    return {_ATTR[k]: v for k, v in keys.items() if v}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in KEYS:
            value = getattr(record, _ATTR[key], None)
            if value:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        keys = " ".join(
            f"{k}={getattr(record, _ATTR[k])}" for k in KEYS if getattr(record, _ATTR[k], None)
        )
        return f"{line} [{keys}]" if keys else line


def setup(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # urllib3 logs every retry and connection at DEBUG/WARNING; ours say more.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
