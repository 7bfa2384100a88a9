"""The served form of a model with category features (bundle metadata ``categories``).

Requests are turned into one float64 *code matrix* in feature order: numeric features as
numbers, each category feature as the index of its level in the kept levels (``categories
[feature]["levels"]``), :data:`UNSEEN` (-1) for an unseen or infrequent level. Everything after
validation (metrics, drift, the predict call) works on that matrix.

:class:`CategoryLinear` evaluates ``Pipeline([ColumnTransformer([StandardScaler,
OneHotEncoder]), SGDRegressor])`` on codes: the numeric part scaled then multiplied as the
numeric-only path does, plus one table lookup per category feature (level -> its one-hot
coefficient, unseen -> 0, the encoder's ``handle_unknown="ignore"``). Any other model shape is
served by decoding the codes back to the ``object`` rows the model takes and calling
``model.predict``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from regpipe_common.bundle import Bundle, category_levels
from regpipe_common.errors import BundleError

UNSEEN = -1
UNSEEN_SENTINEL = "\x00(unseen)"  # decoded for UNSEEN: no kept level, so it encodes as zeros
LINEAR_NAMES = frozenset({"SGDRegressor", "LinearRegression", "Ridge"})


@dataclass(frozen=True)
class CategoryLinear:
    """``model.predict`` on a code matrix: scaled numbers @ coef + level weights + intercept."""

    numeric: np.ndarray  # column indices of the numeric features, in the encoder's order
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    tables: tuple[tuple[int, np.ndarray], ...]  # (column, weights per code; last entry 0)
    intercept: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = X[:, self.numeric] - self.mean
        Z /= self.scale
        y = Z @ self.coef
        for column, weights in self.tables:
            y += weights[X[:, column].astype(np.intp)]  # UNSEEN (-1) picks the trailing 0
        y += self.intercept
        return y


@dataclass(frozen=True)
class CategoryCodec:
    """How one category model's features are coded, and how the codes are predicted."""

    features: tuple[str, ...]
    columns: tuple[int, ...]  # positions of the category features in ``features``
    levels: tuple[tuple[str, ...], ...]  # kept levels per category feature (code = index)
    lookups: tuple[dict[str, int], ...]  # level -> code, per category feature
    missing_level: tuple[bool, ...]  # ``missing: level``: null is MISSING_LEVEL
    infrequent_share: tuple[float, ...]  # training share of rows outside the kept levels
    fast: CategoryLinear | None = None

    @cached_property
    def numeric_columns(self) -> tuple[int, ...]:
        """Positions of the numeric features in ``features``."""
        return tuple(j for j in range(len(self.features)) if j not in self.columns)

    @property
    def category_features(self) -> tuple[str, ...]:
        return tuple(self.features[j] for j in self.columns)

    def is_category(self, j: int) -> bool:
        return j in self.columns

    def encode_objects(self, rows: np.ndarray) -> np.ndarray:
        """The code matrix of an ``object`` array in feature order (e.g. the probe rows)."""
        X = np.empty(rows.shape, dtype=np.float64)
        for j in range(rows.shape[1]):
            if j not in self.columns:
                X[:, j] = rows[:, j].astype(np.float64)
        for k, j in enumerate(self.columns):
            lookup = self.lookups[k]
            X[:, j] = [lookup.get(v, UNSEEN) for v in rows[:, j]]
        return X

    def decode(self, X: np.ndarray) -> np.ndarray:
        """The ``object`` rows the model takes (numbers as float, levels as str)."""
        rows = X.astype(object)
        for k, j in enumerate(self.columns):
            table = np.array([*self.levels[k], UNSEEN_SENTINEL], dtype=object)
            rows[:, j] = table[X[:, j].astype(np.intp)]
        return rows

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        if self.fast is not None:
            return self.fast.predict(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "X does not have feature names"
            return np.asarray(model.predict(self.decode(X)), dtype=np.float64).reshape(-1)

    def unchecked(self) -> CategoryCodec:
        """The same coding, predicted by the model itself (the reference for the probe)."""
        return replace(self, fast=None)


def category_codec(bundle: Bundle) -> CategoryCodec | None:
    """The codec of a bundle with ``categories`` in its metadata; None for a numeric-only one.

    Malformed ``categories`` metadata is a :class:`BundleError` (the bundle is refused).
    """
    try:
        levels = category_levels(bundle.metadata)
        if not levels:
            return None
        features = tuple(bundle.features)
        unknown = sorted(set(levels) - set(features))
        if unknown:
            raise BundleError(f"{bundle.url}: metadata categories name no feature: {unknown}")
        meta = bundle.metadata["categories"]
        names = [f for f in features if f in levels]
        codec = CategoryCodec(
            features=features,
            columns=tuple(features.index(f) for f in names),
            levels=tuple(tuple(str(v) for v in levels[f]) for f in names),
            lookups=tuple({str(v): i for i, v in enumerate(levels[f])} for f in names),
            missing_level=tuple(meta[f].get("missing") == "level" for f in names),
            infrequent_share=tuple(float(meta[f].get("infrequent_share", 0.0)) for f in names),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        message = f"{bundle.url}: refused: malformed metadata categories ({exc!r})"
        raise BundleError(message) from None
    return replace(codec, fast=category_linear(bundle.model, codec))


def category_linear(model: Any, codec: CategoryCodec) -> CategoryLinear | None:
    """The lookup form of ``Pipeline([ColumnTransformer, linear model])``, else None."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2:
        return None
    encode, reg = steps[0][1], steps[1][1]
    if type(encode).__name__ != "ColumnTransformer" or type(reg).__name__ not in LINEAR_NAMES:
        return None
    coef = np.asarray(reg.coef_, dtype=np.float64)
    intercept = np.asarray(reg.intercept_, dtype=np.float64).reshape(-1)
    if coef.ndim != 1 or intercept.size != 1:
        return None
    parts = _parts(encode, coef, codec)
    if parts is None:
        return None
    numeric, mean, scale, weights, tables = parts
    return CategoryLinear(
        numeric=np.array(numeric, dtype=np.intp),
        mean=np.array(mean, dtype=np.float64),
        scale=np.array(scale, dtype=np.float64),
        coef=np.array(weights, dtype=np.float64),
        tables=tuple(tables),
        intercept=float(intercept[0]),
    )


def _parts(encode: Any, coef: np.ndarray, codec: CategoryCodec) -> tuple | None:
    """Walk the fitted transformers in output-column order; None for any shape not known here."""
    numeric: list[int] = []
    mean: list[float] = []
    scale: list[float] = []
    weights: list[float] = []
    tables: list[tuple[int, np.ndarray]] = []
    offset = 0
    for _, trans, cols in encode.transformers_:
        if isinstance(trans, str):
            if trans == "drop":
                continue
            return None  # passthrough
        if not isinstance(cols, list) or not all(isinstance(c, int | np.integer) for c in cols):
            return None  # the contract's integer column indices only
        cols = [int(c) for c in cols]
        kind = type(trans).__name__
        if kind == "StandardScaler" and not any(codec.is_category(c) for c in cols):
            n = len(cols)
            m = trans.mean_ if trans.with_mean else np.zeros(n)
            s = trans.scale_ if trans.with_std else np.ones(n)
            numeric += cols
            mean += list(m)
            scale += list(s)
            weights += list(coef[offset : offset + n])
            offset += n
        elif kind == "OneHotEncoder" and _plain_one_hot(trans):
            for col, cats in zip(cols, trans.categories_, strict=True):
                if not codec.is_category(col):
                    return None
                k = codec.columns.index(col)
                if [str(c) for c in cats] != list(codec.levels[k]):
                    return None  # the encoder's columns must be the metadata's kept levels
                table = np.append(coef[offset : offset + len(cats)], 0.0)
                tables.append((col, table))
                offset += len(cats)
        else:
            return None
    covered = sorted(numeric + [c for c, _ in tables])
    if offset != coef.size or covered != list(range(len(codec.features))):
        return None
    return numeric, mean, scale, weights, tables


def _plain_one_hot(encoder: Any) -> bool:
    """One column per kept level, unknown -> all zeros: nothing dropped, no infrequent column."""
    return (
        encoder.handle_unknown == "ignore"
        and getattr(encoder, "drop_idx_", None) is None
        and not getattr(encoder, "_infrequent_enabled", False)
    )
