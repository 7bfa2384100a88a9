"""Category features served: request values to the code matrix, OIP BYTES tensors, the OpenAPI
document, unseen-level counting and the unseen-level drift share.

A model whose bundle metadata has ``categories`` takes, per category feature, a string: one of
the kept levels, or any other string (unseen or infrequent: encoded as all zeros, so its effect
is the intercept's; counted in ``regpipe_unknown_category_total{feature}``). With ``missing:
level`` a null is :data:`regpipe_common.spec.MISSING_LEVEL`. A number where a level is expected,
or a string for a numeric feature, is a 422 naming the field. Values become one float64 code
matrix (:mod:`.category_model`), checked column by column with no per-record schema run.
"""

from __future__ import annotations

import struct
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from regpipe_common.spec import MISSING_LEVEL

from . import errors
from .category_model import UNSEEN, CategoryCodec
from .errors import ApiError
from .inputs import check_rows, within_limits
from .model_store import LoadedModel
from .rolling import RollingSums

UNKNOWN = Counter(
    "regpipe_unknown_category",
    "Category values outside the model's kept levels (unseen or infrequent), per feature.",
    ["feature"],
)
UNKNOWN_SHARE = Gauge(
    "regpipe_unknown_category_share",
    "Share of the last DRIFT_WINDOW_ROWS input rows whose level is not kept, per feature.",
    ["feature"],
    multiprocess_mode="livemostrecent",
)
TRAINING_SHARE = Gauge(
    "regpipe_unknown_category_training_share",
    "Share of training rows whose level is not kept (infrequent_share), per feature.",
    ["feature"],
    multiprocess_mode="livemostrecent",
)
MSG_LEVEL = "must be a string (a level of this category feature)"
MSG_ROW_OBJECT = "must be an object mapping each feature to its value"
_LENGTH = struct.Struct("<I")


def _err(field: str, message: str, reason: str) -> ApiError:
    return ApiError(reason, f"{field}: {message}", field)


# --- POST /predict ----------------------------------------------------------------------------


def predict_codes(doc: Any, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The code matrix of a ``POST /predict`` body for a category model, or a 422 naming why."""
    codec = model.categories
    assert codec is not None
    key, rows = _payload(doc)
    check_rows(len(rows), max_rows, key)
    if key == "instances":
        columns = _record_columns(rows, codec.features)
        names = [f"instances[{{}}].{f}" for f in codec.features]
    else:
        columns = _row_columns(rows, codec.features)
        names = [f"inputs[{{}}][{j}]" for j in range(len(codec.features))]
    return code_matrix(codec, columns, names)


def _payload(doc: Any) -> tuple[str, list[Any]]:
    if not isinstance(doc, dict):
        raise ApiError("wrong_type", "the body must be a JSON object", "body")
    for key in doc:
        if key not in ("instances", "inputs"):
            raise _err(key, errors.MSG_UNKNOWN_FIELD, "unknown_field")
    if len(doc) != 1:
        raise ApiError("invalid", errors.MSG_ONE_OF, "body")
    key, rows = next(iter(doc.items()))
    if not isinstance(rows, list):
        raise _err(key, errors.MSG_LIST, "wrong_type")
    return key, rows


def _record_columns(records: list[Any], features: tuple[str, ...]) -> list[tuple[Any, ...]]:
    n = len(features)
    try:  # C-level passes: every record a dict of n keys, then one column per feature
        if set(map(type, records)) <= {dict} and set(map(len, records)) <= {n}:
            return [list(map(itemgetter(f), records)) for f in features]
    except KeyError:
        pass
    for i, record in enumerate(records):  # find the first bad record, name the field
        if type(record) is not dict:
            raise _err(f"instances[{i}]", MSG_ROW_OBJECT, "wrong_type")
        for name in record:
            if name not in features:
                raise _err(f"instances[{i}].{name}", errors.MSG_UNKNOWN, "unknown_feature")
        for name in features:
            if name not in record:
                raise _err(f"instances[{i}].{name}", errors.MSG_MISSING, "missing_feature")
    raise ApiError("invalid", "instances: not valid records", "instances")  # not reached


def _row_columns(rows: list[Any], features: tuple[str, ...]) -> list[tuple[Any, ...]]:
    n = len(features)
    if set(map(type, rows)) <= {list} and set(map(len, rows)) <= {n}:
        return list(zip(*rows, strict=True))
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise _err(f"inputs[{i}]", errors.MSG_LIST, "wrong_type")
        if len(row) != n:
            message = f"must hold {n} values, one per feature in order: {', '.join(features)}"
            raise _err(f"inputs[{i}]", message, "row_length")
    raise ApiError("invalid", "inputs: not valid rows", "inputs")  # not reached


def _numbers(values: Any, name: str) -> np.ndarray:
    """A numeric column: finite numbers within ±MAX_ABS, no booleans, no strings, no nulls."""
    if isinstance(values, np.ndarray):  # a binary OIP tensor: already numbers
        column = values.astype(np.float64, copy=False)
        if within_limits(column):
            return column
    else:
        ok = set(map(type, values)) <= {int, float}  # no str ("1.5" would convert), bool, None
        try:
            column = np.array(values, dtype=np.float64) if ok else None
            ok = ok and within_limits(column)
        except (ValueError, TypeError, OverflowError):
            ok = False
        if ok:
            return column
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise _err(name.format(i), errors.MSG_TYPE, "wrong_type")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range (JSON allows any digits)
            raise _err(name.format(i), errors.MSG_RANGE, "out_of_range") from None
        if not np.isfinite(number):
            raise _err(name.format(i), errors.MSG_FINITE, "not_finite")
        if abs(number) > errors.MAX_ABS:
            raise _err(name.format(i), errors.MSG_RANGE, "out_of_range")
    raise _err(name.format(0), errors.MSG_TYPE, "wrong_type")  # not reached


def _codes(values: Any, lookup: dict[str, int], missing_level: bool, name: str) -> np.ndarray:
    """A category column: each string's code (UNSEEN outside the kept levels)."""
    kinds = set(map(type, values))
    if missing_level and type(None) in kinds:
        values = [MISSING_LEVEL if v is None else v for v in values]
        kinds.discard(type(None))
        kinds.add(str)
    if kinds <= {str}:
        codes = map(lookup.get, values, repeat(UNSEEN))
        return np.fromiter(codes, dtype=np.float64, count=len(values))
    for i, value in enumerate(values):
        if type(value) is not str:
            raise _err(name.format(i), MSG_LEVEL, "wrong_type")
    raise _err(name.format(0), MSG_LEVEL, "wrong_type")  # not reached


def code_matrix(codec: CategoryCodec, columns: list[Any], names: list[str]) -> np.ndarray:
    """Columns of values (one sequence per feature) to the code matrix.

    ``names[j].format(row)`` names the field of row ``row`` of feature ``j`` in an error.
    """
    n = len(columns[0]) if columns else 0
    X = np.empty((n, len(codec.features)), dtype=np.float64)
    numeric = list(codec.numeric_columns)
    block = _number_block([columns[j] for j in numeric]) if numeric else None
    if block is not None:  # every number valid: one conversion, one range check
        X[:, numeric] = block.T
    else:
        for j in numeric:  # find and name the bad value
            X[:, j] = _numbers(columns[j], names[j])
    for k, j in enumerate(codec.columns):
        X[:, j] = _codes(columns[j], codec.lookups[k], codec.missing_level[k], names[j])
    return X


def _number_block(columns: list[Any]) -> np.ndarray | None:
    """The numeric columns as one ``(k, n)`` array if every value is valid, else None."""
    if not set(map(type, chain.from_iterable(columns))) <= {int, float}:
        return None  # a str, bool, None (or a binary tensor's numpy values: checked apart)
    try:
        block = np.array(columns, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return block if within_limits(block) else None


# --- Open Inference Protocol V2: one named tensor per feature ---------------------------------


def infer_codes(
    inputs: list[Any], model: LoadedModel, max_rows: int, numeric: Any, buffer: Any
) -> np.ndarray:
    """The code matrix of an infer request's inputs: one tensor per feature, named after it.

    ``numeric(tensor, i)`` reads a numeric tensor as the numeric-only path does (any number
    datatype, JSON or binary) into an ``(n, 1)`` matrix; category tensors are ``BYTES``.
    """
    codec = model.categories
    assert codec is not None
    by_name: dict[str, Any] = {}
    for i, tensor in enumerate(inputs):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if name not in codec.features:
            message = (
                f"{name!r} is not a feature; this model has category features, so it takes one "
                f"input per feature, named after it: {', '.join(codec.features)}"
            )
            raise _err(f"inputs[{i}].name", message, "unknown_feature")
        j = codec.features.index(name)
        is_category = j in codec.columns
        is_bytes = tensor.get("datatype") == "BYTES"
        if is_category != is_bytes:
            wanted = "BYTES (a category feature)" if is_category else "a number type, not BYTES"
            raise _err(f"inputs[{i}].datatype", f"must be {wanted}", "wrong_type")
        if is_category:
            by_name[name] = (i, _bytes_tensor(tensor, i, max_rows, buffer))
        else:
            by_name[name] = (i, numeric(tensor, i).reshape(-1))
    missing = [f for f in codec.features if f not in by_name]
    if missing:
        raise _err("inputs", f"no input for feature(s) {', '.join(missing)}", "missing_feature")
    if len({len(values) for _, values in by_name.values()}) != 1:
        raise _err("inputs", "all inputs must have the same number of rows", "row_length")
    columns = [by_name[f][1] for f in codec.features]
    names = [f"inputs[{by_name[f][0]}].data[{{}}]" for f in codec.features]
    return code_matrix(codec, columns, names)


def _bytes_tensor(tensor: dict[str, Any], i: int, max_rows: int, buffer: Any) -> list[Any]:
    """The strings of a ``BYTES`` tensor of shape ``[n]`` or ``[n, 1]`` (JSON or binary)."""
    where = f"inputs[{i}]"
    unknown = set(tensor) - {"name", "shape", "datatype", "data", "parameters"}
    if unknown:
        raise _err(f"{where}.{sorted(unknown)[0]}", "unknown field", "unknown_field")
    shape = tensor.get("shape")
    if not (
        isinstance(shape, list)
        and len(shape) in (1, 2)
        and all(type(d) is int and d >= 0 for d in shape)
        and shape[1:] in ([], [1])
    ):
        raise _err(f"{where}.shape", "must be [n] or [n, 1] with n >= 0", "wrong_shape")
    n = shape[0]
    check_rows(n, max_rows, f"{where}.shape[0]")
    params = tensor.get("parameters") or {}
    if not isinstance(params, dict):
        raise _err(f"{where}.parameters", "must be an object", "wrong_type")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in tensor:
            raise _err(
                f"{where}.data", "give data or parameters.binary_data_size, not both", "invalid"
            )
        field = f"{where}.parameters.binary_data_size"
        if type(size) is not int or size < 0:
            raise _err(field, "must be a number of bytes", "wrong_type")
        values = _binary_strings(buffer.take_raw(size, field), n, field)
    elif "data" in tensor:
        values = _json_strings(tensor["data"], f"{where}.data")
    else:
        raise _err(f"{where}.data", "is required", "missing_field")
    if len(values) != n:
        raise _err(
            f"{where}.data", f"holds {len(values)} values; shape {shape} needs {n}", "invalid"
        )
    return values


def _json_strings(data: Any, field: str) -> list[Any]:
    """BYTES data in JSON: strings, flat or as ``[[s], [s], ...]``."""
    if not isinstance(data, list):
        raise _err(field, "must be a list of strings", "wrong_type")
    if data and all(type(v) is list and len(v) == 1 for v in data):
        return [v[0] for v in data]
    return data


def _binary_strings(raw: memoryview, n: int, field: str) -> list[str]:
    """Binary BYTES elements: each a 4-byte little-endian length, then that many UTF-8 bytes."""
    values: list[str] = []
    offset, end = 0, len(raw)
    unpack = _LENGTH.unpack_from
    try:
        while offset < end:
            (length,) = unpack(raw, offset)
            offset += 4
            if offset + length > end:
                raise ValueError("an element runs past the tensor's bytes")
            values.append(str(raw[offset : offset + length], "utf-8"))
            offset += length
    except (struct.error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        message = f"element {len(values)} is not a 4-byte length and UTF-8 bytes ({exc})"
        raise _err(field, message, "malformed_body") from None
    return values


def input_metadata(model: LoadedModel) -> list[dict[str, Any]] | None:
    """The OIP model-metadata ``inputs`` of a category model (None for a numeric-only one)."""
    codec = model.categories
    if codec is None:
        return None
    return [
        {"name": f, "datatype": "BYTES" if j in codec.columns else "FP64", "shape": [-1]}
        for j, f in enumerate(codec.features)
    ]


# --- the OpenAPI document ---------------------------------------------------------------------


def example_values(model: LoadedModel, numeric_example: list[float]) -> list[Any]:
    """An example row: the numeric example's values, the first kept level for each category."""
    codec = model.categories
    assert codec is not None
    row: list[Any] = list(numeric_example)
    for k, j in enumerate(codec.columns):
        row[j] = (codec.levels[k] or ("",))[0]
    return row


def level_schema(codec: CategoryCodec, k: int, example: str) -> dict[str, Any]:
    levels = codec.levels[k]
    shown = ", ".join(levels[:50]) + (f", ... ({len(levels)} in all)" if len(levels) > 50 else "")
    text = (
        f"category; known levels: {shown}. Any other string is accepted as an unseen level "
        "(encoded as all zeros)"
    )
    schema: dict[str, Any] = {"type": "string", "description": text, "example": example}
    if codec.missing_level[k]:
        schema["nullable"] = True
        schema["description"] += f"; null is the level {MISSING_LEVEL!r}"
    return schema


def document(doc: dict[str, Any], model: LoadedModel, numeric_example: list[float]) -> None:
    """Type category features as strings, with their levels, in the OpenAPI dict."""
    codec = model.categories
    if codec is None:
        return
    example = example_values(model, numeric_example)
    components = doc["components"]["schemas"]
    instance = components["Instance"]["properties"]
    for k, j in enumerate(codec.columns):
        instance[codec.features[j]] = level_schema(codec, k, example[j])
    row = components["Row"]
    number = row.pop("items")
    row["items"] = {"anyOf": [number, {"type": "string", "nullable": True}]}
    row["example"] = example
    row["description"] += ". Category features (" + ", ".join(codec.category_features) + ") "
    row["description"] += "take strings: see the Instance schema for their levels"
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = {
        "records": {"value": {"instances": [dict(zip(codec.features, example, strict=True))]}},
        "rows": {"value": {"inputs": [example]}},
    }
    tensors = [
        {"name": m["name"], "shape": [1], "datatype": m["datatype"], "data": [v]}
        for m, v in zip(input_metadata(model) or [], example, strict=True)
    ]
    datatype = components["RequestInput"]["properties"]["datatype"]
    if "BYTES" not in datatype.get("enum", ["BYTES"]):
        datatype["enum"] = [*datatype["enum"], "BYTES"]
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        infer = doc["paths"][path]["post"]["requestBody"]["content"]
        infer["application/json"]["example"] = {"inputs": tensors}


# --- metrics: unseen levels counted, and their recent share against the training share -------


class CategoryDrift:
    """Per category feature: unseen-level counts, and their share over the last ``window`` rows."""

    def __init__(self, codec: CategoryCodec, window: int, interval: float) -> None:
        self.columns = list(codec.columns)
        self.window = window
        self.recent = RollingSums(len(self.columns), window, interval)
        names = self.training = codec.category_features
        self.unknown = [UNKNOWN.labels(feature=f) for f in names]
        self.shares = [UNKNOWN_SHARE.labels(feature=f) for f in names]
        for f, share in zip(names, codec.infrequent_share, strict=True):
            TRAINING_SHARE.labels(feature=f).set(share)

    def update(self, X: np.ndarray) -> None:
        """Count the unseen levels of these validated rows (codes) and refresh the share."""
        unseen = (X[:, self.columns] == UNSEEN).sum(axis=0)
        for counter, count in zip(self.unknown, unseen.tolist(), strict=True):
            if count:
                counter.inc(count)
        if len(X) > self.window:  # older rows of a large batch would leave the window at once
            unseen = (X[-self.window :, self.columns] == UNSEEN).sum(axis=0)
        shares = self.recent.add(min(len(X), self.window), unseen)
        if shares is None:
            return
        for gauge, value in zip(self.shares, shares, strict=True):
            gauge.set(float(value))

    def retire(self) -> None:
        """The model is swapped out: its share gauges become NaN, not their last values."""
        for gauge in self.shares:
            gauge.set(float("nan"))
        for feature in self.training:
            TRAINING_SHARE.labels(feature=feature).set(float("nan"))


def category_drift(model: LoadedModel, window: int, interval: float) -> CategoryDrift | None:
    codec = model.categories
    return None if codec is None else CategoryDrift(codec, window, interval)
