"""The data plane: where a predict request becomes a prediction, whatever the route or path.

Request bytes → validated ``(n, n_features)`` float64 matrix (:mod:`.inputs` for ``/predict``,
:mod:`.oip` for the Open Inference Protocol) → predictions (:meth:`LoadedModel.predict`,
refused if one overflows) → the response document (bytes and content headers), with the model
metrics recorded on success. Every entry point calls it: the ``/predict`` and ``/v2`` views
(:mod:`.routes`) and the WSGI fast path (:mod:`.fastpath`). It knows nothing of Flask or
WSGI; the HTTP side (content type, reading the body, ``Server-Timing``, error responses) is
:mod:`.http_io`. A refusal is an :class:`~regpipe_predict.errors.ApiError` (the table of
statuses and reasons is :mod:`.errors`). The shape follows KServe's ``protocol/dataplane.py``
and MLServer's ``handlers/dataplane.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from regpipe_common.bundle import PUBLIC_KEYS

from . import __version__, categories, oip
from .errors import ApiError
from .inputs import parse_json, predict_matrix
from .metrics import ModelMetrics
from .model_store import LoadedModel, ModelStore
from .settings import Settings

SERVER_NAME = "regpipe-predict"
JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class Answer:
    """A prediction's response: body, content headers (``Content-Type`` first), model time."""

    body: bytes
    headers: list[tuple[str, str]]
    model_seconds: float


class DataPlane:
    """What one worker serves: its settings, its model store and its model metrics."""

    def __init__(self, settings: Settings, store: ModelStore, metrics: ModelMetrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics

    # --- which model ---------------------------------------------------------------------

    def ready_model(self) -> LoadedModel:
        """The model to use for one whole request, or a 503 while none is loaded."""
        model = self.store.current
        if model is None:
            raise ApiError("not_ready", "no verified model is loaded yet")
        return model

    def named_model(self, name: str, version: str | None = None) -> LoadedModel:
        """The served model if it has this name (and version), else a 404."""
        model = self.ready_model()
        if name != model.name:
            message = f"no model named {name!r}; this server serves {model.name!r}"
            raise ApiError("not_found", message, "name")
        if version is not None and version != model.version:
            message = f"model {name!r} has no version {version!r}; it serves {model.version!r}"
            raise ApiError("not_found", message, "version")
        return model

    # --- predictions -----------------------------------------------------------------------

    def predict(self, model: LoadedModel, body: bytes | memoryview) -> Answer:
        """``POST /predict``: records (``instances``) or rows (``inputs``) in, predictions out."""
        doc = parse_json(body)
        if model.categories is not None:  # category features: strings -> codes
            X = categories.predict_codes(doc, model, self.settings.max_rows)
        else:
            X = predict_matrix(body, doc, model, self.settings.max_rows)
        y, seconds = compute(model, X, "instances" if "instances" in doc else "inputs")
        self.metrics.record("rest", model, X, y, seconds)
        payload = orjson.dumps({"predictions": y, "model": model_ref(model)}, option=JSON_OPTS)
        return Answer(payload, oip.JSON_TYPE, seconds)

    def infer(
        self, model: LoadedModel, body: bytes | memoryview, json_length: int | None
    ) -> Answer:
        """An OIP infer request: JSON, or a JSON header of ``json_length`` bytes then tensors."""
        req = oip.parse_infer(body, json_length, model, self.settings.max_rows)
        y, seconds = compute(model, req.X, "inputs[0].data")
        self.metrics.record("v2", model, req.X, y, seconds)
        payload, headers = oip.infer_response(model, req, y)
        return Answer(payload, headers, seconds)

    # --- documents -------------------------------------------------------------------------

    def model_document(self) -> dict[str, Any]:
        """``GET /model``: the bundle's metadata without storage paths or library versions."""
        metadata = self.ready_model().metadata
        return {k: metadata[k] for k in PUBLIC_KEYS if k in metadata}

    def readiness(self) -> dict[str, Any]:
        return {"status": "ready", "model": model_ref(self.ready_model())}

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": oip.EXTENSIONS}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        return oip.model_metadata(self.named_model(name, version))

    def model_ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        return {"name": self.named_model(name, version).name, "ready": True}


def compute(model: LoadedModel, X: np.ndarray, field: str) -> tuple[np.ndarray, float]:
    """Predictions (contiguous float64, what orjson serializes) and the model seconds."""
    start = time.perf_counter()
    y = np.ascontiguousarray(model.predict(X), dtype=np.float64)
    seconds = time.perf_counter() - start
    if not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        message = (
            f"{field}[{row}]: the prediction overflows; the values are far outside the training "
            "range"
        )
        raise ApiError("not_finite", message, f"{field}[{row}]")
    return y, seconds


def model_ref(model: LoadedModel) -> dict[str, str]:
    return {"name": model.name, "version": model.version}
