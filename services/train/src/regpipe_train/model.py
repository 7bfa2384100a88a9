"""The published model, in the contract's shape.

Numeric only: ``Pipeline(StandardScaler, SGDRegressor)`` on a float array. With category
features: ``Pipeline(ColumnTransformer([StandardScaler on the numeric columns, OneHotEncoder
of the kept levels on the category columns]), SGDRegressor)`` on an object array (or a pandas
DataFrame) in feature order; an unseen or infrequent level encodes as all zeros. The scaler
holds the manifest's exact statistics; the ``SGDRegressor`` holds the trained weights mapped
back to this design (see :mod:`.fit`), set through public fitted attributes only.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .dataset import Dataset


def fitted_scaler(dataset: Dataset) -> StandardScaler:
    """A ``StandardScaler`` set from the manifest's exact train statistics (no pass over data)."""
    scaler = StandardScaler()
    _set_stats(scaler, dataset)
    # No ``feature_names_in_``: the predict service feeds numpy arrays in the order of the
    # metadata's ``features`` (names would make scikit-learn warn on every such call).
    return scaler


def _set_stats(scaler: StandardScaler, dataset: Dataset) -> None:
    numeric = dataset.layout.numeric
    # The rows the statistics are over; a design of category features only has no statistics.
    count = (
        dataset.train_rows
        if not numeric
        else int(dataset.manifest["features"][numeric[0]]["count"])
    )
    scaler.mean_ = dataset.mean.copy()
    scaler.var_ = dataset.var.copy()
    scaler.scale_ = dataset.scale
    scaler.n_samples_seen_ = np.int64(count)
    scaler.n_features_in_ = len(numeric)


def encoder(dataset: Dataset) -> ColumnTransformer:
    """The fitted ``ColumnTransformer`` of a category design (columns by position)."""
    features, layout = dataset.features, dataset.layout
    numeric = [features.index(f) for f in layout.numeric]
    categories = [features.index(f) for f in layout.categories]
    one_hot = OneHotEncoder(
        categories=[list(levels) for levels in layout.categories.values()],
        handle_unknown="ignore",
        sparse_output=False,
        dtype=np.float64,
    )
    transformer = ColumnTransformer(
        [("number", StandardScaler(), numeric), ("category", one_hot, categories)],
        sparse_threshold=0.0,
    )
    # Fitting on one row fixes nothing the data could change: the levels are given and the
    # scaler's statistics are replaced by the manifest's below.
    row = np.empty((1, len(features)), dtype=object)
    row[0, numeric] = 0.0
    for j, levels in zip(categories, layout.categories.values(), strict=True):
        row[0, j] = levels[0] if levels else ""
    transformer.fit(row)
    _set_stats(transformer.named_transformers_["number"], dataset)
    return transformer


def published_sgd(trained: SGDRegressor, coef: np.ndarray, intercept: float) -> SGDRegressor:
    """An ``SGDRegressor`` with ``trained``'s parameters predicting ``X @ coef + intercept``."""
    out = clone(trained)
    out.coef_ = np.array(coef, dtype=np.float64)
    out.intercept_ = np.array([intercept], dtype=np.float64)
    out.n_features_in_ = len(coef)
    out.t_ = trained.t_
    out.n_iter_ = trained.n_iter_
    return out


def build_pipeline(
    dataset: Dataset, sgd: SGDRegressor, coef: np.ndarray, intercept: float
) -> Pipeline:
    """The published model predicting ``y`` (``intercept`` is for the centered target)."""
    regressor = published_sgd(sgd, coef, intercept + dataset.target_mean)
    if not dataset.layout.categories:
        return Pipeline([("scaler", fitted_scaler(dataset)), ("sgd", regressor)])
    return Pipeline([("encode", encoder(dataset)), ("sgd", regressor)])


def description(dataset: Dataset) -> str:
    """The model's shape, for the metadata's ``params.model``."""
    if not dataset.layout.categories:
        return "Pipeline(StandardScaler, SGDRegressor)"
    return "Pipeline(ColumnTransformer(StandardScaler, OneHotEncoder), SGDRegressor)"
