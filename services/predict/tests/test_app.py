"""The app through Flask's test client: routes, payload forms, OIP shapes, every error case."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from flask.testing import FlaskClient
from predict_helpers import FEATURES, NAME, synthetic, v2_error
from sklearn.linear_model import LinearRegression
from werkzeug.test import EnvironBuilder

from regpipe_common.bundle import Bundle, load_bundle
from regpipe_predict.app import create_app
from regpipe_predict.fastpath import PredictFastPath
from regpipe_predict.inputs import predict_matrix
from regpipe_predict.model_store import prepare
from regpipe_predict.settings import Settings

MAX_ROWS = 1000


@pytest.fixture(scope="module")
def client(models: Path, monkeypatch_module: Any) -> FlaskClient:
    settings = Settings(
        model_uri=str(models / NAME),
        model_poll_interval=0,
        max_rows=MAX_ROWS,
        max_content_length=200_000,
    )
    return create_app(settings).test_client()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    mp = pytest.MonkeyPatch()
    mp.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def model(models: Path) -> Any:
    return load_bundle(str(models / NAME)).model


def post(client: FlaskClient, path: str, doc: Any) -> Any:
    return client.post(path, data=json.dumps(doc), content_type="application/json")


def records(X: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(FEATURES, map(float, row), strict=True)) for row in X]


def error(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()["error"]
    assert body["code"] == code and body["message"] and body["reason"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


# --- /predict ------------------------------------------------------------------------------


def test_records_and_rows_equal_model_predict(client: FlaskClient, model: Any) -> None:
    X, _ = synthetic(50, seed=3)
    expected = model.predict(X)
    by_records = post(client, "/predict", {"instances": records(X)}).get_json()
    by_rows = post(client, "/predict", {"inputs": X.tolist()}).get_json()
    np.testing.assert_allclose(by_records["predictions"], expected, rtol=1e-12, atol=1e-12)
    assert by_rows["predictions"] == by_records["predictions"]
    assert by_rows["model"]["name"] == NAME
    assert re.fullmatch(r"\d{8}T\d+Z-[0-9a-f]{6}", by_rows["model"]["version"])


def test_one_row_and_integers(client: FlaskClient, model: Any) -> None:
    row = {"dep_delay": 5, "distance": 1000, "air_time": 150, "hour": 13, "month": 6}
    got = post(client, "/predict", {"instances": [row]}).get_json()["predictions"]
    expected = model.predict(np.array([[row[f] for f in FEATURES]], dtype=float))
    assert got == pytest.approx(list(expected), rel=1e-12)


def test_feature_order_of_records_does_not_matter(client: FlaskClient) -> None:
    X, _ = synthetic(3, seed=4)
    shuffled = [dict(reversed(list(r.items()))) for r in records(X)]
    a = post(client, "/predict", {"instances": records(X)}).get_json()["predictions"]
    b = post(client, "/predict", {"instances": shuffled}).get_json()["predictions"]
    assert a == b


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        (
            {"instances": [{"dep_delay": 1, "distance": 2, "air_time": 3, "hour": 4}]},
            "instances[0].month",
            "missing_feature",
        ),
        (
            {"instances": [{**dict.fromkeys(FEATURES, 1.0), "wind": 3}]},
            "instances[0].wind",
            "unknown_feature",
        ),
        (
            {
                "instances": [
                    dict.fromkeys(FEATURES, 1.0),
                    {**dict.fromkeys(FEATURES, 1.0), "hour": "13"},
                ]
            },
            "instances[1].hour",
            "wrong_type",
        ),
        (
            {"instances": [{**dict.fromkeys(FEATURES, 1.0), "hour": True}]},
            "instances[0].hour",
            "wrong_type",
        ),
        (
            {"instances": [{**dict.fromkeys(FEATURES, 1.0), "hour": None}]},
            "instances[0].hour",
            "wrong_type",
        ),
        ({"instances": [1.0]}, "instances[0]", "wrong_type"),
        ({"instances": {"dep_delay": 1}}, "instances", "wrong_type"),
        ({"inputs": [[1, 2, 3, 4]]}, "inputs[0]", "row_length"),
        ({"inputs": [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]}, "inputs[1]", "row_length"),
        ({"inputs": [[1, 2, "x", 4, 5]]}, "inputs[0][2]", "wrong_type"),
        ({"inputs": [[1, 2, 3, 4, 1e16]]}, "inputs[0][4]", "out_of_range"),
        ({"inputs": []}, "inputs", "empty"),
        ({"instances": []}, "instances", "empty"),
        (
            {"inputs": [[1, 2, 3, 4, 5]], "instances": [dict.fromkeys(FEATURES, 1.0)]},
            "body",
            "invalid",
        ),
        ({}, "body", "invalid"),
        ({"rows": [[1, 2, 3, 4, 5]]}, "rows", "unknown_field"),
        ([1, 2], "body", "wrong_type"),
    ],
)
def test_bad_bodies_name_the_field(client: FlaskClient, doc: Any, field: str, reason: str) -> None:
    body = error(post(client, "/predict", doc), 422)
    assert body["field"] == field
    assert body["reason"] == reason
    assert field in body["message"] or field == "body"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_values_name_the_field(client: FlaskClient, token: str) -> None:
    raw = (
        '{"instances": [{"dep_delay": TOKEN, "distance": 1, "air_time": 1, "hour": 1, "month": 1}]}'
    )
    response = client.post(
        "/predict", data=raw.replace("TOKEN", token), content_type="application/json"
    )
    body = error(response, 422)
    assert body["field"] == "instances[0].dep_delay"
    assert body["reason"] == "not_finite"
    rows = client.post(
        "/predict", data=f'{{"inputs": [[1, 2, {token}, 4, 5]]}}', content_type="application/json"
    )
    assert error(rows, 422)["field"] == "inputs[0][2]"


def test_malformed_json(client: FlaskClient) -> None:
    body = error(
        client.post("/predict", data=b'{"inputs": [[1,', content_type="application/json"), 400
    )
    assert body["field"] == "body" and body["reason"] == "malformed_json"
    assert error(client.post("/predict", data=b"", content_type="application/json"), 400)


def test_wrong_content_type(client: FlaskClient) -> None:
    response = client.post("/predict", data='{"inputs": [[1,2,3,4,5]]}', content_type="text/plain")
    body = error(response, 415)
    assert body["field"] == "Content-Type"
    assert error(client.post("/predict", data="inputs=1"), 415)["reason"] == "content_type"


def test_too_many_rows_is_413(client: FlaskClient) -> None:
    body = error(post(client, "/predict", {"inputs": [[1, 2, 3, 4, 5]] * (MAX_ROWS + 1)}), 413)
    assert body["reason"] == "too_many_rows" and str(MAX_ROWS) in body["message"]


def test_body_over_limit_is_413(client: FlaskClient) -> None:
    big = b'{"inputs": [' + b"[1,2,3,4,5]," * 20_000 + b"[1,2,3,4,5]]}"
    body = error(client.post("/predict", data=big, content_type="application/json"), 413)
    assert body["field"] == "body" and body["reason"] == "body_too_large"


def test_404_and_405_are_json(client: FlaskClient) -> None:
    assert error(client.get("/nope"), 404)["reason"] == "not_found"
    response = client.get("/predict")
    assert error(response, 405)["reason"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


# --- the other routes ------------------------------------------------------------------------


def test_model_metadata_and_probes(client: FlaskClient) -> None:
    meta = client.get("/model").get_json()
    assert meta["name"] == NAME and meta["features"] == FEATURES and "sha256" in meta
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["model"]["version"] == meta["version"]


def test_openapi_is_built_from_the_features(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    instance = spec["components"]["schemas"]["Instance"]
    assert list(instance["properties"]) == FEATURES
    assert sorted(instance["required"]) == sorted(FEATURES)
    assert instance["additionalProperties"] is False
    assert spec["components"]["schemas"]["Row"]["minItems"] == len(FEATURES)
    examples = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    example = examples["records"]["value"]
    assert post(client, "/predict", example).status_code == 200
    assert post(client, "/predict", examples["rows"]["value"]).status_code == 200
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    assert (
        post(client, f"/v2/models/{NAME}/infer", infer["application/json"]["example"]).status_code
        == 200
    )
    for path in ("/v2/models/{name}/infer", "/model", "/readyz", "/v2/health/ready"):
        assert path in spec["paths"]


def test_swagger_ui_is_served_from_the_package(client: FlaskClient) -> None:
    page = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    assert "http://" not in page and "https://" not in page
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.data) > 1000
    assert '"validatorUrl": null' in page  # no call to the public validator either


# --- Open Inference Protocol V2 ----------------------------------------------------------------


def test_oip_health_and_metadata(client: FlaskClient) -> None:
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    ready = client.get(f"/v2/models/{NAME}/ready").get_json()
    assert ready == {"name": NAME, "ready": True}
    meta = client.get(f"/v2/models/{NAME}").get_json()
    assert meta["name"] == NAME and meta["platform"] == "sklearn"
    assert meta["inputs"][0]["shape"] == [-1, len(FEATURES)]
    server = client.get("/v2").get_json()
    assert server["name"] == "regpipe-predict" and "binary_tensor_data" in server["extensions"]
    assert "'other'" in v2_error(client.get("/v2/models/other"), 404)


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
@pytest.mark.parametrize("nested", [False, True])
def test_oip_infer_shapes(client: FlaskClient, model: Any, datatype: str, nested: bool) -> None:
    X, _ = synthetic(4, seed=5)
    data = X.tolist() if nested else X.reshape(-1).tolist()
    doc = {
        "id": "req-1",
        "inputs": [{"name": "input-0", "shape": [4, 5], "datatype": datatype, "data": data}],
    }
    out = post(client, f"/v2/models/{NAME}/infer", doc).get_json()
    assert out["model_name"] == NAME and out["id"] == "req-1" and out["model_version"]
    (tensor,) = out["outputs"]
    assert tensor["name"] == "predict" and tensor["datatype"] == "FP64" and tensor["shape"] == [4]
    np.testing.assert_allclose(tensor["data"], model.predict(X), rtol=1e-12)


def test_oip_one_input_per_feature(client: FlaskClient, model: Any) -> None:
    X, _ = synthetic(3, seed=6)
    inputs = [
        {"name": f, "shape": [3, 1], "datatype": "FP64", "data": X[:, i].tolist()}
        for i, f in reversed(list(enumerate(FEATURES)))
    ]
    out = post(client, f"/v2/models/{NAME}/infer", {"inputs": inputs}).get_json()
    np.testing.assert_allclose(out["outputs"][0]["data"], model.predict(X), rtol=1e-12)


@pytest.mark.parametrize(
    ("tensor", "field", "reason"),
    [
        (
            {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]},
            "inputs[0].shape",
            "row_length",
        ),
        (
            {"name": "x", "shape": [2, 5], "datatype": "FP64", "data": [1, 2, 3, 4, 5]},
            "inputs[0].data",
            "invalid",
        ),
        (
            {"name": "x", "shape": [1, 5], "datatype": "BYTES", "data": [1, 2, 3, 4, 5]},
            "inputs[0].datatype",
            "wrong_type",
        ),
        (
            {"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1, 2, True, 4, 5]},
            "inputs[0].data",
            "wrong_type",
        ),
        (
            {"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1, 2, "a", 4, 5]},
            "inputs[0].data",
            "wrong_type",
        ),
        (
            {"name": "x", "shape": [0, 5], "datatype": "FP64", "data": []},
            "inputs[0].shape[0]",
            "empty",
        ),
        (
            {"name": "x", "shape": "1,5", "datatype": "FP64", "data": [1]},
            "inputs[0].shape",
            "wrong_shape",
        ),
        ({"name": "x", "shape": [1, 5], "datatype": "FP64"}, "inputs[0].data", "missing_field"),
    ],
)
def test_oip_errors(client: FlaskClient, tensor: dict, field: str, reason: str) -> None:
    message = v2_error(post(client, f"/v2/models/{NAME}/infer", {"inputs": [tensor]}), 422)
    assert message.startswith(field + ":"), message


def test_oip_non_finite_and_too_many_rows(client: FlaskClient) -> None:
    raw = '{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1,2,NaN,4,5]}]}'
    response = client.post(f"/v2/models/{NAME}/infer", data=raw, content_type="application/json")
    assert "finite" in v2_error(response, 422)
    n = MAX_ROWS + 1
    doc = {"inputs": [{"name": "x", "shape": [n, 5], "datatype": "FP64", "data": [0.0] * (5 * n)}]}
    assert "MAX_ROWS" in v2_error(post(client, f"/v2/models/{NAME}/infer", doc), 413)
    assert v2_error(post(client, f"/v2/models/{NAME}/infer", {"inputs": []}), 422)


# --- metrics helpers -----------------------------------------------------------------------------


def test_metrics_endpoint_has_the_model_metrics(client: FlaskClient) -> None:
    post(client, "/predict", {"inputs": [[1, 2, 3, 4, 5]]})
    post(client, "/predict", {"inputs": [[1, 2, 3, 4]]})
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "regpipe_predictions_total",
        "regpipe_rows_predicted_total",
        "regpipe_prediction_errors_total",
        "regpipe_model_compute_seconds_bucket",
        "regpipe_predicted_value_bucket",
        "regpipe_model_info",
        "regpipe_feature_drift",
        "flask_http_request_duration_seconds_bucket",
    ):
        assert name in text, name
    assert 'url_rule="/v2/models/<name>/infer"' in text or 'url_rule="/predict"' in text
    assert 'regpipe_prediction_errors_total{reason="row_length"}' in text


def test_a_valid_body_containing_true_is_still_served() -> None:
    """The boolean guard (a body with "true" in it) must not refuse valid bodies."""
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    fitted = LinearRegression().fit(X, X @ [2.0, 3.0])
    model = prepare(
        Bundle(fitted, {"name": "m", "version": "1", "features": ["is_true", "x"]}, "u")
    )
    body = b'{"instances": [{"is_true": 1.0, "x": 2.0}]}'
    got = predict_matrix(body, orjson.loads(body), model, 10)
    assert got.tolist() == [[1.0, 2.0]]
    assert model.predict(got) == pytest.approx([8.0])


def test_a_pinned_version_is_served_as_is(models: Path, tmp_path: Path) -> None:
    version = (models / NAME / "LATEST").read_text().strip()
    settings = Settings(model_uri=str(models / NAME / version), model_poll_interval=0)
    pinned = create_app(settings).test_client()
    assert pinned.get("/readyz").get_json()["model"]["version"] == version


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from regpipe_common.errors import RegpipeError
    from regpipe_predict.settings import from_env

    monkeypatch.delenv("MODEL_URI", raising=False)
    with pytest.raises(RegpipeError, match="MODEL_URI"):
        from_env()
    monkeypatch.setenv("MODEL_URI", "s3://bucket/models/flights")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("MAX_ROWS", "500")
    s = from_env()
    assert (s.model_uri, s.workers, s.max_rows, s.host, s.port) == (
        "s3://bucket/models/flights",
        3,
        500,
        "0.0.0.0",
        8080,
    )
    monkeypatch.setenv("MAX_ROWS", "0")
    with pytest.raises(RegpipeError, match="MAX_ROWS"):
        from_env()


# --- the POST /predict fast path -------------------------------------------------------------


def wsgi_call(wsgi_app: Any, body: bytes, content_type: str = "application/json") -> tuple:
    """Status, headers (Server-Timing durations masked) and body of one POST /predict."""
    environ = EnvironBuilder(
        path="/predict", method="POST", data=body, content_type=content_type
    ).get_environ()
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        got["status"] = status
        got["headers"] = [(k, re.sub(r"dur=[0-9.]+", "dur=X", v)) for k, v in headers]

    payload = b"".join(wsgi_app(environ, start_response))
    return got["status"], got["headers"], payload


class CountingApp:
    """Stands between the fast path and Flask, counting what falls through."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app
        self.calls = 0

    def __call__(self, environ: Any, start_response: Any) -> Any:
        self.calls += 1
        return self.wsgi_app(environ, start_response)


@pytest.fixture
def fast_app(models: Path, monkeypatch_module: Any) -> Any:
    """A fresh app (its own HTTP metrics) whose fast path counts the requests it passes on."""
    settings = Settings(
        model_uri=str(models / NAME), model_poll_interval=0, max_rows=10, max_content_length=5000
    )
    app = create_app(settings)
    assert isinstance(app.wsgi_app, PredictFastPath)
    app.wsgi_app.wsgi_app = CountingApp(app.wsgi_app.wsgi_app)
    return app


ONE_ROW = json.dumps({"instances": records(synthetic(1)[0])}).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "handled"),
    [
        (ONE_ROW, "application/json", True),
        (json.dumps({"inputs": synthetic(3)[0].tolist()}).encode(), "application/json", True),
        (b'{"inputs": [[1, 2, 3, 4, 5]]}', "application/json", True),  # integers
        (ONE_ROW, "application/json; charset=utf-8", False),
        (ONE_ROW, "text/plain", False),
        (b"", "application/json", False),
        (b'{"inputs": [[1,', "application/json", False),
        (b"[1, 2]", "application/json", False),
        (b'{"inputs": [[1, 2, 3, 4]]}', "application/json", False),
        (b'{"inputs": [[1, 2, 3, 4, true]]}', "application/json", False),
        (b'{"inputs": [[1, 2, 3, 4, NaN]]}', "application/json", False),
        (b'{"inputs": [[1e300, 1e300, 1e300, 1e300, 1e300]]}', "application/json", False),
        (json.dumps({"inputs": [[1, 2, 3, 4, 5]] * 11}).encode(), "application/json", False),
        (b'{"inputs": [' + b"[1,2,3,4,5]," * 500 + b"[1,2,3,4,5]]}", "application/json", False),
    ],
)
def test_fast_path_answers_exactly_as_flask(
    fast_app: Any, body: bytes, content_type: str, handled: bool
) -> None:
    """Same status, headers and bytes as the Flask view; only valid bodies are answered here."""
    flask_only = fast_app.wsgi_app.wsgi_app.wsgi_app
    expected = wsgi_call(flask_only, body, content_type)
    got = wsgi_call(fast_app.wsgi_app, body, content_type)
    assert got == expected
    assert fast_app.wsgi_app.wsgi_app.calls == (0 if handled else 1)
    if handled:
        assert got[0] == "200 OK"
        assert dict(got[1])["Server-Timing"] == "total;dur=X, model;dur=X"


def test_fast_path_passes_on_other_routes_and_no_model(models: Path, tmp_path: Path) -> None:
    app = create_app(Settings(model_uri=str(tmp_path / "none"), model_poll_interval=0), False)
    app.wsgi_app.wsgi_app = counting = CountingApp(app.wsgi_app.wsgi_app)
    client = app.test_client()
    assert error(post(client, "/predict", {"inputs": [[1, 2, 3, 4, 5]]}), 503)["reason"] == (
        "not_ready"
    )
    assert error(client.get("/predict"), 405)
    assert client.get("/healthz").status_code == 200
    assert counting.calls == 3


def test_fast_path_records_the_exporters_http_metrics(fast_app: Any) -> None:
    """A fast-path 200 lands in the very series prometheus-flask-exporter writes for the view."""
    flask_only = fast_app.wsgi_app.wsgi_app.wsgi_app
    before = fast_app.test_client().get("/metrics").get_data(as_text=True)
    assert wsgi_call(fast_app.wsgi_app, ONE_ROW)[0] == "200 OK"  # fast path
    assert wsgi_call(flask_only, ONE_ROW)[0] == "200 OK"  # the Flask view and the exporter
    assert wsgi_call(fast_app.wsgi_app, b"{")[0].startswith("400")  # falls through
    text = fast_app.test_client().get("/metrics").get_data(as_text=True)
    assert fast_app.wsgi_app.wsgi_app.calls == 3  # the 400 and the two GET /metrics
    assert "flask_http_request_total{" not in before

    def sample(name: str, labels: str) -> float:
        match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
        assert match, (name, labels, text)
        return float(match.group(1))

    ok = 'method="POST",status="200",url_rule="/predict"'
    assert sample("flask_http_request_duration_seconds_count", ok) == 2
    assert sample("flask_http_request_duration_seconds_bucket", 'le="+Inf",' + ok) == 2
    assert sample("flask_http_request_total", 'method="POST",status="200"') == 2
    bad = 'method="POST",status="400",url_rule="/predict"'
    assert sample("flask_http_request_duration_seconds_count", bad) == 1
    assert sample("flask_http_request_total", 'method="POST",status="400"') == 1


# --- invalid bodies are explained at the cost of a valid one (issue 8, item 4) --------------

GOOD = dict(zip(FEATURES, [10.0, 900.0, 120.0, 13.0, 6.0], strict=True))
BAD_RECORDS = {
    "string": ({**GOOD, "hour": "13"}, "hour", "wrong_type"),
    "null": ({**GOOD, "distance": None}, "distance", "wrong_type"),
    "boolean": ({**GOOD, "month": True}, "month", "wrong_type"),
    "out of range": ({**GOOD, "air_time": -1e16}, "air_time", "out_of_range"),
    "missing": ({k: v for k, v in GOOD.items() if k != "dep_delay"}, "dep_delay", "missing"),
    "unknown": ({**GOOD, "wind": 3.0}, "wind", "unknown_feature"),
    "not an object": ([1, 2, 3, 4, 5], "", "wrong_type"),
}
BAD_ROWS = {
    "string": ([1, 2, "x", 4, 5], "[2]", "wrong_type"),
    "boolean": ([1, 2, 3, False, 5], "[3]", "wrong_type"),
    "short": ([1, 2, 3, 4], "", "row_length"),
    "long": ([1, 2, 3, 4, 5, 6], "", "row_length"),
    "nested": ([[1], 2, 3, 4, 5], "[0]", "wrong_type"),
    "out of range": ([1, 2, 3, 4, 1e300], "[4]", "out_of_range"),
}


@pytest.fixture
def schema_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each marshmallow run saw (the real schema still runs)."""
    from regpipe_predict import schemas

    seen: list[int] = []
    real = schemas._first_error

    def counting(schema: Any, doc: Any, key: Any, offset: int) -> Any:
        seen.append(max((len(v) for v in doc.values() if isinstance(v, list)), default=1))
        return real(schema, doc, key, offset)

    monkeypatch.setattr(schemas, "_first_error", counting)
    return seen


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("kind", sorted(BAD_RECORDS))
def test_first_bad_record_is_named_wherever_it_is(
    client: FlaskClient, schema_rows: list[int], kind: str, where: str
) -> None:
    bad, feature, reason = BAD_RECORDS[kind]
    n = MAX_ROWS // 2
    index = {"first": 0, "middle": n // 2 + 7, "last": n - 1}[where]
    rows: list[Any] = [GOOD] * n
    rows[index] = bad
    if index + 1 < n:
        rows[index + 1] = {**GOOD, "hour": "later"}  # a second bad row: the first is named
    body = error(post(client, "/predict", {"instances": rows}), 422)
    field = f"instances[{index}]" + (f".{feature}" if feature else "")
    assert body["field"] == field and body["message"].startswith(field + ":")
    assert body["reason"] == reason or (reason == "missing" and body["reason"].startswith(reason))
    assert schema_rows == [1]  # marshmallow saw only the bad row


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_first_bad_row_is_named_wherever_it_is(
    client: FlaskClient, schema_rows: list[int], kind: str, where: str
) -> None:
    bad, suffix, reason = BAD_ROWS[kind]
    n = MAX_ROWS
    index = {"first": 0, "middle": n // 2 + 3, "last": n - 1}[where]
    rows: list[Any] = [[1.5, 2, 3, 4, 5]] * n
    rows[index] = bad
    body = error(post(client, "/predict", {"inputs": rows}), 422)
    assert (body["field"], body["reason"]) == (f"inputs[{index}]{suffix}", reason)
    assert schema_rows == [1]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "1e400"])
def test_non_finite_in_a_late_row_is_named(client: FlaskClient, token: str) -> None:
    rows = ",".join(["[1,2,3,4,5]"] * 700 + [f"[1,2,3,{token},5]"] + ["[1,2,3,4,5]"] * 10)
    response = client.post(
        "/predict", data=f'{{"inputs": [{rows}]}}', content_type="application/json"
    )
    body = error(response, 422)
    assert (body["field"], body["reason"]) == ("inputs[700][3]", "not_finite")


def test_a_lone_surrogate_key_is_a_422(client: FlaskClient) -> None:
    raw = b'{"inputs": [[1, 2, 3, 4, 5]], "\\udfff": 1}'
    body = error(client.post("/predict", data=raw, content_type="application/json"), 422)
    assert body["reason"] == "unknown_field" and body["field"] == "\\udfff"
    record = (
        b'{"instances": [{"\\ud800x": 1, "distance": 1, "air_time": 1, "hour": 1, "month": 1}]}'
    )
    assert error(client.post("/predict", data=record, content_type="application/json"), 422)
    tensor = (
        b'{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", '
        b'"data": [1, 2, 3, 4, 5], "\\udfff": 0}]}'
    )
    message = v2_error(client.post(f"/v2/models/{NAME}/infer", data=tensor), 422)
    assert message.startswith("inputs[0].\\udfff")


def test_model_metadata_and_metrics_hide_paths_and_versions(
    tmp_path: Path, monkeypatch_module: Any
) -> None:
    from predict_helpers import make_model, metadata

    from regpipe_common.bundle import publish_bundle

    model = make_model()
    meta = {**metadata(model), "dataset": "s3://secret-bucket/prepared/flights"}
    publish_bundle(str(tmp_path), NAME, model, meta)
    app = create_app(Settings(model_uri=str(tmp_path / NAME), model_poll_interval=0))
    client = app.test_client()
    shown = client.get("/model").get_json()
    text = json.dumps(shown)
    assert "secret-bucket" not in text and str(tmp_path) not in text
    assert "library_versions" not in shown and "scikit-learn" not in text
    for key in ("name", "version", "features", "target", "metrics", "created_at", "sha256"):
        assert key in shown, key
    assert shown["features"] == FEATURES and shown["target"] == "arr_delay"
    post(client, "/predict", {"inputs": [[1, 2, 3, 4, 5]]})
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "flask_exporter_info" not in metrics and "python_info" not in metrics
    assert 'version="0.' not in metrics and "regpipe_predictions_total" in metrics


@pytest.mark.parametrize("index", [0, 1023, 1024, 2500, 4095, 4999])
@pytest.mark.parametrize("kind", ["string", "boolean", "short", "out of range"])
def test_bad_row_across_conversion_chunks(
    models: Path, schema_rows: list[int], index: int, kind: str
) -> None:
    """Bodies over one conversion chunk (1,024 rows): the bad row is still the one named."""
    from regpipe_predict.errors import ApiError

    model = prepare(load_bundle(str(models / NAME)))
    bad, suffix, reason = BAD_ROWS[kind]
    rows: list[Any] = [[1.5, 2, 3, 4, 5]] * 5000
    rows[index] = bad
    body = orjson.dumps({"inputs": rows})
    with pytest.raises(ApiError) as refused:
        predict_matrix(body, orjson.loads(body), model, 5000)
    assert (refused.value.field, refused.value.reason) == (f"inputs[{index}]{suffix}", reason)
    assert schema_rows == [1]
    good = orjson.dumps({"inputs": [[1.5, 2, 3, 4, 5]] * 4999 + [[1, 2, 3, 4, 5]]})
    X = predict_matrix(good, orjson.loads(good), model, 5000)
    assert X.shape == (5000, 5) and X[-1].tolist() == [1, 2, 3, 4, 5]
