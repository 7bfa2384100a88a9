"""Every way the service refuses a request, in one table: status, reason, schema messages.

:data:`ERRORS` is the one table: for each HTTP status, what it means (the OpenAPI
description) and its ``reason`` tags (the first one also tags werkzeug's own errors of that
status), each with the schema messages that mean it. ``reason`` is the short
machine-readable tag of an :class:`ApiError`, of its error body and of the
``regpipe_prediction_errors_total`` counter; an :class:`ApiError` takes its status from the
table. Nothing here changes at run time.

Error bodies: ``/predict`` and the other routes answer ``{"error": {"code", "message",
"field"?, "reason"}}``; the Open Inference Protocol V2 routes (``/v2...``) answer the
protocol's ``{"error": "<message>"}``. ``field`` names what was wrong
(``instances[3].dep_delay``, ``inputs[0].shape``, ``Content-Type``, ``body``). A message
quoting the client's bytes (a lone surrogate in a JSON key) is escaped, never a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

MAX_ABS = 1e15  # the largest magnitude a feature value may have

MSG_MISSING = "is required: every feature needs a value"
MSG_UNKNOWN = "is not a feature of this model"
MSG_UNKNOWN_FIELD = "Unknown field."  # marshmallow's own
MSG_TYPE = "must be a number"
MSG_FINITE = "must be a finite number (NaN and ±Infinity are not allowed)"
MSG_EMPTY = "must not be empty"
MSG_LIST = "must be a list"
MSG_OBJECT = "must be an object mapping each feature to a number"
MSG_RANGE = f"must be between -{MAX_ABS:g} and {MAX_ABS:g}"
MSG_ONE_OF = "give exactly one of 'instances' (records) or 'inputs' (rows)"
MSG_ROW = "must hold {n} numbers, one per feature in order: {features}"

# status: (what it means, {reason: the schema messages that mean it})
ERRORS: Mapping[int, tuple[str, Mapping[str, tuple[str, ...]]]] = MappingProxyType(
    {
        400: (
            "malformed JSON",
            {"bad_request": (), "malformed_json": (), "malformed_body": (), "malformed": ()},
        ),
        404: ("no model of that name (or version)", {"not_found": ()}),
        405: ("the route does not take this method", {"method_not_allowed": ()}),
        413: (
            "body over MAX_CONTENT_LENGTH or rows over MAX_ROWS",
            {"body_too_large": (), "too_many_rows": ()},
        ),
        415: (
            "Content-Type is not application/json (nor the binary tensor extension on /v2)",
            {"content_type": ()},
        ),
        422: (
            "the body does not match the model's inputs; `field` names what",
            {
                "invalid": (MSG_ONE_OF,),
                "wrong_type": (MSG_TYPE, MSG_LIST, MSG_OBJECT),
                "missing_feature": (MSG_MISSING,),
                "unknown_feature": (MSG_UNKNOWN,),
                "unknown_field": (MSG_UNKNOWN_FIELD,),
                "not_finite": (MSG_FINITE,),
                "out_of_range": (MSG_RANGE,),
                "empty": (MSG_EMPTY,),
                "row_length": (MSG_ROW,),
                "missing_field": (),
                "wrong_shape": (),
                "unknown_output": (),
            },
        ),
        500: ("internal error; the service log has the details", {"internal": ()}),
        503: ("no verified model is loaded yet", {"not_ready": ()}),
    }
)
HTTP_ERROR = "http_error"  # the reason of a werkzeug error whose status is not in the table

STATUS: Mapping[str, int] = MappingProxyType(
    {reason: status for status, (_, reasons) in ERRORS.items() for reason in reasons}
)
_MESSAGE_REASON = MappingProxyType(
    {
        message: reason
        for _, reasons in ERRORS.values()
        for reason, messages in reasons.items()
        for message in messages
    }
)


class ApiError(Exception):
    """A request the service refuses: its reason (which gives the status) and the field at fault."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = STATUS[reason]  # a reason missing from ERRORS fails here, loudly
        self.reason = reason
        self.message = message
        self.field = field


def description(status: int) -> str:
    """What a status means, for the OpenAPI document."""
    return ERRORS[status][0]


def http_reason(status: int) -> str:
    """The reason of a werkzeug error (404 route, 405 method, ...) with this status."""
    entry = ERRORS.get(status)
    return next(iter(entry[1])) if entry else HTTP_ERROR


def message_reason(message: str) -> str:
    """The reason a schema message means (``invalid`` for marshmallow's other messages)."""
    for known, reason in _MESSAGE_REASON.items():
        if message == known or ("{" in known and message.startswith(known.split("{")[0])):
            return reason
    return "invalid"


def printable(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (from a client's JSON) become ``\\udfff``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(
    code: int, message: str, field: str | None, reason: str, v2: bool = False
) -> dict[str, Any]:
    """The error document: the protocol's ``{"error": message}`` on /v2, else the rich one."""
    message = printable(message)
    if v2:
        return {"error": message}
    error: dict[str, Any] = {"code": code, "message": message, "reason": reason}
    if field is not None:
        error["field"] = printable(field)
    return {"error": error}
