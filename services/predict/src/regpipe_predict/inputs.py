"""The hot path: request bytes to a validated float64 matrix, with no per-record schema run.

The body is read once (:func:`read_body`: ``Content-Length`` or chunked, within
``MAX_CONTENT_LENGTH``), parsed once (orjson), rows are gathered with C-level ``itemgetter``
calls and turned into one numpy array, then checked with array operations (numeric dtype,
shape, finite), ``SCAN_CHUNK`` rows at a time. When a check fails, a bisection of that chunk
finds the first bad row (:func:`to_matrix`) and only that one row goes through the
marshmallow schema (:func:`regpipe_predict.schemas.explain_row`) to name the field at fault, so
an invalid 100,000-row body costs about what a valid one does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from gunicorn.http.errors import ParseException

from . import schemas
from .errors import ApiError
from .model_store import LoadedModel

_NUMERIC_KINDS = "fiu"
READ_SIZE = 1 << 16
SCAN_CHUNK = 1024  # rows converted at a time while looking for the first bad one


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body: 413 over ``limit`` bytes (also when chunked), 400 if it is malformed."""
    stream = environ["wsgi.input"]
    try:
        length = environ.get("CONTENT_LENGTH")
        if length:
            return _read_length(stream, _content_length(length), limit)
        parts, size = [], 0
        while chunk := stream.read(READ_SIZE):  # chunked (or no body): read to the end
            size += len(chunk)
            if size > limit:
                _discard(stream, size, limit)
                raise _too_large(limit)
            parts.append(chunk)
        return b"".join(parts)
    except (ParseException, OSError) as exc:  # gunicorn: bad chunk size, missing terminator, EOF
        message = f"malformed request body: {exc or type(exc).__name__}"
        raise ApiError("malformed_body", message, "body") from None


def _content_length(value: str) -> int:
    if not value.isdigit():
        message = f"Content-Length {value!r} is not a number"
        raise ApiError("malformed_body", message, "Content-Length")
    return int(value)


def _read_length(stream: Any, length: int, limit: int) -> bytes:
    if length > limit:
        _discard(stream, 0, limit)
        raise _too_large(limit)
    body = stream.read(length)
    if len(body) != length:
        message = f"the body ended after {len(body)} of {length} bytes (Content-Length)"
        raise ApiError("malformed_body", message, "body")
    return body


def _discard(stream: Any, size: int, limit: int) -> None:
    """Read and drop the rest of an oversized body (up to 4 × the limit) before the 413.

    A server that answers and closes while the client is still sending resets the connection,
    and the client then never reads the 413; past the cap that is what happens.
    """
    try:
        while size <= 4 * limit and (chunk := stream.read(READ_SIZE)):
            size += len(chunk)
    except (ParseException, OSError):
        pass


def _too_large(limit: int) -> ApiError:
    message = f"the body is over the {limit}-byte limit (MAX_CONTENT_LENGTH)"
    return ApiError("body_too_large", message, "body")


def parse_json(body: bytes | memoryview) -> Any:
    """Parse a JSON body; ``NaN``/``Infinity``/``1e400`` parse so the field can be named later."""
    if not body:
        raise ApiError("malformed", "the request body is empty; send a JSON object", "body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(bytes(body))  # accepts NaN and Infinity, which the checks then refuse
    except (ValueError, RecursionError) as exc:
        raise ApiError("malformed_json", f"malformed JSON: {exc}", "body") from None


def has_boolean(body: bytes | memoryview) -> bool:
    """True if a JSON boolean may be in the body (numpy would quietly read it as 0/1)."""
    raw = bytes(body) if isinstance(body, memoryview) else body
    return b"true" in raw or b"false" in raw


def contains_bool(data: Any) -> bool:
    """True if a boolean is anywhere in these nested lists and objects."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        for value in item.values() if type(item) is dict else item:
            kind = type(value)
            if kind is bool:
                return True
            if kind is list or kind is dict:
                stack.append(value)
    return False


def check_rows(n: int, max_rows: int, field: str) -> None:
    if n == 0:
        raise ApiError("empty", f"{field}: {schemas.MSG_EMPTY}", field)
    if n > max_rows:
        raise ApiError(
            "too_many_rows",
            f"{field}: {n} rows exceed the limit of {max_rows} rows per request (MAX_ROWS)",
            field,
        )


def predict_matrix(body: bytes, doc: Any, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The ``(n, n_features)`` matrix of a ``POST /predict`` body, or an ApiError."""
    key, rows = _payload(doc)
    if rows is None:
        raise _explain(doc, model) or ApiError("invalid", "the body is not valid", "body")
    check_rows(len(rows), max_rows, key)
    X, row = to_matrix(rows, _converter(key, model.features, has_boolean(body)))
    if X is not None:
        return X
    example = tuple(schemas.example_row(model.features, model.metadata.get("feature_stats")))
    error = schemas.explain_row(key, rows[row], row, tuple(model.features), example)
    raise error or ApiError("invalid", f"{key}[{row}]: not a valid row", f"{key}[{row}]")


def _converter(
    key: str, features: list[str], maybe_bool: bool
) -> Callable[[list[Any]], np.ndarray | None]:
    """``rows -> their matrix`` if every row is valid, else None (array operations only)."""
    n_features = len(features)

    def convert(rows: list[Any]) -> np.ndarray | None:
        X = _records(rows, features) if key == "instances" else _rows(rows)
        if X is None or not _valid(X, n_features):
            return None
        if maybe_bool and contains_bool(rows):
            return None
        return X

    return convert


def to_matrix(
    rows: list[Any], convert: Callable[[list[Any]], np.ndarray | None]
) -> tuple[np.ndarray | None, int]:
    """``(matrix, -1)``, or ``(None, index of the first row convert refuses)``.

    Rows are converted ``SCAN_CHUNK`` at a time, so a bad value costs only its own chunk (numpy
    turns a whole list with one string in it into strings); in the refused chunk a bisection
    finds the row: an invalid body costs about one conversion, like a valid one.
    """
    if len(rows) <= SCAN_CHUNK:
        X = convert(rows)
        return (X, -1) if X is not None else (None, _bisect(rows, convert))
    parts = []
    for start in range(0, len(rows), SCAN_CHUNK):
        chunk = rows[start : start + SCAN_CHUNK]
        X = convert(chunk)
        if X is None:
            return None, start + _bisect(chunk, convert)
        parts.append(X)
    return np.concatenate(parts), -1


def _bisect(rows: list[Any], convert: Callable[[list[Any]], np.ndarray | None]) -> int:
    """The first row of ``rows`` (which ``convert`` refuses) that ``convert`` refuses."""
    good, bad = 0, len(rows)  # rows[:good] convert (or good == 0), rows[:bad] do not
    while bad - good > 1:
        mid = (good + bad) // 2
        if convert(rows[:mid]) is None:
            bad = mid
        else:
            good = mid
    return bad - 1


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
        and within_limits(X.astype(np.float64, copy=False))
    )


def within_limits(X: np.ndarray) -> bool:
    """Every value finite and within ±MAX_ABS (two reductions, no temporary array; NaN fails)."""
    return X.size == 0 or bool(X.min() >= -schemas.MAX_ABS and X.max() <= schemas.MAX_ABS)


def _explain(doc: Any, model: LoadedModel) -> ApiError | None:
    """The problem with a body that is not one ``instances``/``inputs`` list (marshmallow)."""
    if not isinstance(doc, dict):
        return ApiError("wrong_type", "the body must be a JSON object", "body")
    features = tuple(model.features)
    example = tuple(schemas.example_row(model.features, model.metadata.get("feature_stats")))
    return schemas.explain(doc, features, example)
