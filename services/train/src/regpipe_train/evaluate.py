"""Test-split metrics for several linear models, in one pass over the partitions.

Each Dask task reduces one test partition to a few sums (and a small fixed sample of targets
and predictions, for the report's plots); the driver adds them up in partition order (so the
result does not depend on the number of workers) and derives RMSE, MAE and R².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Client

from .dataset import SAMPLE_STREAM, Dataset, Part, read_partition

# Linear models on the encoded design (:mod:`.design`), by name: (coef, intercept).
Models = dict[str, tuple[np.ndarray, float]]
# About this many test rows are kept for the predicted-vs-actual and residual plots.
SAMPLE_ROWS = 5_000


@dataclass(frozen=True)
class Evaluation:
    """Every model's metrics, and a sample of the test targets with each model's predictions."""

    metrics: dict[str, dict[str, float]]
    actual: np.ndarray
    predicted: dict[str, np.ndarray]


def partition_sums(
    part: Part, dataset: Dataset, models: Models, fraction: float = 0.0
) -> dict[str, Any]:
    """Row count, sums of ``y - ȳ_train`` and its square, each model's SSE and SAE, a sample."""
    block = read_partition(part, dataset)
    yc = block.y
    y = yc + dataset.target_mean
    keep = np.random.default_rng([SAMPLE_STREAM, part.index]).random(len(y)) < fraction
    sums: dict[str, Any] = {
        "rows": len(y),
        "sum_y": float(yc.sum()),
        "sum_y2": float(yc @ yc),
        "sample": y[keep],
    }
    for name, (coef, intercept) in models.items():
        prediction = block.predict(coef, intercept)
        residual = y - prediction
        sums[name] = {
            "sse": float(residual @ residual),
            "sae": float(np.abs(residual).sum()),
            "sample": prediction[keep],
        }
    return sums


def evaluate(client: Client, dataset: Dataset, models: Models) -> Evaluation:
    """RMSE, MAE, R² and row count on the test split for every model in ``models``."""
    fraction = min(1.0, SAMPLE_ROWS / sum(p.rows for p in dataset.test))
    futures = [
        client.submit(partition_sums, part, dataset, models, fraction, pure=False)
        for part in dataset.test
    ]
    results = client.gather(futures)
    rows = sum(r["rows"] for r in results)
    sum_y = sum(r["sum_y"] for r in results)
    sum_y2 = sum(r["sum_y2"] for r in results)
    total = sum_y2 - sum_y * sum_y / rows
    metrics = {}
    for name in models:
        sse = sum(r[name]["sse"] for r in results)
        sae = sum(r[name]["sae"] for r in results)
        metrics[name] = {
            "rmse": float(np.sqrt(sse / rows)),
            "mae": sae / rows,
            "r2": 1.0 - sse / total if total > 0 else float("nan"),
            "rows": rows,
        }
    return Evaluation(
        metrics=metrics,
        actual=np.concatenate([r["sample"] for r in results]),
        predicted={n: np.concatenate([r[n]["sample"] for r in results]) for n in models},
    )
