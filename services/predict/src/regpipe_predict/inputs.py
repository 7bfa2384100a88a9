"""The hot path: request bytes to a validated float64 matrix, with no per-record schema run.

The body is parsed once (orjson), rows are gathered with C-level ``itemgetter`` calls and
turned into one numpy array, then checked with array operations (numeric dtype, shape,
finite). Only when a check fails does :func:`regpipe_predict.schemas.explain` run the
marshmallow schema to name the field at fault.
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from . import schemas
from .errors import ApiError
from .model_store import LoadedModel

_NUMERIC_KINDS = "fiu"


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; ``NaN``/``Infinity``/``1e400`` parse so the field can be named later."""
    if not body:
        raise ApiError(400, "the request body is empty; send a JSON object", "body", "malformed")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)  # accepts NaN and Infinity, which the checks then refuse
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}", "body", "malformed_json") from None


def has_boolean(body: bytes) -> bool:
    """True if a JSON boolean may be in the body (numpy would quietly read it as 0/1)."""
    return b"true" in body or b"false" in body


def check_rows(n: int, max_rows: int, field: str) -> None:
    if n == 0:
        raise ApiError(422, f"{field}: {schemas.MSG_EMPTY}", field, "empty")
    if n > max_rows:
        raise ApiError(
            413,
            f"{field}: {n} rows exceed the limit of {max_rows} rows per request (MAX_ROWS)",
            field,
            "too_many_rows",
        )


def predict_matrix(body: bytes, doc: Any, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The ``(n, n_features)`` matrix of a ``POST /predict`` body, or an ApiError."""
    key, rows = _payload(doc)
    if rows is not None:
        check_rows(len(rows), max_rows, key)
        X = _records(rows, model.features) if key == "instances" else _rows(rows)
        if X is not None and _valid(X, len(model.features)) and not has_boolean(body):
            return X
    error = _explain(doc, model)
    if error is not None:
        raise error
    # The schema accepted what the fast checks doubted: a valid body that merely contains
    # "true" somewhere (a feature named "is_true"). Convert it the plain way.
    assert rows is not None
    values = [_getter(model.features)(r) for r in rows] if key == "instances" else rows
    return np.array(values, dtype=np.float64).reshape(len(rows), len(model.features))


def _payload(doc: Any) -> tuple[str, list[Any] | None]:
    """``("instances" | "inputs", the list)`` for a body of that one key, else ``("", None)``."""
    if isinstance(doc, dict) and len(doc) == 1:
        key, value = next(iter(doc.items()))
        if key in ("instances", "inputs") and isinstance(value, list):
            return key, value
    return "", None


def _getter(features: list[str]) -> Any:
    """``record -> tuple of its values in feature order`` (C-level ``itemgetter``)."""
    getter = itemgetter(*features)
    return getter if len(features) > 1 else lambda r: (getter(r),)


def _records(records: list[Any], features: list[str]) -> np.ndarray | None:
    n_features = len(features)
    if not all(type(r) is dict and len(r) == n_features for r in records):
        return None
    getter = _getter(features)
    try:
        return np.array([getter(r) for r in records])
    except (KeyError, ValueError, TypeError, OverflowError):
        return None


def _rows(rows: list[Any]) -> np.ndarray | None:
    try:
        return np.array(rows)
    except (ValueError, TypeError, OverflowError):
        return None


def _valid(X: np.ndarray, n_features: int) -> bool:
    """Numeric, 2-D, one column per feature, every value finite and within ±MAX_ABS."""
    return (
        X.dtype.kind in _NUMERIC_KINDS
        and X.ndim == 2
        and X.shape[1] == n_features
        and bool((np.abs(X.astype(np.float64, copy=False)) <= schemas.MAX_ABS).all())
    )


def _explain(doc: Any, model: LoadedModel) -> ApiError | None:
    """The problem with ``doc``, found by the marshmallow schema (None if it has none)."""
    if not isinstance(doc, dict):
        return ApiError(422, "the body must be a JSON object", "body", "wrong_type")
    features = tuple(model.features)
    example = tuple(schemas.example_row(model.features, model.metadata.get("feature_stats")))
    return schemas.explain(doc, features, example)
