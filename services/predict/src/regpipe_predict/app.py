"""The Flask application factory: API, OpenAPI + Swagger UI, metrics, errors, model store."""

from __future__ import annotations

import swagger_ui_bundle
from flask import Flask, Response, send_from_directory

from regpipe_common.log import configure_logging

from . import __version__, metrics, report_route, routes, schemas
from .adapters.flask import SyncFlask
from .dataplane import DataPlane
from .fastpath import PredictFastPath
from .http_io import register_error_handlers
from .model_store import ModelStore
from .openapi import ModelApi
from .settings import Settings, from_env

SWAGGER_ASSETS = "/docs/assets/"


def _swagger_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)


def create_app(settings: Settings | None = None, start_store: bool = True) -> Flask:
    """Build the app for one worker; the model loads now (if it is there) and is then polled."""
    configure_logging()
    settings = settings or from_env()
    app = SyncFlask("regpipe_predict")
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
    register_error_handlers(app)
    exporter = metrics.init_app(app)
    model_metrics = metrics.ModelMetrics(settings.drift_window_rows, settings.drift_update_interval)
    store = ModelStore(
        settings.model_uri,
        settings.model_poll_interval,
        model_metrics.on_swap,
        model_metrics.on_refuse,
    )
    dp = app.extensions["regpipe"] = DataPlane(settings, store, model_metrics)
    app.wsgi_app = PredictFastPath(app.wsgi_app, dp, *metrics.http_request_metrics(exporter))
    if start_store:
        store.start()
    return app
