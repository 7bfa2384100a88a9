"""Structured logging: ``key=value`` text for people, one JSON object per line for machines.

``LOG_LEVEL`` (default ``INFO``) and ``LOG_FORMAT`` (``text`` or ``json``, default ``text``).
Extra fields go in ``extra={"fields": {...}}`` or through :func:`event`.

With ``LOG_FORMAT=json`` every line the process prints is JSON: log records are formatted as
JSON, and ``sys.stdout``/``sys.stderr`` are wrapped so that any other line (a ``print``, a
traceback, a library's own output) becomes a ``{"logger": "stdout"|"stderr", "msg": line}``
record. gunicorn's error and access logs go through the same handler
(:func:`gunicorn_logconfig`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

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


class _JsonLines:
    """A text stream that passes JSON lines through and turns every other line into a JSON
    record (``logger`` = the stream's name); blank lines are dropped."""

    def __init__(self, raw: TextIO, name: str, level: str) -> None:
        self.raw, self.name, self.level = raw, name, level
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            for line in lines:
                self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        if not _is_json_object(line):
            doc = {"ts": round(time.time(), 3), "level": self.level, "logger": self.name}
            line = json.dumps({**doc, "msg": line.rstrip()})
        self.raw.write(line + "\n")

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._emit(self._pending)
                self._pending = ""
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ... of the raw stream
        return getattr(self.raw, name)


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def json_logs() -> bool:
    """True when ``LOG_FORMAT=json``."""
    return (env_str("LOG_FORMAT", "text") or "text").lower() == "json"


def _raw(stream: TextIO) -> TextIO:
    return stream.raw if isinstance(stream, _JsonLines) else stream


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger once per process from ``LOG_LEVEL`` / ``LOG_FORMAT``."""
    level = (level or env_str("LOG_LEVEL", "INFO") or "INFO").upper()
    fmt = (fmt or env_str("LOG_FORMAT", "text") or "text").lower()
    handler = logging.StreamHandler(_raw(sys.stderr))
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    if fmt == "json":
        sys.stdout = _JsonLines(_raw(sys.stdout), "stdout", "INFO")  # type: ignore[assignment]
        sys.stderr = _JsonLines(_raw(sys.stderr), "stderr", "ERROR")  # type: ignore[assignment]
        logging.captureWarnings(True)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Dask's own loggers are chatty at INFO; keep them to warnings.
    for name in ("distributed", "dask", "tornado"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def gunicorn_logconfig(access_log: bool) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: with JSON logs, its error and access loggers lose their
    own plain-text handlers and propagate to the root logger of :func:`configure_logging`; the
    access logger only if ``access_log`` (with a ``logconfig_dict`` gunicorn logs every request
    to it whatever its ``accesslog`` says)."""
    if not json_logs():
        return {}
    own = {"handlers": [], "propagate": True}
    access = {**own, "level": "INFO"} if access_log else {"handlers": [], "level": "CRITICAL"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {},  # left as configure_logging made it
        "loggers": {"gunicorn.error": own, "gunicorn.access": access},
        "handlers": {},
        "formatters": {},
    }


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields``."""
    logger.log(level, msg, extra={"fields": fields})
