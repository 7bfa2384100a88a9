"""The OpenAPI document: request bodies and error responses the views declare, and the served
model's features filled in when ``/openapi.json`` is asked for."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Response
from flask_smorest import Api

from . import categories, oip, schemas
from .adapters.flask import serve_openapi_json
from .errors import MAX_ABS, description
from .http_io import dataplane
from .model_store import LoadedModel

ERROR_REF = "#/components/schemas/ErrorResponse"
V2_ERROR_REF = "#/components/schemas/V2Error"

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


def error_responses(*codes: int, ref: str = ERROR_REF) -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes, for one ``@blp.doc`` per view.

    ``@blp.alt_response`` would document the same, but each one wraps the view in another
    function call per request; ``@blp.doc`` is a single wrapper however much it documents.
    """
    return {
        code: {
            "description": description(code),
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
        for code in codes
    }


def v2_error_responses(*codes: int) -> dict[int, dict[str, Any]]:
    """:func:`error_responses` with the Open Inference Protocol's error body."""
    return error_responses(*codes, ref=V2_ERROR_REF)


class ModelApi(Api):
    """An Api whose ``/openapi.json`` describes the features of the model being served."""

    ERROR_SCHEMA = schemas.ErrorResponse  # the "ErrorResponse" component (ERROR_REF)
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        serve_openapi_json(app, self.openapi_json)

    def openapi_json(self) -> Response:
        doc = self.spec.to_dict()
        dp = dataplane()
        model = dp.store.current
        if model is not None:
            document_model(doc, model, self.ma_plugin, dp.settings.max_rows)
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
        "items": {"type": "number", "minimum": -MAX_ABS, "maximum": MAX_ABS},
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
        infer = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        infer["example"] = {"inputs": [tensor]}
    categories.document(doc, model, example)  # category features: strings and their levels
