"""Helm values for the chart tests: merged as Helm merges successive ``--set`` flags."""

from __future__ import annotations

import copy
from typing import Any


def merge_values(base: dict, update: dict) -> dict:
    """``base`` updated by ``update`` (neither is changed): maps merge key by key, list items
    merge by index (``--set a[0].x=1 --set a[0].y=2``), anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [
                _merge_item(old, new)
                for old, new in zip(out[key] + [None] * len(value), value, strict=False)
            ]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_item(old: Any, new: Any) -> Any:
    both_maps = isinstance(old, dict) and isinstance(new, dict)
    return merge_values(old, new) if both_maps else copy.deepcopy(new)


def container_env(container: dict) -> dict[str, str | None]:
    """A rendered container's environment: name -> value (None for a ``valueFrom``)."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}
