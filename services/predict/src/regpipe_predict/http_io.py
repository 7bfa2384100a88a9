"""The HTTP side of the views: content type, the body, JSON and prediction responses,
``Server-Timing``, and the JSON error responses (the bodies are :func:`.errors.error_body`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from . import oip
from .dataplane import JSON_OPTS, Answer, DataPlane
from .errors import ApiError, error_body, http_reason
from .inputs import read_body

log = logging.getLogger(__name__)

V2_PREFIX = "/v2"
REFUSED = "regpipe.refused"  # environ key: the ApiError the fast path found for this very body


def dataplane() -> DataPlane:
    return current_app.extensions["regpipe"]


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc, option=JSON_OPTS), status=status, mimetype="application/json")


def answer_response(answer: Answer, start: float) -> Response:
    """A prediction's response, with ``Server-Timing`` since ``start`` (``perf_counter``)."""
    headers = answer.headers
    response = Response(answer.body, headers=headers[1:], content_type=headers[0][1])
    response.headers["Server-Timing"] = server_timing(start, answer.model_seconds)
    return response


def server_timing(start: float, model_seconds: float) -> str:
    """The ``Server-Timing`` header: time since ``start`` (``perf_counter``) and model time."""
    total_ms = (time.perf_counter() - start) * 1000
    return f"total;dur={total_ms:.3f}, model;dur={model_seconds * 1000:.3f}"


def _content_type_error(detail: str) -> ApiError:
    message = f"Content-Type must be {detail}, not {request.mimetype or 'missing'}"
    return ApiError("content_type", message, "Content-Type")


def json_body(limit: int) -> bytes:
    """The raw body of a JSON request: 415 for another content type, 413 over ``limit``."""
    if request.mimetype != "application/json":
        raise _content_type_error("application/json")
    return read_body(request.environ, limit)


def infer_body(limit: int) -> tuple[bytes, int | None]:
    """An infer body and its JSON header's length (binary tensor extension), or None for JSON.

    JSON when ``Content-Type`` is missing or ``application/json`` (tritonclient sends none).
    """
    json_length = oip.header_length(request.headers.get(oip.HEADER_LENGTH))
    if json_length is None and request.mimetype not in ("", "application/json"):
        raise _content_type_error(f"application/json or missing (or {oip.HEADER_LENGTH} given)")
    return read_body(request.environ, limit), json_length


def refused_already() -> None:
    """Raise the error the fast path found for this body, instead of finding it again."""
    exc = request.environ.pop(REFUSED, None)
    if exc is not None:
        raise exc


# --- error responses ---------------------------------------------------------------------


def is_v2(path: str) -> bool:
    """True for the Open Inference Protocol routes, whose errors are ``{"error": "<message>"}``."""
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def json_error(code: int, message: str, field: str | None, reason: str) -> Response:
    payload = orjson.dumps(error_body(code, message, field, reason, is_v2(request.path)))
    return Response(payload, status=code, mimetype="application/json")


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    message = exc.description or exc.name
    field = "body" if code == 413 else None
    if code == 413:
        message = "the request body is larger than MAX_CONTENT_LENGTH"
    response = json_error(code, message, field, http_reason(code))
    allowed = getattr(exc, "valid_methods", None)  # a 405 says what is allowed
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def _api_error(exc: ApiError) -> Response:
    return json_error(exc.code, exc.message, exc.field, exc.reason)


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unexpected error while serving a request")
    return json_error(500, "internal error; the service log has the details", None, "internal")


def register_error_handlers(app: Flask) -> None:
    """Install the JSON error handlers (after flask-smorest's, which they replace)."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
