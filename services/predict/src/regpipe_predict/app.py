"""The Flask application factory: API, OpenAPI + Swagger UI, metrics, errors, model store."""

from __future__ import annotations

from typing import Any

import orjson
import swagger_ui_bundle
from flask import Flask, Response, send_from_directory
from flask_smorest import Api

from regpipe_common.log import configure_logging

from . import __version__, categories, errors, metrics, report_route, routes, schemas
from .fastpath import PredictFastPath
from .model_store import LoadedModel, ModelStore
from .settings import Settings, from_env

SWAGGER_ASSETS = "/docs/assets/"


class App(Flask):
    """Flask without the per-call coroutine check: every view and hook here is synchronous.

    Flask (and each flask-smorest decorator) routes every view call through ``ensure_sync``,
    which asks ``inspect.iscoroutinefunction`` each time; with no async views that is pure cost.
    """

    def ensure_sync(self, func: Any) -> Any:
        return func


class ModelApi(Api):
    """An Api whose ``/openapi.json`` describes the features of the model being served."""

    ERROR_SCHEMA = schemas.ErrorResponse  # the "ErrorResponse" component (routes.ERROR_REF)
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _openapi_json(self) -> Response:
        doc = self.spec.to_dict()
        model = routes.service().store.current
        if model is not None:
            document_model(doc, model, self.ma_plugin, routes.service().settings.max_rows)
        return Response(orjson.dumps(doc), mimetype="application/json")


def document_model(doc: dict[str, Any], model: LoadedModel, ma_plugin: Any, max_rows: int) -> None:
    """Put the model's ``Instance`` schema, row length and examples into an OpenAPI dict."""
    features = model.features
    example = schemas.example_row(features, model.metadata.get("feature_stats"))
    instance = schemas.instance_schema(tuple(features), tuple(example))
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["Instance"] = ma_plugin.converter.schema2jsonschema(instance)
    components["Instance"]["additionalProperties"] = False
    components["Row"] = {
        "type": "array",
        "items": {"type": "number", "minimum": -schemas.MAX_ABS, "maximum": schemas.MAX_ABS},
        "minItems": len(features),
        "maxItems": len(features),
        "description": "feature values in order: " + ", ".join(features),
        "example": example,
    }
    request = components["PredictRequest"]
    request.update({"minProperties": 1, "maxProperties": 1, "additionalProperties": False})
    request["properties"]["instances"]["items"] = {"$ref": "#/components/schemas/Instance"}
    request["properties"]["inputs"]["items"] = {"$ref": "#/components/schemas/Row"}
    for key in ("instances", "inputs"):
        request["properties"][key].update({"minItems": 1, "maxItems": max_rows})
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = {
        "records": {"value": {"instances": [dict(zip(features, example, strict=True))]}},
        "rows": {"value": {"inputs": [example]}},
    }
    tensor = {"name": "input-0", "shape": [1, len(features)], "datatype": "FP64", "data": example}
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        infer = doc["paths"][path]["post"]["requestBody"]["content"]
        infer["application/json"]["example"] = {"inputs": [tensor]}
    categories.document(doc, model, example)  # category features: strings and their levels


def _swagger_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)


def create_app(settings: Settings | None = None, start_store: bool = True) -> Flask:
    """Build the app for one worker; the model loads now (if it is there) and is then polled."""
    configure_logging()
    settings = settings or from_env()
    app = App("regpipe_predict")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="regpipe predict",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_ASSETS,
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},  # no call to validator.swagger.io
    )
    api = ModelApi(app)
    api.spec.components.schema("PredictRequest", schema=schemas.PredictRequestDoc)
    api.spec.components.schema("InferRequest", schema=schemas.InferRequest)
    api.spec.components.schema("V2Error", schema=schemas.V2Error)
    api.register_blueprint(routes.blp)
    api.register_blueprint(routes.v2)
    api.register_blueprint(report_route.blp)
    app.add_url_rule(f"{SWAGGER_ASSETS}<path:filename>", "swagger_assets", _swagger_asset)
    errors.register(app)
    exporter = metrics.init_app(app)
    model_metrics = metrics.ModelMetrics(settings.drift_window_rows, settings.drift_update_interval)
    store = ModelStore(
        settings.model_uri,
        settings.model_poll_interval,
        model_metrics.on_swap,
        model_metrics.on_refuse,
    )
    svc = app.extensions["regpipe"] = routes.Service(settings, store, model_metrics)
    app.wsgi_app = PredictFastPath(app.wsgi_app, svc, *metrics.http_request_metrics(exporter))
    if start_store:
        store.start()
    return app
