"""The promotion gate: does the new version replace the one ``LATEST`` names?

The current model is scored in the same evaluation pass as the new one, on the same test split.
The new version is promoted if there is no current model, if the current one cannot be loaded
(nothing to compare against), or if the new test R² is not worse than the current one's by more
than ``max_regression``; never if the current model takes other features or predicts another
target (clients would break), unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from regpipe_common import registry, storage
from regpipe_common.bundle import load_bundle
from regpipe_common.errors import RegpipeError

from .dataset import Dataset


@dataclass(frozen=True)
class Current:
    """The model ``LATEST`` names, as a linear model in the dataset's scaled space."""

    version: str
    linear: tuple[np.ndarray, float] | None
    problem: str | None = None  # why it cannot be compared
    loads: bool = True


def current_model(models: str, name: str, dataset: Dataset) -> Current | None:
    """The current ``LATEST`` model of ``name``, or None if there is none."""
    root = storage.join(models, name)
    version = registry.read_latest(root)
    if version is None:
        return None
    try:
        bundle = load_bundle(root)
    except RegpipeError as exc:
        return Current(
            version, None, f"the current LATEST {version} cannot be loaded: {exc}", False
        )
    if bundle.features != dataset.features or bundle.metadata["target"] != dataset.target:
        return Current(
            version,
            None,
            f"the current LATEST {version} takes features {bundle.features} -> "
            f"{bundle.metadata['target']!r}, the new model {dataset.features} -> "
            f"{dataset.target!r}",
        )
    linear = in_scaled_space(bundle.model, dataset)
    if linear is None:
        return Current(version, None, f"the current LATEST {version} is not a scaled linear model")
    return Current(version, linear)


def in_scaled_space(model: Any, dataset: Dataset) -> tuple[np.ndarray, float] | None:
    """``(coef, intercept)`` on the dataset's standardized features of a
    ``Pipeline(StandardScaler, linear model)`` that has its own scaler."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2 or not hasattr(steps[0][1], "scale_"):
        return None
    scaler, reg = steps[0][1], steps[1][1]
    coef = np.asarray(getattr(reg, "coef_", None), dtype=np.float64)
    if coef.shape != (len(dataset.features),):
        return None
    intercept = float(np.asarray(reg.intercept_).reshape(-1)[0])
    # x = z * scale + mean, so (x - m_old) / s_old @ coef = z @ (scale / s_old * coef) + const.
    old_mean = np.asarray(scaler.mean_) if scaler.mean_ is not None else 0.0
    old_scale = np.asarray(scaler.scale_) if scaler.scale_ is not None else 1.0
    shifted = float(((dataset.mean - old_mean) / old_scale) @ coef)
    return dataset.scale / old_scale * coef, intercept + shifted


def decide(
    new: dict[str, float],
    current: Current | None,
    current_metrics: dict[str, float] | None,
    max_regression: float,
    force: bool,
) -> dict[str, Any]:
    """The decision, with both scores and the reason, as the metadata's ``promotion``."""
    doc: dict[str, Any] = {
        "promoted": True,
        "forced": False,
        "max_regression": max_regression,
        "new_r2": new["r2"],
        "current_version": current.version if current else None,
        "current_r2": current_metrics["r2"] if current_metrics else None,
        "current_metrics": current_metrics,
    }
    if current is None:
        reason, passed = "first version of this model", True
    elif current.problem is not None:
        reason, passed = current.problem, not current.loads
    else:
        assert current_metrics is not None
        drop = current_metrics["r2"] - new["r2"]
        passed = bool(np.isfinite(new["r2"])) and drop <= max_regression
        verdict = "within" if passed else "beyond"
        reason = (
            f"test R² {new['r2']:.6f} vs {current_metrics['r2']:.6f} of {current.version} "
            f"(drop {drop:.6f}, {verdict} --max-regression {max_regression})"
        )
    doc["forced"] = force and not passed
    doc["promoted"] = passed or force
    doc["reason"] = reason + ("; promoted anyway (--force)" if doc["forced"] else "")
    return doc
