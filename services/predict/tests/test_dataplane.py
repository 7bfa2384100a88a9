"""The data plane on its own (no Flask, no WSGI) and the one table of refusals."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path
from types import MappingProxyType

import numpy as np
import orjson
import pytest
from predict_helpers import FEATURES, NAME, gunicorn_body, synthetic

import regpipe_predict
from regpipe_common.bundle import load_bundle
from regpipe_predict import errors, fastpath, schemas
from regpipe_predict.app import create_app
from regpipe_predict.dataplane import DataPlane
from regpipe_predict.errors import ApiError
from regpipe_predict.metrics import ModelMetrics
from regpipe_predict.model_store import ModelStore
from regpipe_predict.settings import Settings

SRC = Path(regpipe_predict.__file__).parent


@pytest.fixture(scope="module")
def dp(models: Path) -> DataPlane:
    store = ModelStore(str(models / NAME), 0)
    store.start()
    return DataPlane(Settings(model_uri=str(models / NAME)), store, ModelMetrics(100, 1.0))


def test_predict_and_infer_without_http(dp: DataPlane, models: Path) -> None:
    """Bytes in, the response document out, equal to the bundle's own ``model.predict``."""
    X = synthetic(7)[0]
    expected = load_bundle(str(models / NAME)).model.predict(X)
    model = dp.ready_model()
    records = [dict(zip(FEATURES, map(float, row), strict=True)) for row in X]
    answer = dp.predict(model, json.dumps({"instances": records}).encode())
    doc = orjson.loads(answer.body)
    assert answer.headers == [("Content-Type", "application/json")]
    assert doc["model"] == {"name": model.name, "version": model.version}
    np.testing.assert_allclose(doc["predictions"], expected, rtol=1e-12, atol=0)

    tensor = {"name": "input-0", "shape": list(X.shape), "datatype": "FP64"}
    raw = X.astype("<f8").tobytes()
    header = orjson.dumps(
        {
            "id": "7",
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    )
    answer = dp.infer(model, header + raw, len(header))
    assert answer.headers[0] == ("Content-Type", "application/octet-stream")
    length = int(dict(answer.headers)["Inference-Header-Content-Length"])
    assert orjson.loads(answer.body[:length])["id"] == "7"
    np.testing.assert_allclose(
        np.frombuffer(answer.body[length:], "<f8"), expected, rtol=1e-12, atol=0
    )


def test_refusals_name_the_field(dp: DataPlane) -> None:
    model = dp.ready_model()
    with pytest.raises(ApiError) as refused:
        dp.predict(model, b'{"inputs": [[1, 2, 3, 4]]}')
    assert (refused.value.code, refused.value.reason) == (422, "row_length")
    assert refused.value.field == "inputs[0]"
    with pytest.raises(ApiError) as refused:
        dp.named_model("other")
    assert (refused.value.code, refused.value.reason, refused.value.field) == (
        404,
        "not_found",
        "name",
    )


def test_one_read_only_table_of_statuses_and_reasons() -> None:
    """Each reason has one status; werkzeug's errors keep the reasons they had."""
    assert isinstance(errors.ERRORS, MappingProxyType)
    reasons = [r for _, rs in errors.ERRORS.values() for r in rs]
    assert len(reasons) == len(set(reasons))
    assert not hasattr(schemas, "REASONS")
    werkzeug = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
    werkzeug |= {413: "body_too_large", 415: "content_type", 503: "not_ready", 418: "http_error"}
    assert {code: errors.http_reason(code) for code in werkzeug} == werkzeug
    with pytest.raises(KeyError):
        ApiError("no_such_reason", "a reason missing from the table fails loudly")


def test_schema_messages_map_to_reasons_without_changing_the_table(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-model row message is a template: serving a model adds nothing to any table."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = {s: dict(rs) for s, (_, rs) in errors.ERRORS.items()}
    client = create_app(Settings(model_uri=str(models / NAME), model_poll_interval=0)).test_client()
    response = client.post("/predict", json={})
    assert response.get_json()["error"]["reason"] == "invalid"
    response = client.post("/predict", json={"inputs": [[1, 2, 3, 4], [1, 2, 3, 4, 5]]})
    assert response.get_json()["error"]["reason"] == "row_length"
    assert {s: dict(rs) for s, (_, rs) in errors.ERRORS.items()} == before
    assert errors.message_reason(errors.MSG_ROW.format(n=2, features="a, b")) == "row_length"
    assert errors.message_reason("Not a valid list.") == "invalid"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_views_and_fast_path_meet_only_in_the_data_plane() -> None:
    """The fast path imports no view code, the data plane no Flask or WSGI code."""
    assert "routes" not in imported_modules(SRC / "fastpath.py")
    assert "dataplane" in imported_modules(SRC / "fastpath.py")
    assert "dataplane" in imported_modules(SRC / "routes.py") | imported_modules(SRC / "http_io.py")
    assert not {"flask", "werkzeug", "http_io", "routes"} & imported_modules(SRC / "dataplane.py")


class Trickle(io.BytesIO):
    """A request body that, like a socket, gives at most 100,000 bytes per read."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(100_000, size if size is not None and size >= 0 else 100_000))


@pytest.mark.parametrize("header", [166, 167, 168, 173])
def test_large_binary_body_is_read_whole_with_its_tensors_aligned(header: int) -> None:
    data = bytes(range(256)) * (3 * 2**20 // 256)
    environ = {"wsgi.input": Trickle(data), "HTTP_INFERENCE_HEADER_CONTENT_LENGTH": str(header)}
    body = fastpath.read_body(environ, len(data))
    assert bytes(body) == data
    assert np.frombuffer(body, "<f8", offset=header, count=10).flags.aligned
    short = {**environ, "wsgi.input": Trickle(data[:-5])}
    assert bytes(fastpath.read_body(short, len(data))) == data[:-5]


@pytest.mark.parametrize("size", [400, 3 * 2**20])
@pytest.mark.parametrize("header", [None, 166, 173])
def test_body_is_received_from_gunicorns_socket(header: int | None, size: int) -> None:
    """Over a gunicorn body (as served): the same bytes, in one buffer (large binary: the
    tensors aligned), the body consumed, the connection's next request left to gunicorn."""
    import socket
    import threading

    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    after = b"POST /predict HTTP/1.1\r\n"
    server, client = socket.socketpair()
    with server, client:
        sender = threading.Thread(target=client.sendall, args=(data + after,))
        sender.start()
        unreader, stream = gunicorn_body(server, len(data))
        unreader.unread(server.recv(1000))  # what gunicorn read past the headers
        environ = {"wsgi.input": stream}
        if header is not None:
            environ["HTTP_INFERENCE_HEADER_CONTENT_LENGTH"] = str(header)
        body = fastpath.read_body(environ, len(data))
        sender.join()
        assert bytes(body) == data
        if header is None or size <= fastpath.READ_PIECE:
            assert type(body) is bytearray  # orjson parses it as it is
        else:
            assert np.frombuffer(body, "<f8", offset=header, count=10).flags.aligned
        assert stream.read() == b""
        assert unreader.read(len(after)) == after
