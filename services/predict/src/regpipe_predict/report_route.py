"""``GET /model/report``: the loaded model's training report (``report.html`` in its bundle).

Its own small blueprint, so that it stays apart from the prediction routes. The page is served
as the bundle holds it, with a Content-Security-Policy that forbids it any request; a bundle
without a report (published before reports existed) is a 404 with a JSON error.
"""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from regpipe_common import storage
from regpipe_common.bundle import REPORT_CSP, REPORT_FILE

from .errors import ApiError
from .http_io import dataplane
from .openapi import ERROR_REF

blp = Blueprint("report", __name__, description="The loaded model's training report")


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


@blp.route("/model/report")
class ModelReport(MethodView):
    @blp.doc(
        responses={
            200: {
                "description": "report.html of the loaded version: metrics beside the exact "
                "optimum, promotion decision, charts embedded as data: URIs (opens offline)",
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            404: _error("the loaded bundle has no report.html (published before reports)"),
            503: _error("no verified model is loaded yet"),
        }
    )
    def get(self) -> Response:
        """The training report of the model being served, as one self-contained HTML page."""
        model = dataplane().ready_model()
        try:
            page = storage.read_bytes(storage.join(model.bundle.url, REPORT_FILE))
        except FileNotFoundError:
            raise ApiError(
                "not_found",
                f"model {model.name}/{model.version} has no {REPORT_FILE} "
                "(its bundle was published before training reports existed)",
            ) from None
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = REPORT_CSP
        response.headers["X-Model-Version"] = model.version
        return response
