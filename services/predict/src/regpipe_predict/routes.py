"""The HTTP API: ``/predict``, ``/model``, probes, and the Open Inference Protocol V2 routes.

Views parse and answer with orjson directly; ``@blp.response`` and ``@blp.doc`` (request body,
error responses) feed the OpenAPI document, and flask-smorest passes a returned
``Response`` through untouched, so no per-record marshmallow work runs on valid requests.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from . import __version__, categories, oip, schemas
from .errors import ApiError
from .inputs import parse_json, predict_matrix, read_body
from .metrics import ModelMetrics
from .model_store import LoadedModel, ModelStore
from .settings import Settings

blp = Blueprint("predict", __name__, description="Predictions, model metadata and probes")
v2 = Blueprint("v2", __name__, url_prefix="/v2", description="Open Inference Protocol V2")

ERRORS = {
    400: "malformed JSON",
    413: "body over MAX_CONTENT_LENGTH or rows over MAX_ROWS",
    415: "Content-Type is not application/json (nor the binary tensor extension on /v2)",
    422: "the body does not match the model's inputs; `field` names what",
    503: "no verified model is loaded yet",
    404: "no model of that name (or version)",
}
ERROR_REF = "#/components/schemas/ErrorResponse"
V2_ERROR_REF = "#/components/schemas/V2Error"
# What GET /model shows of metadata.json: what a client needs, no storage paths or library
# versions (an attacker's map of the deployment).
MODEL_KEYS = (
    "name",
    "version",
    "features",
    "target",
    "metrics",
    "optimum",
    "params",
    "dataset_fingerprint",
    "feature_stats",
    "categories",
    "target_stats",
    "created_at",
    "sha256",
)
JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY
REFUSED = "regpipe.refused"  # environ key: the ApiError the fast path found for this very body


@dataclass
class Service:
    """What the views share in one worker."""

    settings: Settings
    store: ModelStore
    metrics: ModelMetrics


def service() -> Service:
    return current_app.extensions["regpipe"]


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc, option=JSON_OPTS), status=status, mimetype="application/json")


def ready_model() -> LoadedModel:
    model = service().store.current
    if model is None:
        raise ApiError(503, "no verified model is loaded yet", None, "not_ready")
    return model


def _content_type_error(detail: str) -> ApiError:
    message = f"Content-Type must be {detail}, not {request.mimetype or 'missing'}"
    return ApiError(415, message, "Content-Type", "content_type")


def json_body() -> bytes:
    """The raw body of a JSON request: 415 for another content type, 413 over the size limit."""
    if request.mimetype != "application/json":
        raise _content_type_error("application/json")
    return read_body(request.environ, service().settings.max_content_length)


def infer_body() -> tuple[bytes, int | None]:
    """An infer body and its JSON header's length (binary tensor extension), or None for JSON.

    JSON when ``Content-Type`` is missing or ``application/json`` (tritonclient sends none).
    """
    json_length = oip.header_length(request.headers.get(oip.HEADER_LENGTH))
    if json_length is None and request.mimetype not in ("", "application/json"):
        raise _content_type_error(f"application/json or missing (or {oip.HEADER_LENGTH} given)")
    return read_body(request.environ, service().settings.max_content_length), json_length


def refused_already() -> None:
    """Raise the error the fast path found for this body, instead of finding it again."""
    exc = request.environ.pop(REFUSED, None)
    if exc is not None:
        raise exc


def compute(model: LoadedModel, X: np.ndarray, field: str) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    y = np.ascontiguousarray(model.predict(X), dtype=np.float64)  # what orjson serializes
    seconds = time.perf_counter() - start
    bad = ~np.isfinite(y)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ApiError(
            422,
            f"{field}[{row}]: the prediction overflows; the values are far outside the training "
            "range",
            f"{field}[{row}]",
            "not_finite",
        )
    return y, seconds


def model_ref(model: LoadedModel) -> dict[str, str]:
    return {"name": model.name, "version": model.version}


def predict_rows(
    svc: Service, model: LoadedModel, body: bytes
) -> tuple[np.ndarray, np.ndarray, float]:
    """``POST /predict``: the body's matrix, its predictions and the model seconds, or an ApiError.

    Records nothing; the view (and :mod:`regpipe_predict.fastpath`) records a success.
    """
    doc = parse_json(body)
    if model.categories is not None:  # category features: strings -> codes (categories.py)
        X = categories.predict_codes(doc, model, svc.settings.max_rows)
    else:
        X = predict_matrix(body, doc, model, svc.settings.max_rows)
    y, seconds = compute(model, X, "instances" if "instances" in doc else "inputs")
    return X, y, seconds


def infer_rows(
    svc: Service, model: LoadedModel, body: bytes, json_length: int | None
) -> tuple[np.ndarray, np.ndarray, float, bytes, list[tuple[str, str]]]:
    """An infer request: matrix, predictions, model seconds, response bytes and content headers.

    Records nothing; the view (and :mod:`regpipe_predict.fastpath`) records a success.
    """
    req = oip.parse_infer(body, json_length, model, svc.settings.max_rows)
    y, seconds = compute(model, req.X, "inputs[0].data")
    payload, headers = oip.infer_response(model, req, y)
    return req.X, y, seconds, payload, headers


def predict_body(model: LoadedModel, y: np.ndarray) -> bytes:
    return orjson.dumps({"predictions": y, "model": model_ref(model)}, option=JSON_OPTS)


def server_timing(start: float, model_seconds: float) -> str:
    """The ``Server-Timing`` header: time since ``start`` (``perf_counter``) and model time."""
    total_ms = (time.perf_counter() - start) * 1000
    return f"total;dur={total_ms:.3f}, model;dur={model_seconds * 1000:.3f}"


def _with_error_metric(func: Any) -> Any:
    """Count every refused prediction request in ``regpipe_prediction_errors_total``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            ModelMetrics.error(exc.reason)
            raise

    return wrapper


def error_responses(*codes: int, ref: str = ERROR_REF) -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes, for one ``@blp.doc`` per view.

    ``@blp.alt_response`` would document the same, but each one wraps the view in another
    function call per request; ``@blp.doc`` is a single wrapper however much it documents.
    """
    return {
        code: {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
        for code in codes
    }


PREDICT_BODY = {
    "required": True,
    "description": "records (`instances`) or rows in the model's feature order (`inputs`)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
}


INFER_BODY = {
    "required": True,
    "description": "OIP V2 inference request. Binary tensor extension: send the header "
    f"`{oip.HEADER_LENGTH}: <bytes of JSON>`, the JSON, then each input's raw little-endian "
    "bytes (its `parameters.binary_data_size`), in order.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}},
}


@blp.route("/predict")
class Predict(MethodView):
    @blp.doc(
        requestBody=PREDICT_BODY,
        summary="Predict for records or rows",
        responses=error_responses(400, 413, 415, 422, 503),
    )
    @blp.response(200, schemas.PredictResponse)
    @_with_error_metric
    def post(self) -> Response:
        """One prediction per row, and the model version that computed them.

        Up to ``MAX_ROWS`` rows per request; the body is checked with array operations and a
        refused body names the field at fault.
        """
        start = time.perf_counter()
        svc = service()
        model = ready_model()
        body = json_body()
        refused_already()
        X, y, seconds = predict_rows(svc, model, body)
        svc.metrics.record("rest", model, X, y, seconds)
        response = Response(predict_body(model, y), mimetype="application/json")
        response.headers["Server-Timing"] = server_timing(start, seconds)
        return response


@blp.route("/model")
class Model(MethodView):
    @blp.response(200, schemas.ModelMetadata)
    @blp.doc(responses=error_responses(503))
    def get(self) -> Response:
        """The bundle's metadata: name, version, features, target, metrics, created_at, ...

        Storage paths and library versions stay on the server.
        """
        metadata = ready_model().metadata
        return json_response({k: metadata[k] for k in MODEL_KEYS if k in metadata})


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
        return json_response({"status": "ready", "model": model_ref(ready_model())})


# --- Open Inference Protocol V2 ----------------------------------------------------------------


V2_ERRORS = functools.partial(error_responses, ref=V2_ERROR_REF)


def named_model(name: str, version: str | None = None) -> LoadedModel:
    """The served model if it has this name (and version), else a 404."""
    model = ready_model()
    if name != model.name:
        raise ApiError(
            404, f"no model named {name!r}; this server serves {model.name!r}", "name", "not_found"
        )
    if version is not None and version != model.version:
        message = f"model {name!r} has no version {version!r}; it serves {model.version!r}"
        raise ApiError(404, message, "version", "not_found")
    return model


@v2.route("")
class ServerMetadata(MethodView):
    @v2.response(200, schemas.ServerMetadata)
    def get(self) -> Response:
        """Server metadata: name, version and the protocol extensions it speaks."""
        doc = {"name": "regpipe-predict", "version": __version__, "extensions": oip.EXTENSIONS}
        return json_response(doc)


@v2.route("/health/live")
class Live(MethodView):
    @v2.response(200, schemas.Live)
    def get(self) -> Response:
        """The server is live."""
        return json_response({"live": True})


@v2.route("/health/ready")
class Ready(MethodView):
    @v2.response(200, schemas.Ready)
    @v2.doc(responses=V2_ERRORS(503))
    def get(self) -> Response:
        """The server is ready: a verified model is loaded."""
        ready_model()
        return json_response({"ready": True})


@v2.route("/models/<name>")
class ModelMetadata(MethodView):
    @v2.response(200, schemas.OipModelMetadata)
    @v2.doc(responses=V2_ERRORS(404, 503))
    def get(self, name: str, version: str | None = None) -> Response:
        """Model metadata: versions, platform, input and output tensors."""
        return json_response(oip.model_metadata(named_model(name, version)))


@v2.route("/models/<name>/versions/<version>")
class VersionedModelMetadata(ModelMetadata):
    pass


@v2.route("/models/<name>/ready")
class ModelReady(MethodView):
    @v2.response(200, schemas.ModelReady)
    @v2.doc(responses=V2_ERRORS(404, 503))
    def get(self, name: str, version: str | None = None) -> Response:
        """The named model (version) is loaded and verified."""
        return json_response({"name": named_model(name, version).name, "ready": True})


@v2.route("/models/<name>/versions/<version>/ready")
class VersionedModelReady(ModelReady):
    pass


@v2.route("/models/<name>/infer")
class Infer(MethodView):
    @v2.doc(requestBody=INFER_BODY, responses=V2_ERRORS(400, 404, 413, 415, 422, 503))
    @v2.response(200, schemas.InferResponse)
    @_with_error_metric
    def post(self, name: str, version: str | None = None) -> Response:
        """Inference on numbers of shape ``[n, n_features]`` (flat or nested, JSON or binary)."""
        start = time.perf_counter()
        svc = service()
        model = named_model(name, version)
        body, json_length = infer_body()
        refused_already()
        X, y, seconds, payload, headers = infer_rows(svc, model, body, json_length)
        svc.metrics.record("v2", model, X, y, seconds)
        response = Response(payload, headers=headers[1:], content_type=headers[0][1])
        response.headers["Server-Timing"] = server_timing(start, seconds)
        return response


@v2.route("/models/<name>/versions/<version>/infer")
class VersionedInfer(Infer):
    pass
