"""Structured logging: ``key=value`` text for people, one JSON object per line for machines.

``LOG_LEVEL`` (default ``INFO``) and ``LOG_FORMAT`` (``text`` or ``json``, default ``text``).
Extra fields go in ``extra={"fields": {...}}`` or through :func:`event`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from .settings import env_str

_RESERVED = {"fields"}


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = getattr(record, "fields", None) or {}
        kv = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
        line = f"{ts} {record.levelname:<5} {record.name}: {record.getMessage()}"
        if kv:
            line += " " + kv
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return f'"{text}"' if " " in text else text


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger once per process from ``LOG_LEVEL`` / ``LOG_FORMAT``."""
    level = (level or env_str("LOG_LEVEL", "INFO") or "INFO").upper()
    fmt = (fmt or env_str("LOG_FORMAT", "text") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Dask's own loggers are chatty at INFO; keep them to warnings.
    for name in ("distributed", "dask", "tornado"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields``."""
    logger.log(level, msg, extra={"fields": fields})
