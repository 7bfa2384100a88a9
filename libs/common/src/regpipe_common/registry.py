"""``LATEST`` and its history: which version is promoted, and which ones were before it.

``<models>/<name>/LATEST`` names the promoted version (one line, replaced atomically).
``<models>/<name>/HISTORY.jsonl`` beside it logs every change of ``LATEST``, one JSON object a
line: ``{"at", "action", "version", "previous"}``, ``action`` being ``publish``, ``promote`` or
``rollback``. ``LATEST`` is written first, then the log (each write atomic), so a crash in
between leaves a log one entry behind, which :func:`promotion_stack` repairs on reading.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from . import storage

LATEST_FILE = "LATEST"
HISTORY_FILE = "HISTORY.jsonl"
ACTIONS = ("publish", "promote", "rollback")


def read_latest(model_root: str) -> str | None:
    """The version named by ``<model_root>/LATEST``, or None if there is none."""
    try:
        return storage.read_text(storage.join(model_root, LATEST_FILE)).strip() or None
    except FileNotFoundError:
        return None


def read_history(model_root: str) -> list[dict[str, Any]]:
    """The log's entries, oldest first (empty if there is no log yet)."""
    try:
        text = storage.read_text(storage.join(model_root, HISTORY_FILE))
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def move_latest(model_root: str, version: str, action: str) -> dict[str, Any]:
    """Point ``LATEST`` at ``version`` atomically and log it; return the log entry."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "action": action,
        "version": version,
        "previous": read_latest(model_root),
    }
    history = read_history(model_root)
    storage.write_text_atomic(storage.join(model_root, LATEST_FILE), version + "\n")
    lines = [json.dumps(e, sort_keys=True) for e in [*history, entry]]
    storage.write_text_atomic(storage.join(model_root, HISTORY_FILE), "\n".join(lines) + "\n")
    return entry


def promotion_stack(model_root: str) -> list[str]:
    """The promoted versions, oldest first, as rollbacks see them: the last one is ``LATEST``.

    A publish or promote pushes its version; a rollback pops back to its version. Versions from
    before the log (when every publish moved ``LATEST``) start the stack, up to the ``LATEST``
    the log started from. A ``LATEST`` that the log does not end with (edited by hand, or a
    crash before the log was written) counts as promoted last.
    """
    history = read_history(model_root)
    base = history[0].get("previous") if history else read_latest(model_root)
    stack = [v for v in version_names(model_root) if base is not None and v <= base]
    for entry in history:
        if entry.get("action") == "rollback":
            while stack and stack[-1] != entry["version"]:
                stack.pop()
            if not stack:
                stack.append(entry["version"])
        else:
            stack.append(entry["version"])
    latest = read_latest(model_root)
    if latest is not None and (not stack or stack[-1] != latest):
        stack.append(latest)
    return stack


def rollback_target(model_root: str) -> str | None:
    """The version promoted before the current one, or None if there is none."""
    stack = promotion_stack(model_root)
    current = stack[-1] if stack else None
    earlier = [v for v in stack[:-1] if v != current]
    return earlier[-1] if earlier else None


def version_names(model_root: str) -> list[str]:
    """Every published version of a model, oldest first (staging and hidden folders skipped).

    Versions sort by creation time, so their names sort by age.
    """
    fs, path = storage.filesystem(model_root)
    fs.invalidate_cache(path)
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    names = [
        e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"
    ]
    return sorted(n for n in names if n[:1].isdigit() and ".staging-" not in n)
