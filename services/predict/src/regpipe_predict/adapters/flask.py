"""Flask and flask-smorest internals (pinned ``flask<3.2``, ``flask-smorest<0.48``).

- :class:`SyncFlask`: Flask routes every view call through ``Flask.ensure_sync``, which asks
  ``inspect.iscoroutinefunction`` each time; with no async view here that is pure cost, so it
  returns the function as it is. Flask documents the method as the one to override.
- :func:`serve_openapi_json`: flask-smorest serves ``/openapi.json`` from ``Api._openapi_json``
  under the endpoint ``api-docs.openapi_json``; the service's document adds the served model's
  features, so that endpoint's view is replaced (a KeyError at start if it is not there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

OPENAPI_JSON_ENDPOINT = "api-docs.openapi_json"


class SyncFlask(Flask):
    """Flask without the per-call coroutine check: every view and hook here is synchronous."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def serve_openapi_json(app: Flask, view: Callable[[], Any]) -> None:
    """Answer flask-smorest's ``/openapi.json`` route with ``view`` (KeyError if it is gone)."""
    if OPENAPI_JSON_ENDPOINT not in app.view_functions:
        raise KeyError(f"flask-smorest has no endpoint {OPENAPI_JSON_ENDPOINT!r} to serve")
    app.view_functions[OPENAPI_JSON_ENDPOINT] = view
