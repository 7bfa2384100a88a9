"""The views: ``/predict``, ``/model``, probes, and the Open Inference Protocol V2 routes.

Each view is the HTTP shell around one :class:`~regpipe_predict.dataplane.DataPlane` call:
content type and body (:mod:`.http_io`) in, the data plane's answer out. ``@blp.response`` and
``@blp.doc`` (request body, error responses) feed the OpenAPI document (:mod:`.openapi`), and
flask-smorest passes a returned ``Response`` through untouched, so no per-record marshmallow
work runs on valid requests.
"""

from __future__ import annotations

import time

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from . import schemas
from .http_io import (
    answer_response,
    dataplane,
    infer_body,
    json_body,
    json_response,
    refused_already,
)
from .metrics import counts_refusals
from .openapi import INFER_BODY, PREDICT_BODY, error_responses, v2_error_responses

blp = Blueprint("predict", __name__, description="Predictions, model metadata and probes")
v2 = Blueprint("v2", __name__, url_prefix="/v2", description="Open Inference Protocol V2")


@blp.route("/predict")
class Predict(MethodView):
    @blp.doc(
        requestBody=PREDICT_BODY,
        summary="Predict for records or rows",
        responses=error_responses(400, 413, 415, 422, 503),
    )
    @blp.response(200, schemas.PredictResponse)
    @counts_refusals
    def post(self) -> Response:
        """One prediction per row, and the model version that computed them.

        Up to ``MAX_ROWS`` rows per request; the body is checked with array operations and a
        refused body names the field at fault.
        """
        start = time.perf_counter()
        dp = dataplane()
        model = dp.ready_model()
        body = json_body(dp.settings.max_content_length)
        refused_already()
        return answer_response(dp.predict(model, body), start)


@blp.route("/model")
class Model(MethodView):
    @blp.response(200, schemas.ModelMetadata)
    @blp.doc(responses=error_responses(503))
    def get(self) -> Response:
        """The bundle's metadata: name, version, features, target, metrics, created_at, ...

        Storage paths and library versions stay on the server.
        """
        return json_response(dataplane().model_document())


@blp.route("/healthz")
class Healthz(MethodView):
    @blp.response(200, schemas.Status)
    def get(self) -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok"})


@blp.route("/readyz")
class Readyz(MethodView):
    @blp.response(200, schemas.Status)
    @blp.doc(responses=error_responses(503))
    def get(self) -> Response:
        """Readiness: a verified model is loaded."""
        return json_response(dataplane().readiness())


# --- Open Inference Protocol V2 ----------------------------------------------------------------


@v2.route("")
class ServerMetadata(MethodView):
    @v2.response(200, schemas.ServerMetadata)
    def get(self) -> Response:
        """Server metadata: name, version and the protocol extensions it speaks."""
        return json_response(dataplane().server_metadata())


@v2.route("/health/live")
class Live(MethodView):
    @v2.response(200, schemas.Live)
    def get(self) -> Response:
        """The server is live."""
        return json_response({"live": True})


@v2.route("/health/ready")
class Ready(MethodView):
    @v2.response(200, schemas.Ready)
    @v2.doc(responses=v2_error_responses(503))
    def get(self) -> Response:
        """The server is ready: a verified model is loaded."""
        dataplane().ready_model()
        return json_response({"ready": True})


@v2.route("/models/<name>")
class ModelMetadata(MethodView):
    @v2.response(200, schemas.OipModelMetadata)
    @v2.doc(responses=v2_error_responses(404, 503))
    def get(self, name: str, version: str | None = None) -> Response:
        """Model metadata: versions, platform, input and output tensors."""
        return json_response(dataplane().model_metadata(name, version))


@v2.route("/models/<name>/versions/<version>")
class VersionedModelMetadata(ModelMetadata):
    pass


@v2.route("/models/<name>/ready")
class ModelReady(MethodView):
    @v2.response(200, schemas.ModelReady)
    @v2.doc(responses=v2_error_responses(404, 503))
    def get(self, name: str, version: str | None = None) -> Response:
        """The named model (version) is loaded and verified."""
        return json_response(dataplane().model_ready(name, version))


@v2.route("/models/<name>/versions/<version>/ready")
class VersionedModelReady(ModelReady):
    pass


@v2.route("/models/<name>/infer")
class Infer(MethodView):
    @v2.doc(requestBody=INFER_BODY, responses=v2_error_responses(400, 404, 413, 415, 422, 503))
    @v2.response(200, schemas.InferResponse)
    @counts_refusals
    def post(self, name: str, version: str | None = None) -> Response:
        """Inference on numbers of shape ``[n, n_features]`` (flat or nested, JSON or binary)."""
        start = time.perf_counter()
        dp = dataplane()
        model = dp.named_model(name, version)
        body, json_length = infer_body(dp.settings.max_content_length)
        refused_already()
        return answer_response(dp.infer(model, body, json_length), start)


@v2.route("/models/<name>/versions/<version>/infer")
class VersionedInfer(Infer):
    pass
