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
    """The model ``LATEST`` names, as a linear model on the dataset's encoded design."""

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
        return Current(
            version,
            None,
            f"the current LATEST {version} is not a linear model on this dataset's encoding "
            "(another model shape, or a category level the new model does not keep)",
        )
    return Current(version, linear)


def in_scaled_space(model: Any, dataset: Dataset) -> tuple[np.ndarray, float] | None:
    """``(coef, intercept)`` on the dataset's encoded design (:mod:`.design`) of a published
    pipeline with its own scaler (and one-hot levels), or None when it is not such a model or
    knows a level the new design does not keep (it could not be written on this design)."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2:
        return None
    first, reg = steps[0][1], steps[1][1]
    coef = np.asarray(getattr(reg, "coef_", None), dtype=np.float64)
    intercept = float(np.asarray(reg.intercept_).reshape(-1)[0])
    layout = dataset.layout
    p = len(layout.numeric)
    if not layout.categories:
        if not hasattr(first, "scale_") or coef.shape != (p,):
            return None
        return _rescaled(first, coef, intercept, dataset)
    named = getattr(first, "named_transformers_", None)
    if named is None or "number" not in named or "category" not in named:
        return None
    old_levels = [list(c) for c in getattr(named["category"], "categories_", [])]
    if len(old_levels) != len(layout.categories) or coef.shape != (p + sum(map(len, old_levels)),):
        return None
    numeric_coef, intercept = _rescaled(named["number"], coef[:p], intercept, dataset)
    out = np.zeros(layout.width)
    out[:p] = numeric_coef
    start = p
    for old, (offset, new) in zip(
        old_levels, zip(layout.offsets, layout.categories.values(), strict=True), strict=True
    ):
        column = {level: offset + k for k, level in enumerate(new)}
        if any(level not in column for level in old):
            return None
        out[[column[level] for level in old]] = coef[start : start + len(old)]
        start += len(old)
    return out, intercept


def _rescaled(
    scaler: Any, coef: np.ndarray, intercept: float, dataset: Dataset
) -> tuple[np.ndarray, float]:
    """A linear model on ``scaler``'s standardized numbers, on the dataset's instead."""
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
