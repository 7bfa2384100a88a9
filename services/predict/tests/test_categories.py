"""Category features served (issue 11): a real ``regpipe-predict`` (gunicorn, 2 workers) on
127.0.0.1 with a bundle built as the contract says (ColumnTransformer + OneHotEncoder)."""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from category_helpers import (
    CARRIER_KEPT,
    CAT_FEATURES,
    NUMERIC,
    ORIGINS,
    category_metadata,
    category_rows,
    publish_categories,
    records,
)
from predict_helpers import NAME, Server, publish, serve
from prometheus_client import REGISTRY
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tritonclient.utils import InferenceServerException

from regpipe_common.bundle import load_bundle, publish_bundle
from regpipe_common.spec import MISSING_LEVEL
from regpipe_predict.app import create_app
from regpipe_predict.categories import MSG_LEVEL
from regpipe_predict.fastpath import PredictFastPath
from regpipe_predict.metrics import ModelMetrics
from regpipe_predict.model_store import ModelStore, prepare
from regpipe_predict.settings import Settings


@pytest.fixture(scope="module")
def cat_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cat-models")
    publish_categories(root)
    return root


@pytest.fixture(scope="module")
def cat_server(cat_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("cat-srv")
    env = {"DRIFT_UPDATE_INTERVAL": "0", "DRIFT_WINDOW_ROWS": "100"}
    with serve(cat_models / NAME, tmp, MAX_CONTENT_LENGTH=str(16 * 2**20), **env) as srv:
        srv.wait_loaded((cat_models / NAME / "LATEST").read_text().strip())
        yield srv


@pytest.fixture(scope="module")
def model(cat_models: Path) -> Any:
    return load_bundle(str(cat_models / NAME)).model


def metric(text: str, sample: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(sample + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def mixed_rows(n: int, seed: int) -> np.ndarray:
    """Rows with kept, infrequent ("OO", "HA") and never-seen ("ZZ") carriers, missing origins."""
    rows, _ = category_rows(n, seed)
    rows[::5, 1] = "ZZ"
    rows[1::9, 3] = MISSING_LEVEL
    return rows


def as_lists(rows: np.ndarray) -> list[list[Any]]:
    return [list(r.values()) for r in records(rows)]


def error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    return response.json()["error"]


def test_served_form_is_the_lookup_and_equals_model_predict(cat_models: Path) -> None:
    bundle = load_bundle(str(cat_models / NAME))
    served = prepare(bundle)
    assert served.categories is not None and served.categories.fast is not None
    rows = mixed_rows(10_000, seed=3)
    got = served.predict(served.categories.encode_objects(rows))
    np.testing.assert_allclose(got, bundle.model.predict(rows), rtol=1e-12)


def test_records_and_rows_equal_model_predict(cat_server: Server, model: Any) -> None:
    rows = mixed_rows(50, seed=1)
    expected = model.predict(rows)
    for body in ({"instances": records(rows)}, {"inputs": as_lists(rows)}):
        response = cat_server.post("/predict", json=body)
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-12)


def test_10k_rows_equal_model_predict(cat_server: Server, model: Any) -> None:
    rows = mixed_rows(10_000, seed=2)
    response = cat_server.post("/predict", json={"instances": records(rows)})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], model.predict(rows), rtol=1e-12)


def test_unseen_levels_are_the_intercepts_effect(cat_server: Server, model: Any) -> None:
    rows = mixed_rows(3, seed=4)
    rows[:, 1] = ["ZZ", "OO", ""]  # never seen, infrequent, empty: all encoded as zeros
    response = cat_server.post("/predict", json={"instances": records(rows)})
    predictions = response.json()["predictions"]
    np.testing.assert_allclose(predictions, model.predict(rows), rtol=1e-12)
    encoded = model[0].transform(rows)
    assert not encoded[:, 2 : 2 + len(CARRIER_KEPT)].any()


@pytest.mark.parametrize(
    ("change", "field", "reason", "text"),
    [
        (("instances", 1, "carrier", 7), "instances[1].carrier", "wrong_type", "must be a string"),
        (("instances", 2, "dep_delay", "12"), "instances[2].dep_delay", "wrong_type", "number"),
        (("instances", 0, "carrier", None), "instances[0].carrier", "wrong_type", "string"),
        (("instances", 0, "carrier", True), "instances[0].carrier", "wrong_type", "string"),
        (("instances", 1, "distance", None), "instances[1].distance", "wrong_type", "number"),
        (("inputs", 1, 1, 3.5), "inputs[1][1]", "wrong_type", "must be a string"),
        (("inputs", 2, 0, "UA"), "inputs[2][0]", "wrong_type", "must be a number"),
        (("inputs", 0, 2, 1e16), "inputs[0][2]", "out_of_range", "between"),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    cat_server: Server, change: tuple[Any, ...], field: str, reason: str, text: str
) -> None:
    key, row, column, value = change
    rows = mixed_rows(3, seed=5)
    body: dict[str, Any] = {"instances": records(rows)} if key == "instances" else {}
    if key == "inputs":
        body = {"inputs": as_lists(rows)}
    body[key][row][column] = value
    err = error(cat_server.post("/predict", json=body))
    assert err["field"] == field and err["reason"] == reason and text in err["message"]
    assert err["message"].startswith(field + ": ") and err["code"] == 422


def test_structure_errors_are_422_naming_the_field(cat_server: Server) -> None:
    good = records(mixed_rows(2, seed=6))
    missing = [good[0], {k: v for k, v in good[1].items() if k != "origin"}]
    assert error(cat_server.post("/predict", json={"instances": missing}))["field"] == (
        "instances[1].origin"
    )
    extra = [{**good[0], "tail": 1}, good[1]]
    err = error(cat_server.post("/predict", json={"instances": extra}))
    assert err["field"] == "instances[0].tail" and err["reason"] == "unknown_feature"
    short = [["UA"] * 3]
    err = error(cat_server.post("/predict", json={"inputs": short}))
    assert err["field"] == "inputs[0]" and err["reason"] == "row_length"
    err = error(cat_server.post("/predict", json={"instances": good, "inputs": []}))
    assert err["field"] == "body"
    empty = cat_server.post("/predict", json={"instances": []})
    assert empty.status_code == 422 and empty.json()["error"]["reason"] == "empty"


def test_null_is_the_missing_level_only_where_the_spec_says(cat_server: Server, model: Any) -> None:
    rows = mixed_rows(2, seed=7)
    rows[:, 3] = MISSING_LEVEL
    body = records(rows)
    assert body[0]["origin"] is None
    response = cat_server.post("/predict", json={"instances": body})
    np.testing.assert_allclose(response.json()["predictions"], model.predict(rows), rtol=1e-12)


def test_unknown_levels_are_counted_and_their_share_beside_training(cat_server: Server) -> None:
    before = cat_server.get("/metrics").text
    rows, _ = category_rows(100, seed=8)
    rows[:, 1] = "UA"
    rows[:40, 1] = "ZZ"  # 40 unseen
    rows[40:50, 1] = "OO"  # 10 infrequent
    response = cat_server.post("/predict", json={"instances": records(rows)})
    assert response.status_code == 200
    after = cat_server.get("/metrics").text
    name = "regpipe_unknown_category_total"
    counted = metric(after, name, feature="carrier") - metric(before, name, feature="carrier")
    assert counted == 50
    assert metric(after, "regpipe_unknown_category_share", feature="carrier") == 0.5
    training = category_metadata()["categories"]["carrier"]["infrequent_share"]
    assert 0 < training < 0.1
    got = metric(after, "regpipe_unknown_category_training_share", feature="carrier")
    assert got == pytest.approx(training)
    assert metric(after, "regpipe_unknown_category_share", feature="origin") == 0.0


def test_openapi_types_categories_as_strings_with_their_levels(cat_server: Server) -> None:
    doc = cat_server.get("/openapi.json").json()
    instance = doc["components"]["schemas"]["Instance"]["properties"]
    carrier = instance["carrier"]
    assert carrier["type"] == "string" and "enum" not in carrier
    assert all(level in carrier["description"] for level in CARRIER_KEPT)
    assert instance["origin"]["nullable"] is True and instance["dep_delay"]["type"] == "number"
    infer = doc["components"]["schemas"]["RequestInput"]["properties"]["datatype"]
    assert "BYTES" in infer["enum"]


def test_model_shows_its_categories(cat_server: Server) -> None:
    body = cat_server.get("/model").json()
    assert body["categories"]["carrier"]["levels"] == CARRIER_KEPT
    assert body["features"] == CAT_FEATURES


# --- Open Inference Protocol V2 with tritonclient: one tensor per feature ---------------------


@pytest.fixture(scope="module")
def client(cat_server: Server) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(f"127.0.0.1:{cat_server.port}", network_timeout=60.0)
    yield c
    c.close()


def feature_inputs(rows: np.ndarray, binary: bool) -> list[triton.InferInput]:
    tensors = []
    for j, feature in enumerate(CAT_FEATURES):
        if j in NUMERIC:
            values = rows[:, j].astype(np.float64)
            tensor = triton.InferInput(feature, [len(rows)], "FP64")
        else:
            values = np.array([str(v).encode() for v in rows[:, j]], dtype=np.object_)
            tensor = triton.InferInput(feature, [len(rows)], "BYTES")
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def test_model_metadata_lists_one_input_per_feature(client: triton.InferenceServerClient) -> None:
    inputs = client.get_model_metadata(NAME)["inputs"]
    assert [(i["name"], i["datatype"]) for i in inputs] == [
        ("dep_delay", "FP64"),
        ("carrier", "BYTES"),
        ("distance", "FP64"),
        ("origin", "BYTES"),
    ]


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_bytes_and_fp64(
    client: triton.InferenceServerClient, model: Any, binary: bool
) -> None:
    rows = mixed_rows(1000, seed=9)
    rows[0, 1] = "Zürich"  # non-ASCII, unseen
    result = client.infer(NAME, feature_inputs(rows, binary))
    np.testing.assert_allclose(result.as_numpy("predict"), model.predict(rows), rtol=1e-12)


def test_tritonclient_errors_name_the_input(client: triton.InferenceServerClient) -> None:
    rows = mixed_rows(4, seed=10)
    tensors = feature_inputs(rows, True)
    wrong = triton.InferInput("carrier", [4], "FP64")
    wrong.set_data_from_numpy(np.zeros(4), binary_data=True)
    with pytest.raises(InferenceServerException, match=r"inputs\[1\]\.datatype: must be BYTES"):
        client.infer(NAME, [tensors[0], wrong, tensors[2], tensors[3]])
    with pytest.raises(InferenceServerException, match="no input for feature"):
        client.infer(NAME, tensors[:3])
    single = triton.InferInput("input-0", [4, 4], "FP64")
    single.set_data_from_numpy(np.zeros((4, 4)), binary_data=True)
    with pytest.raises(InferenceServerException, match="one input per feature"):
        client.infer(NAME, [single])


def test_json_bytes_tensor_refuses_numbers(cat_server: Server) -> None:
    tensors = [
        {"name": "dep_delay", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "carrier", "shape": [1], "datatype": "BYTES", "data": [5]},
        {"name": "distance", "shape": [1], "datatype": "INT32", "data": [900]},
        {"name": "origin", "shape": [1, 1], "datatype": "BYTES", "data": [["JFK"]]},
    ]
    response = cat_server.post(f"/v2/models/{NAME}/infer", json={"inputs": tensors})
    assert response.status_code == 422
    assert response.json() == {"error": "inputs[1].data[0]: " + MSG_LEVEL}
    tensors[1]["data"] = [CARRIER_KEPT[0]]
    assert cat_server.post(f"/v2/models/{NAME}/infer", json={"inputs": tensors}).ok


@pytest.mark.parametrize("route", ["/predict", f"/v2/models/{NAME}/infer"])
def test_the_wsgi_fast_path_answers_category_requests(
    cat_models: Path, model: Any, route: str
) -> None:
    """The fast path answers a valid category request itself: Flask is never called."""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    settings = Settings(model_uri=str(cat_models / NAME), model_poll_interval=0)
    fast = create_app(settings).wsgi_app
    assert isinstance(fast, PredictFastPath)

    def flask_called(environ: dict[str, Any], start_response: Any) -> Any:
        raise AssertionError("the request went to Flask")

    fast.wsgi_app = flask_called
    rows = mixed_rows(20, seed=12)
    if route == "/predict":
        doc: dict[str, Any] = {"instances": records(rows)}
    else:
        doc = {
            "inputs": [
                {
                    "name": f,
                    "shape": [len(rows)],
                    "datatype": "FP64" if j in NUMERIC else "BYTES",
                    "data": [r[f] for r in records(rows)],
                }
                for j, f in enumerate(CAT_FEATURES)
            ]
        }
    body = orjson.dumps(doc)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": route,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    status: list[str] = []
    answer = orjson.loads(b"".join(fast(environ, lambda s, h: status.append(s))))
    assert status == ["200 OK"]
    got = answer["predictions"] if route == "/predict" else answer["outputs"][0]["data"]
    np.testing.assert_allclose(got, model.predict(rows), rtol=1e-12)


def test_another_pipeline_shape_is_served_through_model_predict(tmp_path: Path) -> None:
    """An encoder the lookup does not cover (drop="first") is decoded for model.predict."""
    rows, y = category_rows(2000, seed=13)
    encode = ColumnTransformer(
        [
            ("number", StandardScaler(), NUMERIC),
            (
                "category",
                OneHotEncoder(
                    categories=[CARRIER_KEPT, ORIGINS], handle_unknown="ignore", drop="first"
                ),
                [1, 3],
            ),
        ]
    )
    pipeline = Pipeline([("encode", encode), ("sgd", SGDRegressor(random_state=0))])
    pipeline.fit(rows, y)
    publish_bundle(str(tmp_path), NAME, pipeline, category_metadata())
    served = prepare(load_bundle(str(tmp_path / NAME)))
    assert served.categories is not None and served.categories.fast is None
    test = mixed_rows(500, seed=14)
    got = served.predict(served.categories.encode_objects(test))
    np.testing.assert_allclose(got, pipeline.predict(test), rtol=1e-12)


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"NaN", "not_finite"), (b"1e400", "not_finite"), (b"1" + b"0" * 400, "out_of_range")],
)
def test_non_finite_and_huge_numbers_are_422_naming_the_field(
    cat_server: Server, value: bytes, reason: str
) -> None:
    body = b'{"inputs": [[1.0, "UA", 900, "JFK"], [' + value + b', "UA", 900, "JFK"]]}'
    response = cat_server.post("/predict", data=body, headers={"Content-Type": "application/json"})
    err = error(response)
    assert err["field"] == "inputs[1][0]" and err["reason"] == reason


def test_malformed_binary_bytes_tensor_names_the_input(cat_server: Server) -> None:
    raw = struct.pack("<I", 10) + b"UA"  # announces 10 bytes, has 2
    tensors = [
        {"name": "dep_delay", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "carrier", "shape": [1], "datatype": "BYTES"},
        {"name": "distance", "shape": [1], "datatype": "FP64", "data": [900.0]},
        {"name": "origin", "shape": [1], "datatype": "BYTES", "data": ["JFK"]},
    ]
    tensors[1]["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps({"inputs": tensors})
    response = cat_server.post(
        f"/v2/models/{NAME}/infer",
        data=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400  # a malformed body, as for a short numeric tensor
    message = response.json()["error"]
    assert message.startswith("inputs[1].parameters.binary_data_size: element 0")


def test_binary_bytes_tensor_past_the_body_end_is_400_naming_the_input(cat_server: Server) -> None:
    raw = struct.pack("<I", 2) + b"UA"
    tensors = [
        {"name": "dep_delay", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "carrier", "shape": [1], "datatype": "BYTES"},
        {"name": "distance", "shape": [1], "datatype": "FP64", "data": [900.0]},
        {"name": "origin", "shape": [1], "datatype": "BYTES", "data": ["JFK"]},
    ]
    tensors[1]["parameters"] = {"binary_data_size": len(raw) + 4}  # 4 bytes more than sent
    header = orjson.dumps({"inputs": tensors})
    response = cat_server.post(
        f"/v2/models/{NAME}/infer",
        data=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400
    message = response.json()["error"]
    assert message == "inputs[1].parameters.binary_data_size: the body ends 4 bytes short"


def test_hot_swap_from_a_numeric_to_a_category_model(tmp_path: Path) -> None:
    """The store swaps a numeric model for a category one (and back); metrics follow."""
    publish(tmp_path)
    model_metrics = ModelMetrics(drift_window=100, drift_interval=0)
    store = ModelStore(str(tmp_path / NAME), 0, model_metrics.on_swap, model_metrics.on_refuse)
    assert store.refresh() and store.current.categories is None
    assert model_metrics.category_drift is None
    publish_categories(tmp_path)
    assert store.refresh() and store.current.categories is not None
    assert model_metrics.category_drift is not None
    current = store.current
    X = current.categories.encode_objects(mixed_rows(10, seed=15))
    model_metrics.record("rest", current, X, current.predict(X), 0.001)
    share = {"feature": "carrier"}
    assert REGISTRY.get_sample_value("regpipe_unknown_category_share", share) >= 0
    publish(tmp_path, seed=1)
    assert store.refresh() and store.current.categories is None
    assert model_metrics.category_drift is None
    # The swapped-out model's gauges are NaN, not its last values (an alert would keep firing).
    for name in ("regpipe_unknown_category_share", "regpipe_unknown_category_training_share"):
        assert math.isnan(REGISTRY.get_sample_value(name, share)), name
