"""Run metrics of the batch jobs, pushed to a Prometheus Pushgateway (``PUSHGATEWAY_URL``).

A batch job lives shorter than a scrape interval, so it pushes once at its end (Prometheus'
standard pattern for batch jobs): one group per job (``job="regpipe-preprocess"``,
``job="regpipe-train"``), every series named ``regpipe_job_*``. A successful run replaces the
whole group (``push_to_gateway``); a failed run only updates ``regpipe_job_succeeded`` (0), its
duration and ``regpipe_job_last_run_timestamp_seconds`` (``pushadd_to_gateway``), so the last
good run's numbers and ``regpipe_job_last_success_timestamp_seconds`` stay visible. Without
``PUSHGATEWAY_URL`` nothing is pushed; an unreachable gateway is a warning, never a failed job.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, pushadd_to_gateway

from .log import event
from .settings import env_str

ENV = "PUSHGATEWAY_URL"
PREFIX = "regpipe_job_"
# Every run metric a job may push, with its help text (one place: dashboard and alerts use these).
METRICS = {
    "duration_seconds": "Wall-clock duration of the run",
    "rows_read": "Rows read from the input",
    "rows_rejected": "Rows rejected as malformed",
    "rows_dropped": "Rows dropped for missing values",
    "rows_train": "Rows in the train split",
    "rows_test": "Rows in the test split",
    "rows_per_second": "Rows processed per second (train: rows x epochs)",
    "epochs": "Training epochs run",
    "test_r2": "R² of the trained model on the test split",
    "r2_gap_to_optimum": "R² of the exact least-squares optimum minus the model's test R²",
    "promoted": "1 if the run's model became LATEST",
    "succeeded": "1 if the last run succeeded, 0 if it failed",
    "last_run_timestamp_seconds": "Unix time the last run ended",
    "last_success_timestamp_seconds": "Unix time the last successful run ended",
}

log = logging.getLogger(__name__)
R = TypeVar("R")


def push_run(job: str, metrics: Mapping[str, float], *, succeeded: bool) -> bool:
    """Push one run's ``metrics`` (keys of :data:`METRICS`) for ``job``; False when not pushed."""
    url = env_str(ENV)
    if not url:
        return False
    now = time.time()
    values = {**metrics, "succeeded": 1.0 if succeeded else 0.0, "last_run_timestamp_seconds": now}
    if succeeded:
        values["last_success_timestamp_seconds"] = now
    registry = CollectorRegistry()
    for name, value in values.items():
        Gauge(PREFIX + name, METRICS[name], registry=registry).set(float(value))
    push = push_to_gateway if succeeded else pushadd_to_gateway
    try:
        push(url, job=job, registry=registry, timeout=10)
    except OSError as exc:  # URLError, refused, timeout: the job's own result stands
        event(log, "could not push run metrics", logging.WARNING, url=url, error=str(exc))
        return False
    event(log, "pushed run metrics", url=url, job=job, succeeded=succeeded)
    return True


def pushes_run_metrics(
    job: str, metrics: Callable[[R], Mapping[str, float]]
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate a job's ``run``: push ``metrics(result)`` and the duration when it returns, a
    failed status when it raises (the exception goes on)."""

    def decorate(run: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(run)
        def wrapper(*args: Any, **kwargs: Any) -> R:
            start = time.monotonic()
            try:
                result = run(*args, **kwargs)
            except BaseException:
                push_run(job, {"duration_seconds": time.monotonic() - start}, succeeded=False)
                raise
            seconds = time.monotonic() - start
            values = dict(metrics(result))  # "rows_processed" (not pushed) gives rows/s
            values["rows_per_second"] = values.pop("rows_processed", 0.0) / max(seconds, 1e-9)
            push_run(job, {**values, "duration_seconds": seconds}, succeeded=True)
            return result

        return wrapper

    return decorate


def manifest_metrics(manifest: Mapping[str, Any]) -> dict[str, float]:
    """Run metrics of a prepared dataset's manifest (preprocess)."""
    return {
        "rows_read": manifest["rows_read"],
        "rows_rejected": manifest["rows_rejected"],
        "rows_dropped": manifest["rows_dropped_missing"],
        "rows_train": manifest["rows_train"],
        "rows_test": manifest["rows_test"],
        "rows_processed": manifest["rows_read"],
    }


def bundle_metrics(metadata: Mapping[str, Any]) -> dict[str, float]:
    """Run metrics of a published bundle's metadata (train). ``promoted`` is 1 when the
    promotion gate moved ``LATEST`` to it, 0 when the bundle was published without (exit 3)."""
    epochs = metadata["params"]["epochs_run"]
    train_rows = metadata["optimum"]["train_rows"]
    metrics = {
        "rows_train": train_rows,
        "rows_test": metadata["metrics"]["rows"],
        "epochs": epochs,
        "test_r2": metadata["metrics"]["r2"],
        "r2_gap_to_optimum": metadata["optimum"]["gap_r2"],
        "promoted": int(bool(metadata.get("promotion", {}).get("promoted", True))),
        "rows_processed": train_rows * epochs,
    }
    # No gap when train skipped the optimum (a design too wide for a dense Gram matrix).
    return {k: v for k, v in metrics.items() if v is not None}
