"""prometheus_client internals (pinned ``<0.27``): a collector by metric name, and a histogram
observed many values at a time.

- ``CollectorRegistry._names_to_collectors``: prometheus-flask-exporter keeps no public handle
  on its request histogram and counter, which the WSGI fast path records into; the registry
  does, by name.
- ``Histogram._upper_bounds``, ``_buckets`` (per-bucket, non-cumulative counts) and ``_sum``:
  ``observe`` per value is a Python call per row; :func:`observe_many` adds to them exactly
  what ``observe`` would, in one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram


def collector(registry: CollectorRegistry, name: str) -> Any:
    """The collector registered under metric ``name`` (KeyError if none is)."""
    return registry._names_to_collectors[name]


def observe_many(hist: Histogram, values: np.ndarray) -> None:
    """``hist.observe(v)`` for every value, in one pass (a Python loop per row is too slow)."""
    if len(values) <= 4:
        for value in values.tolist():
            hist.observe(value)
        return
    bounds = hist._upper_bounds
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for i in np.flatnonzero(counts).tolist():
        hist._buckets[i].inc(int(counts[i]))
    hist._sum.inc(float(values.sum()))
