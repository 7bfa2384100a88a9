"""Error bodies: ``/predict`` and the other routes answer ``{"error": {"code", "message",
"field"?, "reason"}}``; the Open Inference Protocol V2 routes (``/v2...``) answer the protocol's
``{"error": "<message>"}``.

``field`` names what was wrong (``instances[3].dep_delay``, ``inputs[0].shape``,
``Content-Type``, ``body``); ``reason`` is a short machine-readable tag, the same one the
``regpipe_prediction_errors_total`` counter uses. No traceback ever reaches a client, and a
message quoting the client's bytes (a lone surrogate in a JSON key) is escaped, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

V2_PREFIX = "/v2"


class ApiError(Exception):
    """A request the service refuses, with the HTTP status and the field at fault."""

    def __init__(self, code: int, message: str, field: str | None = None, reason: str = "invalid"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.reason = reason


def is_v2(path: str) -> bool:
    """True for the Open Inference Protocol routes, whose errors are ``{"error": "<message>"}``."""
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def printable(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (from a client's JSON) become ``\\udfff``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(
    code: int, message: str, field: str | None, reason: str, v2: bool = False
) -> dict[str, Any]:
    message = printable(message)
    if v2:
        return {"error": message}
    error: dict[str, Any] = {"code": code, "message": message, "reason": reason}
    if field is not None:
        error["field"] = printable(field)
    return {"error": error}


def json_error(
    code: int,
    message: str,
    field: str | None = None,
    reason: str = "invalid",
    v2: bool = False,
) -> Response:
    payload = orjson.dumps(error_body(code, message, field, reason, v2))
    return Response(payload, status=code, mimetype="application/json")


def _request_is_v2() -> bool:
    return is_v2(request.path)


_HTTP_REASONS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "content_type",
    503: "not_ready",
}


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    message = exc.description or exc.name
    field = "body" if code == 413 else None
    if code == 413:
        message = "the request body is larger than MAX_CONTENT_LENGTH"
    reason = _HTTP_REASONS.get(code, "http_error")
    response = json_error(code, message, field, reason, _request_is_v2())
    allowed = getattr(exc, "valid_methods", None)  # a 405 says what is allowed
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def _api_error(exc: ApiError) -> Response:
    return json_error(exc.code, exc.message, exc.field, exc.reason, _request_is_v2())


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unexpected error while serving a request")
    message = "internal error; the service log has the details"
    return json_error(500, message, None, "internal", _request_is_v2())


def register(app: Flask) -> None:
    """Install the JSON error handlers (after flask-smorest's, which they replace)."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
