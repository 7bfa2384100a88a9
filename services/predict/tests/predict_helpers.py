"""Test helpers: small published bundles; real gunicorn servers come from tests/support/net.py."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from bundles import bundle_metadata
from net import BIN, Server, serve_predict  # noqa: F401 (BIN, Server: for the predict tests)
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regpipe_common.bundle import library_versions, new_version, publish_bundle, sha256_hex

FEATURES = ["dep_delay", "distance", "air_time", "hour", "month"]
NAME = "flights"
serve = serve_predict  # the predict tests' server: a real regpipe-predict (tests/support/net.py)


def synthetic(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = np.array([40.0, 700.0, 90.0, 5.0, 3.5])
    locs = np.array([12.0, 1000.0, 150.0, 13.0, 6.5])
    X = locs + scales * rng.standard_normal((n, len(FEATURES)))
    y = X @ np.array([1.0, -0.01, 0.05, 0.3, -0.2]) + rng.normal(0, 1, n)
    return X, y


def make_model(seed: int = 0) -> Pipeline:
    X, y = synthetic(seed=seed)
    model = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor(random_state=seed))])
    return model.fit(X, y)


def metadata(model: Pipeline) -> dict[str, Any]:
    X, y = synthetic()
    return bundle_metadata(X, y, FEATURES, "arr_delay", "test")


def publish(models: Path, seed: int = 0) -> str:
    model = make_model(seed)
    return publish_bundle(str(models), NAME, model, metadata(model))


def write_raw_bundle(models: Path, payload: bytes, meta: dict[str, Any]) -> str:
    """A version folder written as an attacker (or a broken tool) would, then LATEST moved to it.

    Nothing is checked here: ``payload`` is stored as ``model.joblib`` with a matching sha256.
    """
    version = new_version()
    folder = models / NAME / version
    folder.mkdir(parents=True)
    (folder / "model.joblib").write_bytes(payload)
    doc = {
        **meta,
        "name": NAME,
        "version": version,
        "library_versions": library_versions(),
        "created_at": "2026-01-01T00:00:00+00:00",
        "sha256": sha256_hex(payload),
    }
    (folder / "metadata.json").write_text(json.dumps(doc))
    (models / NAME / "LATEST").write_text(version + "\n")
    return version


def joblib_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def wsgi_schema(publish_model: Callable[[Path], Any], prefix: str) -> Any:
    """schemathesis' schema of an app serving the model ``publish_model`` writes (WSGI, no
    server); a refused body (413 too, the issue asks for it) is a rejection like 400/422."""
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    from regpipe_predict.app import create_app
    from regpipe_predict.settings import Settings

    models = Path(tempfile.mkdtemp(prefix=prefix))
    publish_model(models)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    app = create_app(Settings(model_uri=str(models / NAME), model_poll_interval=0, max_rows=50))
    rejected = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": rejected}}}
    )
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


def v2_error(response: Any, code: int) -> str:
    """The message of an Open Inference Protocol error body ``{"error": "<message>"}``."""
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    return body["error"]


def gunicorn_body(sock: Any, length: int) -> Any:
    """``(unreader, body)``: a request body of ``length`` bytes as gunicorn reads it from
    ``sock`` (for the tests of the fast path's socket reads)."""
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    unreader = SocketUnreader(sock)
    return unreader, Body(LengthReader(unreader, length))
