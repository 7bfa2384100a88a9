"""A WSGI fast path for the success case of ``POST /predict`` and ``POST /v2/models/{name}
[/versions/{version}]/infer``, in front of the Flask app.

A one-row prediction is a few microseconds of numpy; through Flask, flask-smorest and
prometheus-flask-exporter the same request costs over 100 µs of Python (request context,
werkzeug proxies, view wrappers, before/after hooks). :class:`PredictFastPath` wraps
``app.wsgi_app`` and answers a well-formed request itself, with the views' own code
(:meth:`regpipe_predict.dataplane.DataPlane.predict` / ``infer``, which record the model
metrics, and :func:`regpipe_predict.http_io.server_timing`), the same response bytes and
headers, and the same HTTP metrics prometheus-flask-exporter would record
(``flask_http_request_duration_seconds{method="POST", status="200",url_rule=...}`` and
``flask_http_request_total{method="POST", status="200"}``).

Everything else goes to Flask untouched: other paths and methods, a content type the view would
not take as is (``/predict``: exactly ``application/json``; infer: none or
``application/json``, or the binary extension's header), a missing, zero or over-the-limit
``Content-Length`` (chunked bodies), another model name or version, no model loaded, and any
body the view would refuse (the body read here is handed on, so Flask reads the same bytes and
answers, formats and counts the error exactly as before; the error found here travels along in
the environ, so an invalid body is not parsed and explained twice). The routes stay
flask-smorest views, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram

from . import oip
from .adapters import gunicorn
from .dataplane import Answer, DataPlane
from .errors import ApiError
from .http_io import REFUSED, server_timing
from .model_store import LoadedModel

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PREDICT_RULE = "/predict"
INFER_RULE = "/v2/models/<name>/infer"
VERSIONED_INFER_RULE = "/v2/models/<name>/versions/<version>/infer"
JSON_TYPES = (None, "", "application/json")


def infer_target(path: str) -> tuple[str, str, str | None] | None:
    """``(url rule, model name, version or None)`` of an infer path, else None."""
    parts = path.split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
    if len(parts) == 5 and parts[4] == "infer":
        return INFER_RULE, parts[3], None
    if len(parts) == 7 and parts[4] == "versions" and parts[6] == "infer":
        return VERSIONED_INFER_RULE, parts[3], parts[5]
    return None


READ_PIECE = 1 << 20  # bytes per read of a large body (gunicorn's largest recv)
ALIGN = 8  # binary tensors are read in place: their first byte on an 8-byte boundary


def read_body(environ: dict[str, Any], length: int) -> bytes | bytearray | memoryview:
    """The body (short if the client stopped early), received from gunicorn's socket into
    one buffer (:func:`.adapters.gunicorn.read_into`: gunicorn's own reads copy every piece
    through several ``BytesIO`` buffers), else read from the stream: a ``bytearray`` (orjson
    parses it as it is), or for a large binary-extension body a buffer placed so that the
    tensors after its JSON header start 8-byte aligned (numpy reads them in place), read
    ``READ_PIECE`` at a time when not from gunicorn."""
    stream = environ["wsgi.input"]
    header = environ.get(oip.HEADER_LENGTH_ENVIRON, "")
    if length <= READ_PIECE or not header.isdigit():  # no alignment to keep
        whole = bytearray(length)
        done = gunicorn.read_into(stream, memoryview(whole))
        if done is None:
            return stream.read(length)
        del whole[done:]
        return whole
    tensors_at = int(header)
    buffer = bytearray(length + ALIGN)
    base = np.frombuffer(buffer, np.uint8).ctypes.data
    pad = -(base + tensors_at) % ALIGN
    view = memoryview(buffer)[pad : pad + length]
    done = gunicorn.read_into(stream, view)  # gunicorn's socket: received in place
    if done is not None:
        return view[:done]
    done = 0
    while done < length and (piece := stream.read(min(READ_PIECE, length - done))):
        view[done : done + len(piece)] = piece
        done += len(piece)
    return view[:done]


class PredictFastPath:
    """WSGI middleware: prediction successes here, every other request to ``wsgi_app``."""

    def __init__(
        self, wsgi_app: WSGIApp, dp: DataPlane, duration: Histogram, total: Counter
    ) -> None:
        self.wsgi_app = wsgi_app
        self.dp = dp
        self.max_length = dp.settings.max_content_length
        self.duration = duration
        self.total = total
        self.children: dict[str, tuple[Any, Any]] = {}  # label children by URL rule

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        model = self.dp.store.current
        if path == PREDICT_RULE:
            if model is None or environ.get("CONTENT_TYPE") != "application/json":
                return self.wsgi_app(environ, start_response)
            return self.answer(environ, start_response, PREDICT_RULE, self.predict, model)
        target = infer_target(path) if path.startswith("/v2/models/") else None
        if (
            target is None
            or model is None
            or target[1] != model.name
            or target[2] not in (None, model.version)
            or (
                environ.get("CONTENT_TYPE") not in JSON_TYPES
                and oip.HEADER_LENGTH_ENVIRON not in environ
            )
        ):
            return self.wsgi_app(environ, start_response)
        return self.answer(environ, start_response, target[0], self.infer, model)

    def answer(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        rule: str,
        handler: Callable[[dict[str, Any], LoadedModel, bytes | memoryview], Answer],
        model: LoadedModel,
    ) -> Any:
        """Read the body, run ``handler``; on any refusal hand the same bytes on to Flask."""
        start = time.perf_counter()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= self.max_length:
            return self.wsgi_app(environ, start_response)
        body = read_body(environ, length)
        try:
            if len(body) != length:
                raise EOFError("short body")
            answer = handler(environ, model, body)
        except Exception as exc:  # refused (or unexpected): Flask answers and counts it
            if isinstance(exc, ApiError):
                environ[REFUSED] = exc  # the view raises it rather than work it out again
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        headers = [
            *answer.headers,
            ("Content-Length", str(len(answer.body))),
            ("Server-Timing", server_timing(start, answer.model_seconds)),
        ]
        start_response("200 OK", headers)
        self.record_http(rule, time.perf_counter() - start)
        return [answer.body]

    def predict(
        self, environ: dict[str, Any], model: LoadedModel, body: bytes | memoryview
    ) -> Answer:
        return self.dp.predict(model, body)

    def infer(
        self, environ: dict[str, Any], model: LoadedModel, body: bytes | memoryview
    ) -> Answer:
        json_length = oip.header_length(environ.get(oip.HEADER_LENGTH_ENVIRON))
        return self.dp.infer(model, body, json_length)

    def record_http(self, rule: str, seconds: float) -> None:
        """What prometheus-flask-exporter's ``after_request`` records for this 200."""
        children = self.children.get(rule)
        if children is None:
            children = self.children[rule] = (
                self.duration.labels(method="POST", status=200, url_rule=rule),
                self.total.labels(method="POST", status=200),
            )
        duration, total = children
        duration.observe(seconds)
        total.inc()
