"""Test-split metrics for the SGD model and the exact optimum, in one pass over the partitions.

Each Dask task reduces one test partition to a few sums; the driver adds them up in partition
order (so the result does not depend on the number of workers) and derives RMSE, MAE and R².
"""

from __future__ import annotations

from typing import Any

import numpy as np
from distributed import Client

from .dataset import Dataset, Part, read_partition, standardize

# Linear models in the scaled space, by name: (coef, intercept).
Models = dict[str, tuple[np.ndarray, float]]


def partition_sums(part: Part, dataset: Dataset, models: Models) -> dict[str, Any]:
    """Row count, sums of ``y - ȳ_train`` and its square, and each model's SSE and SAE."""
    x, y = read_partition(part, dataset.features, dataset.target)
    standardize(x, dataset.mean, dataset.scale)
    center = dataset.target_mean
    yc = y - center
    sums: dict[str, Any] = {"rows": len(y), "sum_y": float(yc.sum()), "sum_y2": float(yc @ yc)}
    for name, (coef, intercept) in models.items():
        residual = y - (x @ coef + intercept)
        sums[name] = {"sse": float(residual @ residual), "sae": float(np.abs(residual).sum())}
    return sums


def evaluate(client: Client, dataset: Dataset, models: Models) -> dict[str, dict[str, float]]:
    """RMSE, MAE, R² and row count on the test split for every model in ``models``."""
    futures = [
        client.submit(partition_sums, part, dataset, models, pure=False) for part in dataset.test
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
    return metrics
