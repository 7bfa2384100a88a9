"""A WSGI fast path for the success case of ``POST /predict``, in front of the Flask app.

A one-row prediction is a few microseconds of numpy; through Flask, flask-smorest and
prometheus-flask-exporter the same request costs over 100 µs of Python (request context,
werkzeug proxies, view wrappers, before/after hooks). :class:`PredictFastPath` wraps
``app.wsgi_app`` and answers a well-formed ``POST /predict`` itself, with the view's own code
(:func:`regpipe_predict.routes.predict_rows`, ``predict_body``, ``server_timing`` and
``ModelMetrics.record``), the same response bytes and headers, and the same HTTP metrics
prometheus-flask-exporter would record (``flask_http_request_duration_seconds{method="POST",
status="200",url_rule="/predict"}`` and ``flask_http_request_total{method="POST",
status="200"}``).

Everything else goes to Flask untouched: other paths and methods, a ``Content-Type`` other than
exactly ``application/json``, a missing, zero or over-the-limit ``Content-Length``, no model
loaded, and any body the view would refuse (the body read here is handed on, so Flask reads the
same bytes and answers, formats and counts the error exactly as before). The route stays a
flask-smorest view, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from .routes import Service, predict_body, predict_rows, server_timing

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PredictFastPath:
    """WSGI middleware: ``POST /predict`` successes here, every other request to ``wsgi_app``."""

    def __init__(
        self, wsgi_app: WSGIApp, svc: Service, duration: Histogram, total: Counter
    ) -> None:
        self.wsgi_app = wsgi_app
        self.svc = svc
        self.max_length = svc.settings.max_content_length
        self.duration = duration
        self.total = total
        self.children: tuple[Any, Any] | None = None  # label children, bound on first success

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("PATH_INFO") != "/predict"
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("CONTENT_TYPE") != "application/json"
        ):
            return self.wsgi_app(environ, start_response)
        start = time.perf_counter()
        svc = self.svc
        model = svc.store.current
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if model is None or not 0 < length <= self.max_length:
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        try:
            if len(body) != length:
                raise EOFError("short body")
            X, y, seconds = predict_rows(svc, model, body)
        except Exception:  # refused (or unexpected): Flask answers and counts it, as always
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        svc.metrics.record("rest", model, X, y, seconds)
        payload = predict_body(model, y)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Server-Timing", server_timing(start, seconds)),
        ]
        start_response("200 OK", headers)
        self.record_http(time.perf_counter() - start)
        return [payload]

    def record_http(self, seconds: float) -> None:
        """What prometheus-flask-exporter's ``after_request`` records for this 200."""
        if self.children is None:
            self.children = (
                self.duration.labels(method="POST", status=200, url_rule="/predict"),
                self.total.labels(method="POST", status=200),
            )
        duration, total = self.children
        duration.observe(seconds)
        total.inc()
