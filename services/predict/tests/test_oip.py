"""Open Inference Protocol V2 by hand: what tritonclient cannot send (test_tritonclient.py has
the real client). Flask's test client through the WSGI fast path, as gunicorn calls it."""

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
from werkzeug.test import EnvironBuilder

from regpipe_common.bundle import load_bundle
from regpipe_predict.app import create_app
from regpipe_predict.settings import Settings

INFER = f"/v2/models/{NAME}/infer"
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def app(models: Path) -> Any:
    import os

    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    settings = Settings(
        model_uri=str(models / NAME), model_poll_interval=0, max_rows=1000, max_content_length=10**6
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def client(app: Any) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def model(models: Path) -> Any:
    return load_bundle(str(models / NAME)).model


@pytest.fixture(scope="module")
def version(client: FlaskClient) -> str:
    return client.get("/readyz").get_json()["model"]["version"]


def tensor(X: np.ndarray, datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    return {"name": "input-0", "shape": list(X.shape), "datatype": datatype, "data": X.tolist()}


def binary_body(doc: dict[str, Any], *arrays: np.ndarray) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps(doc)
    data = b"".join(a.tobytes() for a in arrays)
    return header + data, {HEADER: str(len(header))}


def split_binary(response: Any) -> tuple[dict[str, Any], bytes]:
    n = int(response.headers[HEADER])
    raw = response.get_data()
    return orjson.loads(raw[:n]), raw[n:]


def test_no_content_type_is_json_and_others_are_415(client: FlaskClient, model: Any) -> None:
    X, _ = synthetic(2, seed=1)
    body = json.dumps({"inputs": [tensor(X)]})
    out = client.post(INFER, data=body)  # no Content-Type at all, as tritonclient sends
    assert out.status_code == 200, out.get_data(as_text=True)
    np.testing.assert_allclose(out.get_json()["outputs"][0]["data"], model.predict(X), rtol=1e-12)
    assert "Content-Type" in v2_error(client.post(INFER, data=body, content_type="text/csv"), 415)


def test_optional_fields_are_accepted_and_honoured(client: FlaskClient, version: str) -> None:
    X, _ = synthetic(3, seed=2)
    doc = {
        "id": "abc-1",
        "model_name": NAME,
        "model_version": version,
        "parameters": {"custom": 1},
        "inputs": [{**tensor(X), "parameters": {"content_type": "np"}}],
        "outputs": [{"name": "predict", "parameters": {"datatype": "FP32"}}],
    }
    out = client.post(INFER, json=doc).get_json()
    assert out["id"] == "abc-1" and out["model_name"] == NAME and out["model_version"] == version
    (output,) = out["outputs"]
    assert output["datatype"] == "FP32" and output["shape"] == [3]
    assert "id" not in client.post(INFER, json={"inputs": [tensor(X)]}).get_json()


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"inputs": [], "extra": 1}, "extra"),
        ({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1] * 5, "x": 1}]},
         "inputs[0].x"),
        ({"inputs": "x", "outputs": [{"name": "predict", "datatype": "FP64"}]}, "inputs"),
        ({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1] * 5}],
          "outputs": [{"name": "predict", "datatype": "FP64"}]}, "outputs[0].datatype"),
        ({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1] * 5}],
          "outputs": [{"name": "proba"}]}, "outputs[0].name"),
        ({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "BYTES", "data": ["a"] * 5}]},
         "inputs[0].datatype"),
        ({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1] * 5}],
          "parameters": {"binary_data_output": "yes"}}, "parameters.binary_data_output"),
        ({"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1] * 5}],
          "id": 7}, "id"),
    ],
)  # fmt: skip
def test_unknown_and_wrong_fields_are_named(client: FlaskClient, doc: Any, field: str) -> None:
    message = v2_error(client.post(INFER, json=doc), 422)
    assert message.startswith(field + ":"), message


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "INT64", "INT32"])
@pytest.mark.parametrize("nested", [False, True])
def test_datatypes_flat_and_nested(
    client: FlaskClient, model: Any, datatype: str, nested: bool
) -> None:
    X = np.round(synthetic(4, seed=3)[0]) if datatype.startswith("INT") else synthetic(4)[0]
    data = X.tolist() if nested else X.reshape(-1).tolist()
    doc = {"inputs": [{"name": "x", "shape": [4, 5], "datatype": datatype, "data": data}]}
    out = client.post(INFER, json=doc).get_json()["outputs"][0]
    assert out["datatype"] == "FP64"
    np.testing.assert_allclose(out["data"], model.predict(X), rtol=1e-12)


def test_binary_in_and_out(client: FlaskClient, model: Any) -> None:
    X, _ = synthetic(50, seed=4)
    doc = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [50, 5],
                "datatype": "FP32",
                "parameters": {"binary_data_size": X.size * 4},
            }
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    body, headers = binary_body(doc, X.astype("<f4"))
    response = client.post(INFER, data=body, headers=headers)  # no Content-Type
    assert response.status_code == 200, response.get_data()[:300]
    assert response.mimetype == "application/octet-stream"
    head, raw = split_binary(response)
    (output,) = head["outputs"]
    assert output["parameters"]["binary_data_size"] == len(raw) == 50 * 8 and "data" not in output
    expected = model.predict(X.astype("<f4").astype(np.float64))
    np.testing.assert_allclose(np.frombuffer(raw, "<f8"), expected, rtol=1e-12)
    # binary in, JSON out (no binary_data asked for)
    del doc["outputs"]
    body, headers = binary_body(doc, X.astype("<f4"))
    out = client.post(INFER, data=body, headers=headers).get_json()
    np.testing.assert_allclose(out["outputs"][0]["data"], expected, rtol=1e-12)


def test_binary_input_per_feature_and_binary_data_output(client: FlaskClient, model: Any) -> None:
    X, _ = synthetic(7, seed=5)
    inputs = [
        {"name": f, "shape": [7], "datatype": "FP64", "parameters": {"binary_data_size": 56}}
        for f in FEATURES
    ]
    doc = {"inputs": inputs, "parameters": {"binary_data_output": True}}
    body, headers = binary_body(doc, *(np.ascontiguousarray(X[:, i]) for i in range(5)))
    response = client.post(INFER, data=body, headers=headers)
    _, raw = split_binary(response)
    np.testing.assert_allclose(np.frombuffer(raw, "<f8"), model.predict(X), rtol=1e-12)


@pytest.mark.parametrize(
    ("size", "extra", "header", "code", "field"),
    [
        (39, b"", None, 422, "inputs[0].parameters.binary_data_size"),
        (40, b"\0" * 8, None, 400, "body"),
        (40, b"", "99999", 400, HEADER),
        (40, b"", "abc", 400, HEADER),
    ],
)
def test_binary_errors_are_named(
    client: FlaskClient, size: int, extra: bytes, header: str | None, code: int, field: str
) -> None:
    doc = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, 5],
                "datatype": "FP64",
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    body, headers = binary_body(doc, np.ones(5))
    if header is not None:
        headers[HEADER] = header
    message = v2_error(client.post(INFER, data=body + extra, headers=headers), code)
    assert message.startswith(field + ":"), message


def test_binary_non_finite_and_row_limit(client: FlaskClient) -> None:
    X = np.ones((2, 5))
    X[1, 3] = np.nan
    doc = {"inputs": [{"name": "x", "shape": [2, 5], "datatype": "FP64",
                       "parameters": {"binary_data_size": 80}}]}  # fmt: skip
    message = v2_error(
        client.post(INFER, data=binary_body(doc, X)[0], headers=binary_body(doc, X)[1]), 422
    )
    assert "row 1, column 3" in message and "finite" in message
    big = np.zeros((1001, 5))
    doc["inputs"][0].update(shape=[1001, 5], parameters={"binary_data_size": big.nbytes})
    body, headers = binary_body(doc, big)
    assert "MAX_ROWS" in v2_error(client.post(INFER, data=body, headers=headers), 413)


def test_versioned_routes(client: FlaskClient, version: str, model: Any) -> None:
    base = f"/v2/models/{NAME}/versions/{version}"
    assert client.get(base).get_json()["versions"] == [version]
    assert client.get(base + "/ready").get_json() == {"name": NAME, "ready": True}
    X, _ = synthetic(2, seed=6)
    out = client.post(base + "/infer", json={"inputs": [tensor(X)]}).get_json()
    assert out["model_version"] == version
    np.testing.assert_allclose(out["outputs"][0]["data"], model.predict(X), rtol=1e-12)
    other = f"/v2/models/{NAME}/versions/0"
    for response in (
        client.get(other),
        client.get(other + "/ready"),
        client.post(other + "/infer", json={"inputs": [tensor(X)]}),
    ):
        assert "'0'" in v2_error(response, 404)


def test_every_v2_error_has_the_protocol_body(client: FlaskClient) -> None:
    assert "'nope'" in v2_error(client.get("/v2/models/nope"), 404)
    assert "'nope'" in v2_error(client.get("/v2/models/nope/ready"), 404)
    assert "'nope'" in v2_error(client.post("/v2/models/nope/infer", json={"inputs": []}), 404)
    assert v2_error(client.get("/v2/no/such/route"), 404)
    response = client.get(INFER)
    assert v2_error(response, 405) and "POST" in response.headers["Allow"]
    assert "malformed JSON" in v2_error(client.post(INFER, data=b"{"), 400)
    # /predict keeps its richer body
    assert client.get("/predict").get_json()["error"]["reason"] == "method_not_allowed"


def wsgi_call(wsgi_app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple:
    environ = EnvironBuilder(path=path, method="POST", data=body, headers=headers).get_environ()
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        got["status"] = status
        got["headers"] = sorted((k, re.sub(r"dur=[0-9.]+", "dur=X", v)) for k, v in headers)

    payload = b"".join(wsgi_app(environ, start_response))
    return got["status"], got["headers"], payload


def test_fast_path_answers_infer_exactly_as_flask(app: Any, version: str) -> None:
    """JSON and binary infer, plain and versioned: the fast path's bytes are Flask's."""
    fast, flask_only = app.wsgi_app, app.wsgi_app.wsgi_app
    X, _ = synthetic(3, seed=7)
    json_doc = orjson.dumps({"id": "7", "inputs": [tensor(X)]})
    bin_doc = {"inputs": [{"name": "x", "shape": [3, 5], "datatype": "FP64",
                           "parameters": {"binary_data_size": 120}}],
               "parameters": {"binary_data_output": True}}  # fmt: skip
    cases = [
        (INFER, json_doc, {}),
        (INFER, json_doc, {"Content-Type": "application/json"}),
        (f"/v2/models/{NAME}/versions/{version}/infer", json_doc, {}),
        (INFER, *binary_body(bin_doc, X)),
        (INFER, b'{"inputs": []}', {}),
    ]
    for path, body, headers in cases:
        got = wsgi_call(fast, path, body, headers)
        assert got == wsgi_call(flask_only, path, body, headers), path
    assert got[0].startswith("422")


def test_fast_path_infer_lands_in_the_exporters_series(app: Any, version: str) -> None:
    """A fast-path infer 200 is counted under its URL rule, as the Flask view's would be."""
    X, _ = synthetic(2, seed=8)
    body = orjson.dumps({"inputs": [tensor(X)]})

    def count(rule: str) -> float:
        text = app.test_client().get("/metrics").get_data(as_text=True)
        labels = f'method="POST",status="200",url_rule="{rule}"'
        match = re.search(
            rf"^flask_http_request_duration_seconds_count\{{{re.escape(labels)}\}} (\S+)$",
            text,
            re.MULTILINE,
        )
        return float(match.group(1)) if match else 0.0

    plain, versioned = "/v2/models/<name>/infer", "/v2/models/<name>/versions/<version>/infer"
    before = count(plain), count(versioned)
    assert wsgi_call(app.wsgi_app, INFER, body, {})[0] == "200 OK"
    path = f"/v2/models/{NAME}/versions/{version}/infer"
    assert wsgi_call(app.wsgi_app, path, body, {})[0] == "200 OK"
    assert (count(plain), count(versioned)) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize(("where", "value"), [(-1, "x"), (0, "x"), (9000, None), (-1, [1, 2])])
def test_long_json_tensors_are_refused_naming_the_data(
    app: Any, nested: bool, where: int, value: Any
) -> None:
    """Over one conversion chunk (8,192 items): a bad item anywhere is a 422 naming the data."""
    from regpipe_predict import oip
    from regpipe_predict.errors import ApiError
    from regpipe_predict.model_store import prepare

    model = prepare(load_bundle(str(Path(app.extensions["regpipe"].settings.model_uri))))
    n = 20_000
    rows: list[Any] = [[1.5, 2.0, 3.0, 4.0, 5.0] for _ in range(n)]
    if nested:
        rows[where] = [1.5, 2.0, 3.0, 4.0, value]
        data: list[Any] = rows
    else:
        data = [v for row in rows for v in row]
        data[where] = value
    doc = {"inputs": [{"name": "x", "shape": [n, 5], "datatype": "FP64", "data": data}]}
    with pytest.raises(ApiError) as refused:
        oip.parse_infer(orjson.dumps(doc), None, model, n)
    assert refused.value.code == 422 and refused.value.field == "inputs[0].data"
    good = {"inputs": [{"name": "x", "shape": [n, 5], "datatype": "FP64", "data": rows}]}
    if not nested:
        good["inputs"][0]["data"] = [1.5, 2.0, 3.0, 4.0, 5.0] * n
    else:
        good["inputs"][0]["data"] = [[1.5, 2.0, 3.0, 4.0, 5.0]] * n
    assert oip.parse_infer(orjson.dumps(good), None, model, n).X.shape == (n, 5)


def test_irregular_rows_across_chunks_are_refused(app: Any) -> None:
    from regpipe_predict import oip
    from regpipe_predict.errors import ApiError
    from regpipe_predict.model_store import prepare

    model = prepare(load_bundle(app.extensions["regpipe"].settings.model_uri))
    data = [[1.0] * 5] * 8192 + [[1.0] * 4] * 8192
    doc = {"inputs": [{"name": "x", "shape": [16384, 5], "datatype": "FP64", "data": data}]}
    with pytest.raises(ApiError, match="regular"):
        oip.parse_infer(orjson.dumps(doc), None, model, 20_000)
