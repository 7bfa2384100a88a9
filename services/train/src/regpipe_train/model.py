"""The published model: ``Pipeline(StandardScaler, SGDRegressor)`` with the manifest's stats."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .dataset import Dataset


def fitted_scaler(dataset: Dataset) -> StandardScaler:
    """A ``StandardScaler`` set from the manifest's exact train statistics (no pass over data)."""
    scaler = StandardScaler()
    count = int(dataset.manifest["features"][dataset.features[0]]["count"])
    scaler.mean_ = dataset.mean.copy()
    scaler.var_ = dataset.var.copy()
    scaler.scale_ = dataset.scale
    scaler.n_samples_seen_ = np.int64(count)
    scaler.n_features_in_ = len(dataset.features)
    # No ``feature_names_in_``: the predict service feeds numpy arrays in the order of the
    # metadata's ``features`` (names would make scikit-learn warn on every such call).
    return scaler


def uncentered(sgd: SGDRegressor, target_mean: float) -> SGDRegressor:
    """A copy of ``sgd`` (fitted on ``y - target_mean``) that predicts ``y`` itself."""
    out = copy.deepcopy(sgd)
    # New arrays, not in-place adds: ``intercept_`` may be the same array as one of these.
    for name in ("intercept_", "_standard_intercept", "_average_intercept"):
        value = getattr(out, name, None)
        if value is not None:
            setattr(out, name, np.asarray(value) + target_mean)
    return out


def build_pipeline(dataset: Dataset, sgd: SGDRegressor) -> Pipeline:
    """The published model, from an SGD fitted on standardized features and centered target."""
    scaler = fitted_scaler(dataset)
    return Pipeline([("scaler", scaler), ("sgd", uncentered(sgd, dataset.target_mean))])
