"""The Open Inference Protocol V2 with a real client: tritonclient[http] (PyPI) against a real
``regpipe-predict`` (gunicorn, 2 workers) on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from predict_helpers import FEATURES, NAME, Server, synthetic
from tritonclient.utils import InferenceServerException

from regpipe_common.bundle import load_bundle


@pytest.fixture(scope="module")
def client(server: Server) -> triton.InferenceServerClient:
    c = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=60.0)
    yield c
    c.close()


@pytest.fixture(scope="module")
def model(models: Path) -> object:
    return load_bundle(str(models / NAME)).model


@pytest.fixture(scope="module")
def version(server: Server) -> str:
    return server.get("/readyz").json()["model"]["version"]


def infer_input(X: np.ndarray, binary: bool, datatype: str = "FP64") -> triton.InferInput:
    tensor = triton.InferInput("input-0", list(X.shape), datatype)
    tensor.set_data_from_numpy(X, binary_data=binary)
    return tensor


def test_health_and_metadata(client: triton.InferenceServerClient, version: str) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(NAME) and client.is_model_ready(NAME, version)
    assert not client.is_model_ready("other") and not client.is_model_ready(NAME, "0")
    server = client.get_server_metadata()
    assert server["name"] == "regpipe-predict" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata(NAME)
    assert meta["name"] == NAME and meta["versions"] == [version]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(FEATURES)]}]
    assert meta["outputs"][0]["name"] == "predict"
    assert client.get_model_metadata(NAME, version)["versions"] == [version]


def test_infer_json_tensors(client: triton.InferenceServerClient, model: object) -> None:
    X, _ = synthetic(20, seed=11)
    outputs = [triton.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer(NAME, [infer_input(X, False)], outputs=outputs, request_id="r-1")
    response = result.get_response()
    assert response["id"] == "r-1" and "data" in response["outputs"][0]
    np.testing.assert_allclose(result.as_numpy("predict"), model.predict(X), rtol=1e-12)


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_infer_binary_in_and_out(
    client: triton.InferenceServerClient, model: object, datatype: str
) -> None:
    X = synthetic(30, seed=12)[0].astype(np.float32 if datatype == "FP32" else np.float64)
    result = client.infer(NAME, [infer_input(X, True, datatype)])  # binary both ways (default)
    output = result.get_output("predict")
    assert output["parameters"]["binary_data_size"] == 30 * 8
    got = result.as_numpy("predict")
    assert got.dtype == np.float64 and got.shape == (30,)
    np.testing.assert_allclose(got, model.predict(X.astype(np.float64)), rtol=1e-12)


def test_100k_rows_in_binary(
    client: triton.InferenceServerClient, model: object, server: Server, version: str
) -> None:
    X, _ = synthetic(100_000, seed=13)
    result = client.infer(NAME, [infer_input(X, True)], model_version=version)
    np.testing.assert_allclose(result.as_numpy("predict"), model.predict(X), rtol=1e-12)
    assert result.get_response()["model_version"] == version


def test_errors_reach_the_client_with_the_servers_message(
    client: triton.InferenceServerClient,
) -> None:
    X, _ = synthetic(2, seed=14)
    with pytest.raises(InferenceServerException) as wrong_shape:
        client.infer(NAME, [infer_input(X[:, :4].copy(), True)])
    assert wrong_shape.value.status() == "422"
    assert re.search(
        r"inputs\[0\]\.shape: shape\[1\] is 4; the model takes 5", str(wrong_shape.value)
    )
    with pytest.raises(InferenceServerException, match="no model named 'other'"):
        client.infer("other", [infer_input(X, True)])
    with pytest.raises(InferenceServerException, match="has no version '0'"):
        client.infer(NAME, [infer_input(X, True)], model_version="0")
    bad = X.copy()
    bad[1, 2] = np.inf
    with pytest.raises(InferenceServerException, match=r"row 1, column 2: must be a finite"):
        client.infer(NAME, [infer_input(bad, False)])
    with pytest.raises(InferenceServerException, match="no output named 'proba'"):
        client.infer(NAME, [infer_input(X, True)], outputs=[triton.InferRequestedOutput("proba")])
