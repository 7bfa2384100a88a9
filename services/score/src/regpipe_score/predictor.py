"""Predictions from a verified model: the linear form for ``Pipeline(StandardScaler,
SGDRegressor)`` (``(X - mean) / scale @ coef + intercept`` in numpy, what the pipeline itself
computes without its per-call checks), ``model.predict`` for anything else."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Predictor:
    """Small and picklable: sent to every Dask task."""

    linear: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None  # mean, scale, coef, b
    model: Any = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``x`` (features in the metadata's order); ``x`` may be
        overwritten."""
        if self.linear is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "X does not have feature names"
                return np.asarray(self.model.predict(x), dtype=np.float64)
        mean, scale, coef, intercept = self.linear
        x -= mean
        x /= scale
        return x @ coef + intercept


def predictor_for(model: Any) -> Predictor:
    """The linear form when ``model`` is exactly ``Pipeline(StandardScaler, SGDRegressor)``."""
    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else []
    if (
        len(steps) == 2
        and type(steps[0]) is StandardScaler
        and type(steps[1]) is SGDRegressor
        and steps[0].with_mean
        and steps[0].with_std
    ):
        scaler, sgd = steps
        linear = (
            np.asarray(scaler.mean_, dtype=np.float64),
            np.asarray(scaler.scale_, dtype=np.float64),
            np.asarray(sgd.coef_, dtype=np.float64),
            float(np.ravel(sgd.intercept_)[0]),
        )
        return Predictor(linear=linear)
    return Predictor(linear=None, model=model)
