"""Typed reads of environment variables: every service reads its configuration through these.

Each service keeps one module (``settings.py``) that lists its variables and defaults; this
module only knows how to parse one variable and what a bad value looks like.
"""

from __future__ import annotations

import os

from .errors import RegpipeError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RegpipeError(f"environment variable {name}={raw!r} is not an integer") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise RegpipeError(f"environment variable {name}={raw!r} is not a number") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RegpipeError(f"environment variable {name}={raw!r} is not a boolean (true/false)")


def dask_scheduler_address() -> str | None:
    """``DASK_SCHEDULER_ADDRESS``: a running scheduler to use instead of a local cluster."""
    return env_str("DASK_SCHEDULER_ADDRESS")


_KINDS = {int: "an integer", float: "a number"}


def convert(flag: str, env: str, raw: object, kind: type) -> object:
    """``kind(raw)``, or a RegpipeError naming flag and variable (``--seed / PREPROCESS_SEED``)."""
    try:
        return kind(raw)
    except (TypeError, ValueError):
        expected = _KINDS.get(kind, kind.__name__)
        raise RegpipeError(f"{flag} / {env}={raw!r} is not {expected}") from None
