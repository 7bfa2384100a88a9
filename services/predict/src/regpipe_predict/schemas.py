"""Marshmallow schemas: the OpenAPI documentation, and readable messages for bad requests.

The request schemas are built from the model's feature list (:func:`request_schema`). They
are *not* run on valid requests: :mod:`.inputs` converts those with array operations. When a
request fails those checks, :func:`explain` runs the schema over it to name the field and the
problem (``instances[3].dep_delay: must be a finite number``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from .errors import (
    MAX_ABS,
    MSG_EMPTY,
    MSG_FINITE,
    MSG_LIST,
    MSG_MISSING,
    MSG_OBJECT,
    MSG_ONE_OF,
    MSG_RANGE,
    MSG_ROW,
    MSG_TYPE,
    MSG_UNKNOWN,
    ApiError,
    message_reason,
)

EXPLAIN_CHUNK = 2000


class StrictFloat(fields.Float):
    """A JSON number within ±``MAX_ABS``: no strings, no booleans, no NaN or ±Infinity."""

    default_error_messages = {  # noqa: RUF012 (marshmallow's convention)
        "required": MSG_MISSING,
        "null": MSG_TYPE,
        "invalid": MSG_TYPE,
        "special": MSG_FINITE,
        "too_large": MSG_FINITE,
    }

    def __init__(self, **kwargs: Any) -> None:
        bounds = validate.Range(min=-MAX_ABS, max=MAX_ABS, error=MSG_RANGE)
        super().__init__(allow_nan=False, validate=bounds, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        try:
            number = float(value)
        except OverflowError:
            raise self.make_error("special") from None
        if not math.isfinite(number):
            raise self.make_error("special")
        return number


def example_row(features: list[str], stats: dict[str, Any] | None) -> list[float]:
    """Training means rounded (or zeros): a plausible example input."""
    stats = stats or {}
    return [round(float(stats.get(f, {}).get("mean", 0.0)), 3) for f in features]


def instance_schema(features: tuple[str, ...], example: tuple[float, ...]) -> type[Schema]:
    """One record: every feature, a number, nothing else."""
    attrs: dict[str, fields.Field] = {
        f: StrictFloat(required=True, metadata={"example": x})
        for f, x in zip(features, example, strict=True)
    }
    schema = Schema.from_dict(attrs, name="Instance")
    schema.error_messages = {"unknown": MSG_UNKNOWN, "type": MSG_OBJECT}
    return schema


@lru_cache(maxsize=8)
def request_schema(features: tuple[str, ...], example: tuple[float, ...]) -> Schema:
    """The body of ``POST /predict`` for a model with these features."""
    n = len(features)
    row_message = MSG_ROW.format(n=n, features=", ".join(features))

    class ModelPredictRequest(Schema):
        class Meta:
            unknown = RAISE

        instances = fields.List(
            fields.Nested(instance_schema(features, example)),
            validate=validate.Length(min=1, error=MSG_EMPTY),
            error_messages={"invalid": MSG_LIST},
        )
        inputs = fields.List(
            fields.List(
                StrictFloat(),
                validate=validate.Length(equal=n, error=row_message),
                error_messages={"invalid": MSG_LIST},
            ),
            validate=validate.Length(min=1, error=MSG_EMPTY),
            error_messages={"invalid": MSG_LIST},
        )

        @validates_schema
        def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
            if ("instances" in data) == ("inputs" in data):
                raise ValidationError(MSG_ONE_OF)

    return ModelPredictRequest()


# --- documentation-only schemas (responses, OIP) ---------------------------------------------


class ErrorDetail(Schema):
    code = fields.Integer(required=True, metadata={"example": 422})
    message = fields.String(required=True, metadata={"example": MSG_FINITE})
    field = fields.String(metadata={"example": "instances[3].dep_delay"})
    reason = fields.String(required=True, metadata={"example": "not_finite"})


class ErrorResponse(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class ModelRef(Schema):
    name = fields.String(required=True, metadata={"example": "flights"})
    version = fields.String(required=True, metadata={"example": "20261126T071500123456Z-1a2b3c"})


class PredictRequestDoc(Schema):
    """Documentation of the body; the per-model ``Instance`` and ``Row`` fill in the features."""

    instances = fields.List(
        fields.Dict(keys=fields.String(), values=fields.Float()),
        metadata={"description": "records: one object per row, every feature by name"},
    )
    inputs = fields.List(
        fields.List(fields.Float()),
        metadata={"description": "rows: the feature values in the model's feature order"},
    )


class PredictResponse(Schema):
    predictions = fields.List(fields.Float(), required=True, metadata={"example": [12.5]})
    model = fields.Nested(ModelRef, required=True)


class Status(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    model = fields.Nested(ModelRef)


class ModelMetadata(Schema):
    """The bundle's metadata.json (further keys: optimum, params, feature_stats, ...)."""

    class Meta:
        unknown = INCLUDE

    name = fields.String(required=True)
    version = fields.String(required=True)
    features = fields.List(fields.String(), required=True)
    target = fields.String(required=True)
    metrics = fields.Dict(required=True)
    created_at = fields.String(required=True)


class Live(Schema):
    live = fields.Boolean(required=True)


class Ready(Schema):
    ready = fields.Boolean(required=True)


class ServerMetadata(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)
    extensions = fields.List(fields.String(), required=True)


class TensorMetadata(Schema):
    name = fields.String(required=True)
    datatype = fields.String(required=True)
    shape = fields.List(fields.Integer(), required=True)


class OipModelMetadata(Schema):
    name = fields.String(required=True)
    versions = fields.List(fields.String(), required=True)
    platform = fields.String(required=True)
    inputs = fields.List(fields.Nested(TensorMetadata), required=True)
    outputs = fields.List(fields.Nested(TensorMetadata), required=True)


DATATYPES = ("FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8")
OUTPUT_DATATYPES = ("FP64", "FP32")


class V2Error(Schema):
    """The Open Inference Protocol's error body."""

    error = fields.String(required=True, metadata={"example": "inputs[0].shape: ..."})


class ModelReady(Schema):
    name = fields.String(required=True)
    ready = fields.Boolean(required=True)


class RequestInput(Schema):
    name = fields.String(required=True, metadata={"example": "input-0"})
    shape = fields.List(
        fields.Integer(validate=validate.Range(min=0)),
        required=True,
        validate=validate.Length(min=1, max=2),
        metadata={"example": [1, 5]},
    )
    datatype = fields.String(
        required=True, validate=validate.OneOf(DATATYPES), metadata={"example": "FP64"}
    )
    data = fields.List(
        fields.Raw(),
        metadata={
            "description": "row-major, flat or nested; absent when parameters.binary_data_size "
            "gives the size of the tensor's bytes after the JSON (binary tensor extension)",
            "example": [1, 2, 3, 4, 5],
        },
    )
    parameters = fields.Dict(metadata={"description": "binary_data_size (bytes)"})


class RequestOutput(Schema):
    name = fields.String(required=True, validate=validate.OneOf(["predict"]))
    parameters = fields.Dict(
        metadata={"description": "binary_data (bool), datatype (FP64 or FP32)"}
    )


class InferRequest(Schema):
    id = fields.String()
    model_name = fields.String()
    model_version = fields.String()
    parameters = fields.Dict(metadata={"description": "binary_data_output (bool)"})
    inputs = fields.List(
        fields.Nested(RequestInput), required=True, validate=validate.Length(min=1)
    )
    outputs = fields.List(fields.Nested(RequestOutput))


class ResponseOutput(Schema):
    name = fields.String(required=True, metadata={"example": "predict"})
    shape = fields.List(fields.Integer(), required=True, metadata={"example": [1]})
    datatype = fields.String(required=True, metadata={"example": "FP64"})
    data = fields.List(fields.Float(), metadata={"example": [12.5]})
    parameters = fields.Dict(metadata={"description": "binary_data_size, for a binary output"})


class InferResponse(Schema):
    model_name = fields.String(required=True)
    model_version = fields.String(required=True)
    id = fields.String()
    parameters = fields.Dict()
    outputs = fields.List(fields.Nested(ResponseOutput), required=True)


# --- turning marshmallow's errors into one ApiError ------------------------------------------


def explain(doc: Any, features: tuple[str, ...], example: tuple[float, ...]) -> ApiError | None:
    """The first problem marshmallow finds in ``doc``, as a 422 naming the field, or None."""
    schema = request_schema(features, example)
    if isinstance(doc, dict):
        for key in ("instances", "inputs"):
            value = doc.get(key)
            if isinstance(value, list) and len(value) > EXPLAIN_CHUNK:
                for start in range(0, len(value), EXPLAIN_CHUNK):
                    part = {**doc, key: value[start : start + EXPLAIN_CHUNK]}
                    error = _first_error(schema, part, key, start)
                    if error is not None:
                        return error
                return None
    return _first_error(schema, doc, None, 0)


def explain_row(
    key: str, row: Any, index: int, features: tuple[str, ...], example: tuple[float, ...]
) -> ApiError | None:
    """The problem with row ``index`` of ``instances`` or ``inputs``, named at that index."""
    return _first_error(request_schema(features, example), {key: [row]}, key, index)


def _first_error(schema: Schema, doc: Any, key: str | None, offset: int) -> ApiError | None:
    try:
        schema.load(doc)
    except ValidationError as exc:
        path, message = _first_message(exc.messages)
        if key is not None and len(path) > 1 and path[0] == key and isinstance(path[1], int):
            path[1] += offset
        field = format_path(path)
        text = f"{field}: {message}" if field else message
        return ApiError(message_reason(message), text, field or "body")
    return None


def _first_message(messages: Any) -> tuple[list[Any], str]:
    if isinstance(messages, list):
        first = messages[0]
        return ([], first) if isinstance(first, str) else _first_message(first)
    if isinstance(messages, dict):
        key = sorted(messages, key=lambda k: (isinstance(k, str), k if isinstance(k, int) else 0))[
            0
        ]
        path, message = _first_message(messages[key])
        return ([] if key == "_schema" else [key, *path]), message
    return [], str(messages)


def format_path(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
