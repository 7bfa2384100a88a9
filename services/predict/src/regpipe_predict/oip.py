"""Open Inference Protocol V2 (KServe / Triton "v2" REST), binary tensor extension included:
request bytes to a matrix, and predictions to the response bytes.

Accepted requests: one input of shape ``[n, n_features]`` (data flat in row-major order, or
nested), or one input per feature, named after it, of shape ``[n]`` or ``[n, 1]``; numbers of
any of :data:`DATATYPES`. Optional request fields: ``id`` (echoed), ``parameters``
(``binary_data_output``), ``outputs`` (``[{"name": "predict", "parameters": {"binary_data":
bool, "datatype": "FP64" | "FP32"}}]``), and ``model_name``/``model_version``, which some
clients add. The output is one tensor named ``predict`` of shape ``[n]``, ``FP64`` unless
``FP32`` is asked for.

Binary tensor extension: with an ``Inference-Header-Content-Length: N`` request header the body
is N bytes of JSON, then the raw little-endian bytes of each input whose ``parameters`` give
``binary_data_size``, in order; those are read in place (``np.frombuffer``), never through
JSON. A binary output is answered the same way (``Content-Type: application/octet-stream``,
the response's own ``Inference-Header-Content-Length``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import orjson

from . import categories
from .errors import ApiError
from .inputs import check_rows, contains_bool, has_boolean, parse_json, within_limits
from .model_store import LoadedModel
from .schemas import DATATYPES, MAX_ABS, MSG_FINITE, MSG_RANGE, OUTPUT_DATATYPES

OUTPUT_NAME = "predict"
INPUT_NAME = "input-0"
HEADER_LENGTH = "Inference-Header-Content-Length"
HEADER_LENGTH_ENVIRON = "HTTP_INFERENCE_HEADER_CONTENT_LENGTH"
EXTENSIONS = ("binary_tensor_data",)
BINARY_DTYPES = {
    "FP64": "<f8",
    "FP32": "<f4",
    "FP16": "<f2",
    "INT64": "<i8",
    "INT32": "<i4",
    "INT16": "<i2",
    "INT8": "i1",
}
REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs", "model_name", "model_version"})
TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
OUTPUT_KEYS = frozenset({"name", "parameters"})
DATA_CHUNK = 8192  # JSON tensor items (values or rows) converted at a time
JSON_TYPE = [("Content-Type", "application/json")]
BINARY_TYPE = ("Content-Type", "application/octet-stream")


@dataclass(slots=True)
class ParsedInfer:
    """A validated infer request: the matrix and how to answer."""

    X: np.ndarray
    id: str | None
    binary_output: bool
    datatype: str


def _err(message: str, field: str, reason: str = "invalid") -> ApiError:
    return ApiError(reason, f"{field}: {message}", field)


def header_length(value: str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a number (None when absent)."""
    if value is None:
        return None
    if not value.isdigit():
        raise _err("must be a number of bytes", HEADER_LENGTH, "malformed_body")
    return int(value)


def parse_infer(
    body: bytes | memoryview, json_length: int | None, model: LoadedModel, max_rows: int
) -> ParsedInfer:
    """The request in ``body`` (JSON, or JSON then tensor bytes), or an ApiError naming a field."""
    if json_length is None:
        head, buffer = body, _NO_BUFFER
    elif 0 < json_length <= len(body):
        head, buffer = body[:json_length], _Buffer(memoryview(body)[json_length:])
    else:
        message = f"is {json_length}; the body has {len(body)} bytes"
        raise _err(message, HEADER_LENGTH, "malformed_body")
    doc = parse_json(head)
    if not isinstance(doc, dict):
        raise ApiError("wrong_type", "the body must be a JSON object", "body")
    if not REQUEST_KEYS.issuperset(doc):
        raise _err("unknown field", sorted(set(doc) - REQUEST_KEYS)[0], "unknown_field")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _err("must be a string", "id", "wrong_type")
    params = _parameters(doc.get("parameters"), "parameters")
    binary = _flag(params, "binary_data_output", False, "parameters")
    X = _matrix(doc.get("inputs"), model, max_rows, has_boolean(head), buffer)
    buffer.finish()
    binary, datatype = _outputs(doc.get("outputs"), binary)
    return ParsedInfer(X, request_id, binary, datatype)


def _parameters(params: Any, field: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _err("must be an object", field, "wrong_type")
    return params


def _flag(params: dict[str, Any], key: str, default: bool, field: str) -> bool:
    value = params.get(key, default)
    if type(value) is not bool:
        raise _err("must be true or false", f"{field}.{key}", "wrong_type")
    return value


def _matrix(
    inputs: Any, model: LoadedModel, max_rows: int, maybe_bool: bool, buffer: _Buffer
) -> np.ndarray:
    if not isinstance(inputs, list) or not inputs:
        raise _err("must be a non-empty list of tensors", "inputs", "empty")
    if model.categories is not None:  # one tensor per feature, BYTES for categories
        numeric = partial(_tensor, ndim=1, max_rows=max_rows, maybe_bool=maybe_bool, buffer=buffer)
        return categories.infer_codes(inputs, model, max_rows, numeric, buffer)
    n_features = len(model.features)
    if len(inputs) == 1:
        X = _tensor(inputs[0], 0, 2, max_rows, maybe_bool, buffer)
        if X.shape[1] != n_features:
            raise _err(
                f"shape[1] is {X.shape[1]}; the model takes {n_features} features: "
                + ", ".join(model.features),
                "inputs[0].shape",
                "row_length",
            )
        return X
    return _columns(inputs, model, max_rows, maybe_bool, buffer)


def _columns(
    inputs: list[Any], model: LoadedModel, max_rows: int, maybe_bool: bool, buffer: _Buffer
) -> np.ndarray:
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
        by_name[name] = _tensor(tensor, i, 1, max_rows, maybe_bool, buffer).reshape(-1)
    missing = [f for f in model.features if f not in by_name]
    if missing:
        raise _err(f"no input for feature(s) {', '.join(missing)}", "inputs", "missing_feature")
    lengths = {len(v) for v in by_name.values()}
    if len(lengths) != 1:
        raise _err("all inputs must have the same number of rows", "inputs", "row_length")
    return np.column_stack([by_name[f] for f in model.features])


def _tensor(
    tensor: Any, i: int, ndim: int, max_rows: int, maybe_bool: bool, buffer: _Buffer
) -> np.ndarray:
    where = f"inputs[{i}]"
    if not isinstance(tensor, dict):
        raise _err("must be an object with name, shape, datatype and data", where, "wrong_type")
    if not TENSOR_KEYS.issuperset(tensor):
        unknown = sorted(set(tensor) - TENSOR_KEYS)[0]
        raise _err("unknown field", f"{where}.{unknown}", "unknown_field")
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise _err("is required", f"{where}.{key}", "missing_field")
    if not isinstance(tensor["name"], str):
        raise _err("must be a string", f"{where}.name", "wrong_type")
    datatype = tensor["datatype"]
    if datatype not in DATATYPES:
        message = f"must be one of {', '.join(DATATYPES)} (this model takes numbers)"
        raise _err(message, f"{where}.datatype", "wrong_type")
    shape = _shape(tensor["shape"], f"{where}.shape", ndim)
    check_rows(shape[0], max_rows, f"{where}.shape[0]")
    size = _parameters(tensor.get("parameters"), f"{where}.parameters").get("binary_data_size")
    if size is not None:
        if "data" in tensor:
            raise _err("give data or parameters.binary_data_size, not both", f"{where}.data")
        values = buffer.take(size, datatype, shape, f"{where}.parameters.binary_data_size")
    elif "data" in tensor:
        values = _data(tensor["data"], f"{where}.data", maybe_bool)
    else:
        raise _err("is required", f"{where}.data", "missing_field")
    return _checked(values, shape, f"{where}.data")


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


def _data(data: Any, field: str, maybe_bool: bool) -> np.ndarray:
    """The numbers of a JSON tensor, converted ``DATA_CHUNK`` items at a time: one string at
    the end must not make numpy turn the whole tensor into strings first."""
    if not isinstance(data, list):
        raise _err("must be a list of numbers (flat or nested)", field, "wrong_type")
    parts = []
    for start in range(0, len(data), DATA_CHUNK):
        try:
            part = np.array(data[start : start + DATA_CHUNK])
        except (ValueError, TypeError, OverflowError):
            part = None
        if part is None:
            raise _err("nested lists must be regular (all rows of one length)", field)
        if part.dtype.kind not in "fiu":
            raise _err("must hold numbers only", field, "wrong_type")
        parts.append(part)
    if maybe_bool and contains_bool(data):
        raise _err("must hold numbers only", field, "wrong_type")
    if len(parts) == 1:
        return parts[0]
    try:
        return np.concatenate(parts) if parts else np.array(data, dtype=np.float64)
    except ValueError:
        raise _err("nested lists must be regular (all rows of one length)", field) from None


def _checked(values: np.ndarray, shape: tuple[int, ...], field: str) -> np.ndarray:
    """``values`` as an ``(n, k)`` float64 matrix: size matches the shape, all within ±MAX_ABS."""
    expected = math.prod(shape)
    if values.size != expected:
        raise _err(f"holds {values.size} values; shape {list(shape)} needs {expected}", field)
    X = values.astype(np.float64, copy=False).reshape(shape[0], -1)
    if not within_limits(X):
        r, c = np.argwhere(~(np.abs(X) <= MAX_ABS))[0]
        finite = bool(np.isfinite(X[r, c]))
        message = MSG_RANGE if finite else MSG_FINITE
        reason = "out_of_range" if finite else "not_finite"
        raise _err(f"row {r}, column {c}: {message}", field, reason)
    return X


class _Buffer:
    """The tensor bytes after the JSON header, taken in order by the binary inputs."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.offset = 0

    def take(self, size: Any, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
        dtype = np.dtype(BINARY_DTYPES[datatype])
        count = math.prod(shape)
        needed = count * dtype.itemsize
        if type(size) is not int or size != needed:
            message = f"is {size!r}; shape {list(shape)} of {datatype} needs {needed}"
            raise _err(message, field, "row_length")
        values = np.frombuffer(self.take_raw(size, field), dtype, count=count)
        # the JSON header's length decides the alignment; numpy is 2× slower on unaligned data
        return values if values.flags.aligned else values.copy()

    def take_raw(self, size: int, field: str) -> memoryview:
        """The next ``size`` bytes as they are (a BYTES tensor's elements)."""
        if self.offset + size > len(self.view):
            message = f"the body ends {self.offset + size - len(self.view)} bytes short"
            raise _err(message, field, "malformed_body")
        raw = self.view[self.offset : self.offset + size]
        self.offset += size
        return raw

    def finish(self) -> None:
        extra = len(self.view) - self.offset
        if extra:
            message = f"{extra} bytes follow the tensors that binary_data_size accounts for"
            raise _err(message, "body", "malformed_body")


_NO_BUFFER = _Buffer(memoryview(b""))  # a JSON request: nothing to take, nothing left over


def _outputs(outputs: Any, binary: bool) -> tuple[bool, str]:
    """(binary?, datatype) of the one output, from ``outputs`` and the request's default."""
    if outputs is None:
        return binary, "FP64"
    if not isinstance(outputs, list):
        raise _err("must be a list of outputs", "outputs", "wrong_type")
    datatype = "FP64"
    for i, output in enumerate(outputs):
        where = f"outputs[{i}]"
        if not isinstance(output, dict):
            raise _err("must be an object with a name", where, "wrong_type")
        unknown = set(output) - OUTPUT_KEYS
        if unknown:
            raise _err("unknown field", f"{where}.{sorted(unknown)[0]}", "unknown_field")
        if output.get("name") != OUTPUT_NAME:
            message = f"no output named {output.get('name')!r}; the model has {OUTPUT_NAME!r}"
            raise _err(message, f"{where}.name", "unknown_output")
        params = _parameters(output.get("parameters"), f"{where}.parameters")
        binary = _flag(params, "binary_data", binary, f"{where}.parameters")
        datatype = params.get("datatype", "FP64")
        if datatype not in OUTPUT_DATATYPES:
            message = f"must be one of {', '.join(OUTPUT_DATATYPES)}"
            raise _err(message, f"{where}.parameters.datatype", "wrong_type")
    return binary, datatype


def infer_response(
    model: LoadedModel, req: ParsedInfer, y: np.ndarray
) -> tuple[bytes, list[tuple[str, str]]]:
    """The response body and its content headers (JSON, or JSON header + tensor bytes)."""
    values = y.astype(BINARY_DTYPES[req.datatype], copy=False)
    output: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": req.datatype, "shape": [len(y)]}
    doc: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if req.id is not None:
        doc["id"] = req.id
    doc["outputs"] = [output]
    if not req.binary_output:
        output["data"] = values
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), JSON_TYPE
    raw = values.tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps(doc)
    return header + raw, [BINARY_TYPE, (HEADER_LENGTH, str(len(header)))]


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "sklearn",
        "inputs": categories.input_metadata(model)
        or [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, len(model.features)]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1]}],
    }
