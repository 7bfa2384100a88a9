"""Open Inference Protocol V2 (KServe / MLServer "v2" REST): request tensors to a matrix, and the
response and metadata documents.

Accepted requests: one input of shape ``[n, n_features]`` (data flat in row-major order, or
nested), or one input per feature, named after it, of shape ``[n]`` or ``[n, 1]``. The output
is one FP64 tensor named ``predict`` of shape ``[n]``.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from .errors import ApiError
from .inputs import check_rows
from .model_store import LoadedModel
from .schemas import DATATYPES, MAX_ABS, MSG_FINITE, MSG_RANGE

OUTPUT_NAME = "predict"


def _err(message: str, field: str, reason: str = "invalid") -> ApiError:
    return ApiError(422, f"{field}: {message}", field, reason)


def infer_matrix(doc: Any, model: LoadedModel, max_rows: int, maybe_bool: bool) -> np.ndarray:
    """The ``(n, n_features)`` matrix of an infer request, or an ApiError naming the field."""
    if not isinstance(doc, dict):
        raise ApiError(422, "the body must be a JSON object", "body", "wrong_type")
    unknown = set(doc) - {"id", "parameters", "inputs", "outputs"}
    if unknown:
        name = sorted(unknown)[0]
        raise _err("unknown field", name, "unknown_field")
    if "id" in doc and not isinstance(doc["id"], str):
        raise _err("must be a string", "id", "wrong_type")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _err("must be a non-empty list of tensors", "inputs", "empty")
    n_features = len(model.features)
    if len(inputs) == 1:
        X = _tensor(inputs[0], 0, 2, max_rows, maybe_bool)
        if X.shape[1] != n_features:
            raise _err(
                f"shape[1] is {X.shape[1]}; the model takes {n_features} features: "
                + ", ".join(model.features),
                "inputs[0].shape",
                "row_length",
            )
        return X
    return _columns(inputs, model, max_rows, maybe_bool)


def _columns(inputs: list[Any], model: LoadedModel, max_rows: int, maybe_bool: bool) -> np.ndarray:
    """One input per feature, named after it."""
    by_name: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(inputs):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if name not in model.features:
            raise _err(
                f"{name!r} is not a feature; with several inputs, name each after a feature",
                f"inputs[{i}].name",
                "unknown_feature",
            )
        by_name[name] = _tensor(tensor, i, 1, max_rows, maybe_bool).reshape(-1)
    missing = [f for f in model.features if f not in by_name]
    if missing:
        raise _err(f"no input for feature(s) {', '.join(missing)}", "inputs", "missing_feature")
    lengths = {len(v) for v in by_name.values()}
    if len(lengths) != 1:
        raise _err("all inputs must have the same number of rows", "inputs", "row_length")
    return np.column_stack([by_name[f] for f in model.features])


def _tensor(tensor: Any, i: int, ndim: int, max_rows: int, maybe_bool: bool) -> np.ndarray:
    where = f"inputs[{i}]"
    if not isinstance(tensor, dict):
        raise _err("must be an object with name, shape, datatype and data", where, "wrong_type")
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise _err("is required", f"{where}.{key}", "missing_field")
    unknown = set(tensor) - {"name", "shape", "datatype", "data", "parameters"}
    if unknown:
        raise _err("unknown field", f"{where}.{sorted(unknown)[0]}", "unknown_field")
    if not isinstance(tensor["name"], str):
        raise _err("must be a string", f"{where}.name", "wrong_type")
    if tensor["datatype"] not in DATATYPES:
        raise _err(f"must be one of {', '.join(DATATYPES)}", f"{where}.datatype", "wrong_type")
    shape = _shape(tensor["shape"], f"{where}.shape", ndim)
    check_rows(shape[0], max_rows, f"{where}.shape[0]")
    return _data(tensor["data"], shape, f"{where}.data", maybe_bool)


def _shape(shape: Any, field: str, ndim: int) -> tuple[int, ...]:
    ok = (
        isinstance(shape, list)
        and all(type(d) is int and d >= 0 for d in shape)
        and (len(shape) == ndim or (ndim == 1 and len(shape) == 2 and shape[1:] == [1]))
    )
    if not ok:
        wanted = "[n, n_features]" if ndim == 2 else "[n] or [n, 1]"
        raise _err(f"must be {wanted} with non-negative integers", field, "wrong_shape")
    return tuple(shape)


def _data(data: Any, shape: tuple[int, ...], field: str, maybe_bool: bool) -> np.ndarray:
    if not isinstance(data, list):
        raise _err("must be a list of numbers (flat or nested)", field, "wrong_type")
    try:
        X = np.array(data)
    except (ValueError, TypeError, OverflowError):
        raise _err("nested lists must be regular (all rows of one length)", field) from None
    if X.dtype.kind not in "fiu" or (maybe_bool and _has_bool(data)):
        raise _err("must hold numbers only", field, "wrong_type")
    if X.size != int(np.prod(shape)):
        raise _err(f"holds {X.size} values; shape {list(shape)} needs {np.prod(shape)}", field)
    X = X.astype(np.float64, copy=False).reshape(shape[0], -1)
    bad = ~(np.abs(X) <= MAX_ABS)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        finite = bool(np.isfinite(X[r, c]))
        message = MSG_RANGE if finite else MSG_FINITE
        reason = "out_of_range" if finite else "not_finite"
        raise _err(f"row {r}, column {c}: {message}", field, reason)
    return X


def _has_bool(data: list[Any]) -> bool:
    """numpy turns ``[true, 1.5]`` into floats; refuse booleans explicitly."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        for value in item:
            if type(value) is bool:
                return True
            if type(value) is list:
                stack.append(value)
    return False


def infer_response(doc: dict[str, Any], model: LoadedModel, y: np.ndarray) -> dict[str, Any]:
    return {
        "model_name": model.name,
        "model_version": model.version,
        "id": doc.get("id") or str(uuid.uuid4()),
        "parameters": {},
        "outputs": [{"name": OUTPUT_NAME, "shape": [len(y)], "datatype": "FP64", "data": y}],
    }


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(model.features)]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1]}],
    }
