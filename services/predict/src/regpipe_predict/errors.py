"""Every error is a JSON body ``{"error": {"code", "message", "field"?, "reason"}}``.

``field`` names what was wrong (``instances[3].dep_delay``, ``inputs[0].shape``,
``Content-Type``, ``body``); ``reason`` is a short machine-readable tag, the same one the
``regpipe_prediction_errors_total`` counter uses. No traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the service refuses, with the HTTP status and the field at fault."""

    def __init__(self, code: int, message: str, field: str | None = None, reason: str = "invalid"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.reason = reason


def error_body(code: int, message: str, field: str | None, reason: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "reason": reason}
    if field is not None:
        error["field"] = field
    return {"error": error}


def json_error(
    code: int, message: str, field: str | None = None, reason: str = "invalid"
) -> Response:
    payload = orjson.dumps(error_body(code, message, field, reason))
    return Response(payload, status=code, mimetype="application/json")


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
    response = json_error(code, message, field, _HTTP_REASONS.get(code, "http_error"))
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


def register(app: Flask) -> None:
    """Install the JSON error handlers (after flask-smorest's, which they replace)."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
