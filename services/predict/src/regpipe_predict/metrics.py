"""Prometheus metrics, correct across gunicorn workers (``PROMETHEUS_MULTIPROC_DIR``).

HTTP metrics come from prometheus-flask-exporter, grouped by URL rule
(``flask_http_request_duration_seconds``, ``flask_http_request_total``, ...). The model
metrics are:

- ``regpipe_predictions_total{protocol}``: successful prediction requests (``rest`` or ``v2``).
- ``regpipe_rows_predicted_total{protocol}``: rows predicted.
- ``regpipe_prediction_errors_total{reason}``: refused prediction requests, by reason
  (``malformed_json``, ``content_type``, ``missing_feature``, ``unknown_feature``,
  ``wrong_type``, ``not_finite``, ``row_length``, ``empty``, ``too_many_rows``,
  ``body_too_large``, ``not_ready``, ...).
- ``regpipe_model_compute_seconds``: histogram of model time per request (validated matrix
  in, predictions out).
- ``regpipe_predicted_value``: histogram of predicted values; buckets at the training target's
  mean ± 0.25..4 standard deviations (``target_stats`` of the first model a worker loads).
- ``regpipe_model_refused_total``: model versions a worker refused (sha256, allowlist, or a
  probe prediction that failed); the version it served before keeps serving.
- ``regpipe_model_info{name,version}``: 1 for the version a live worker serves, else 0
  (multiprocess mode ``livemax``: during a swap both versions read 1).
- ``regpipe_feature_drift{feature}``: (mean of the last ``DRIFT_WINDOW_ROWS`` input rows −
  training mean) / training standard deviation (``feature_stats``), set at most every
  ``DRIFT_UPDATE_INTERVAL`` seconds; multiprocess mode ``livemostrecent``: the value from
  the worker that updated last.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from flask import Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)
from prometheus_flask_exporter import PrometheusMetrics

from . import categories
from .adapters import prometheus
from .adapters.prometheus import observe_many
from .errors import ApiError
from .model_store import LoadedModel
from .rolling import RollingSums

PREDICTIONS = Counter("regpipe_predictions_total", "Successful prediction requests.", ["protocol"])
ROWS = Counter("regpipe_rows_predicted_total", "Rows predicted.", ["protocol"])
ERRORS = Counter(
    "regpipe_prediction_errors_total", "Refused prediction requests, by reason.", ["reason"]
)
COMPUTE = Histogram(
    "regpipe_model_compute_seconds",
    "Model compute time per request.",
    buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0),
)
MODELS_REFUSED = Counter(
    "regpipe_model_refused_total",
    "Model versions a worker refused to serve (integrity, allowlist, or probe prediction).",
)
MODEL_INFO = Gauge(
    "regpipe_model_info",
    "The model version a worker serves (1) or served (0).",
    ["name", "version"],
    multiprocess_mode="livemax",
)
DRIFT = Gauge(
    "regpipe_feature_drift",
    "(recent input mean - training mean) / training standard deviation, per feature.",
    ["feature"],
    multiprocess_mode="livemostrecent",
)
_SD_MULTIPLES = (-4, -3, -2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1.5, 2, 3, 4)
_value_hist: Histogram | None = None
_value_lock = threading.Lock()


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def init_app(app: Flask) -> PrometheusMetrics:
    """HTTP metrics by URL rule, and ``GET /metrics`` for everything in this process group."""
    http_registry = CollectorRegistry(auto_describe=True)
    exporter = PrometheusMetrics(
        app,
        path=None,
        registry=http_registry,
        group_by="url_rule",
        excluded_paths=["/metrics"],
    )

    def metrics_view() -> Response:
        return Response(render(http_registry), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    return exporter


def http_request_metrics(exporter: PrometheusMetrics) -> tuple[Histogram, Counter]:
    """prometheus-flask-exporter's request histogram and counter, for the WSGI fast path."""
    return (
        prometheus.collector(exporter.registry, "flask_http_request_duration_seconds"),
        prometheus.collector(exporter.registry, "flask_http_request_total"),
    )


# Library and runtime versions are an attacker's map, not a client's need: never exported.
HIDDEN_METRICS = frozenset({"flask_exporter_info", "python_info"})


class _Visible:
    """A collector's metrics without :data:`HIDDEN_METRICS`."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            for family in collector.collect():
                if family.name not in HIDDEN_METRICS:
                    yield family


def render(http_registry: CollectorRegistry) -> bytes:
    registry = CollectorRegistry()
    if multiprocess_mode():
        registry.register(_Visible(multiprocess.MultiProcessCollector(None)))
    else:
        registry.register(_Visible(REGISTRY, http_registry))
    return generate_latest(registry)


def value_buckets(target_stats: dict | None) -> tuple[float, ...]:
    """Buckets around the training target's mean, in standard deviations."""
    stats = target_stats or {}
    mean, var = float(stats.get("mean", 0.0)), float(stats.get("var", 0.0))
    sd = var**0.5 if var > 0 else 1.0
    return tuple(sorted({round(mean + k * sd, 6) for k in _SD_MULTIPLES}))


def _value_histogram(model: LoadedModel) -> Histogram:
    global _value_hist
    if _value_hist is not None:  # made once per process: no lock on every request
        return _value_hist
    with _value_lock:
        if _value_hist is None:
            _value_hist = Histogram(
                "regpipe_predicted_value",
                "Predicted values.",
                buckets=value_buckets(model.metadata.get("target_stats")),
            )
        return _value_hist


class Drift:
    """Per-feature means over the last ``window`` rows, against the training statistics."""

    def __init__(self, model: LoadedModel, window: int, interval: float) -> None:
        stats = model.metadata.get("feature_stats") or {}
        self.features = [f for f in model.features if f in stats]
        index = [model.features.index(f) for f in self.features]
        # every feature in order (the usual case): sum X itself, no fancy-indexed copy
        self.index: list[int] | None = None if index == list(range(len(model.features))) else index
        self.mean = np.array([float(stats[f].get("mean", 0.0)) for f in self.features])
        var = np.array([float(stats[f].get("var", 0.0)) for f in self.features])
        self.sd = np.where(var > 0, np.sqrt(np.maximum(var, 0)), np.nan)
        self.window = window
        self.recent = RollingSums(len(self.features), window, interval)
        self.gauges = [DRIFT.labels(feature=f) for f in self.features]

    def retire(self) -> None:
        """The model is swapped out: its drift gauges become NaN, not their last values."""
        for gauge in self.gauges:
            gauge.set(float("nan"))

    def update(self, X: np.ndarray) -> None:
        if not self.features:
            return
        X = X[-self.window :]  # older rows of a large batch would leave the window at once
        means = self.recent.add(len(X), (X if self.index is None else X[:, self.index]).sum(axis=0))
        if means is None:
            return
        drift = (means - self.mean) / self.sd
        for gauge, value in zip(self.gauges, drift, strict=True):
            if np.isfinite(value):
                gauge.set(float(value))


class ModelMetrics:
    """What one worker records for the model it serves."""

    def __init__(self, drift_window: int, drift_interval: float) -> None:
        self.drift_window = drift_window
        self.drift_interval = drift_interval
        self.children = {
            p: (PREDICTIONS.labels(protocol=p), ROWS.labels(protocol=p)) for p in ("rest", "v2")
        }
        self.drift: Drift | None = None
        self.category_drift: categories.CategoryDrift | None = None
        self.version: str | None = None

    def on_swap(self, previous: LoadedModel | None, current: LoadedModel) -> None:
        if previous is not None:
            MODEL_INFO.labels(name=previous.name, version=previous.version).set(0)
        for old in (self.drift, self.category_drift):
            if old is not None:
                old.retire()  # no stale drift values of a model no longer served
        MODEL_INFO.labels(name=current.name, version=current.version).set(1)
        _value_histogram(current)
        self.drift = Drift(current, self.drift_window, self.drift_interval)
        self.category_drift = categories.category_drift(
            current, self.drift_window, self.drift_interval
        )
        self.version = current.version

    def record(
        self, protocol: str, model: LoadedModel, X: np.ndarray, y: np.ndarray, seconds: float
    ) -> None:
        predictions, rows = self.children[protocol]
        predictions.inc()
        rows.inc(len(y))
        COMPUTE.observe(seconds)
        observe_many(_value_histogram(model), y)
        drift = self.drift
        if drift is not None and self.version == model.version:
            drift.update(X)
        category_drift = self.category_drift
        if category_drift is not None and self.version == model.version:
            category_drift.update(X)  # unseen levels counted, their recent share

    @staticmethod
    def on_refuse(url: str) -> None:
        MODELS_REFUSED.inc()

    @staticmethod
    def error(reason: str) -> None:
        ERRORS.labels(reason=reason).inc()


def counts_refusals(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count every refused prediction request in ``regpipe_prediction_errors_total``."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ApiError as exc:
            ModelMetrics.error(exc.reason)
            raise

    return wrapper
