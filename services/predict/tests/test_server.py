"""A real ``regpipe-predict`` (gunicorn, 2 workers) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import requests
from predict_helpers import FEATURES, NAME, Server, make_model, publish, serve, synthetic
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from regpipe_common.bundle import load_bundle


def metric(text: str, sample: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    for line in text.splitlines():
        if not line.startswith(sample + ("{" if labels else " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_one_row_and_100k_rows(server: Server, models: Path) -> None:
    model = load_bundle(str(models / NAME)).model
    X, _ = synthetic(100_000, seed=7)
    response = server.post("/predict", json={"inputs": X.tolist()})
    assert response.status_code == 200, response.text[:500]
    got = np.array(response.json()["predictions"])
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-12, atol=1e-9)
    records = [dict(zip(FEATURES, row, strict=True)) for row in X[:1].tolist()]
    one = server.post("/predict", json={"instances": records}).json()
    assert one["predictions"] == pytest.approx(list(model.predict(X[:1])), rel=1e-12)
    assert "total;dur=" in response.headers["Server-Timing"]


def test_limits_over_http(server: Server) -> None:
    rows = server.post("/predict", json={"inputs": [[1.0, 2, 3, 4, 5]] * 100_001})
    assert rows.status_code == 413 and rows.json()["error"]["reason"] == "too_many_rows"
    big = b'{"inputs": [' + b" " * (17 * 2**20) + b"]}"
    over = server.post("/predict", data=big, headers={"Content-Type": "application/json"})
    assert over.status_code == 413 and over.json()["error"]["reason"] == "body_too_large"
    bad = server.post("/predict", data=b"{", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"


def test_every_route_over_http(server: Server) -> None:
    for path in (
        "/healthz",
        "/readyz",
        "/model",
        "/openapi.json",
        "/docs",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        f"/v2/models/{NAME}",
        f"/v2/models/{NAME}/ready",
        "/metrics",
        "/docs/assets/swagger-ui-bundle.js",
    ):
        assert server.get(path).status_code == 200, path
    doc = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}
    out = server.post(f"/v2/models/{NAME}/infer", json=doc).json()
    assert out["outputs"][0]["shape"] == [1]


def test_metrics_are_summed_across_workers(server: Server) -> None:
    before = server.get("/metrics").text
    rows = synthetic(2000, seed=8)[0].tolist()
    statuses: list[int] = []

    def client(requests_each: int) -> None:
        for _ in range(requests_each):  # a new connection each time
            for body in ({"inputs": rows}, {"inputs": [[1, 2, 3, 4]]}):
                r = requests.post(
                    server.url + "/predict", json=body, timeout=30, headers={"Connection": "close"}
                )
                statuses.append(r.status_code)

    n = 0
    for _ in range(5):  # concurrent batches until both workers have served (bounded)
        threads = [threading.Thread(target=client, args=(8,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        n += 64
        if len([v for v in predictions_by_pid(server_prom_dir(server)).values() if v > 0]) >= 2:
            break
    assert sorted(set(statuses)) == [200, 422] and len(statuses) == 2 * n
    after = server.get("/metrics").text

    def delta(sample: str, **labels: str) -> float:
        return metric(after, sample, **labels) - metric(before, sample, **labels)

    assert delta("regpipe_predictions_total", protocol="rest") == n
    assert delta("regpipe_rows_predicted_total", protocol="rest") == len(rows) * n
    assert delta("regpipe_prediction_errors_total", reason="row_length") == n
    assert delta("regpipe_model_compute_seconds_count") == n
    assert delta("regpipe_predicted_value_count") == len(rows) * n
    assert delta("flask_http_request_total", method="POST", status="200") == n
    assert delta("flask_http_request_total", method="POST", status="422") == n
    # the 200s come from the fast path, the 422s from Flask: the same series as ever
    for status in ("200", "422"):
        labels = {"method": "POST", "status": status, "url_rule": "/predict"}
        assert delta("flask_http_request_duration_seconds_count", **labels) == n
    per_worker = predictions_by_pid(server_prom_dir(server))
    assert len([v for v in per_worker.values() if v > 0]) >= 2, per_worker  # both workers served
    assert sum(per_worker.values()) == metric(after, "regpipe_predictions_total", protocol="rest")
    version = server.get("/readyz").json()["model"]["version"]
    assert metric(after, "regpipe_model_info", name=NAME, version=version) == 1


def server_prom_dir(server: Server) -> str:
    return str(server.log.parent / f"prom-{server.port}")


def predictions_by_pid(folder: str) -> dict[str, float]:
    """``regpipe_predictions_total{protocol="rest"}`` as each worker's own metric file holds it."""
    values = {}
    for name in os.listdir(folder):
        match = re.fullmatch(r"counter_(\d+)\.db", name)
        if not match:
            continue
        mmap = MmapedDict(os.path.join(folder, name), read_mode=True)
        try:
            for key, value, _ in mmap.read_all_values():
                _, sample, labels, *_ = json.loads(key)
                if sample == "regpipe_predictions_total" and labels == {"protocol": "rest"}:
                    values[match.group(1)] = value
        finally:
            mmap.close()
    return values


def test_drift_gauge_moves_when_inputs_shift(models: Path, tmp_path: Path) -> None:
    X, _ = synthetic(2000)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    env = {"DRIFT_UPDATE_INTERVAL": "0", "DRIFT_WINDOW_ROWS": "200"}
    with serve(models / NAME, tmp_path, **env) as srv:
        srv.wait_loaded((models / NAME / "LATEST").read_text().strip())
        for _ in range(4):
            assert srv.post("/predict", json={"inputs": X[:300].tolist()}).status_code == 200
        calm = srv.get("/metrics").text
        assert abs(metric(calm, "regpipe_feature_drift", feature="dep_delay")) < 0.5
        shifted = X[:300].copy()
        shifted[:, 0] = shifted[:, 0] + 3 * sd[0]
        assert srv.post("/predict", json={"inputs": shifted.tolist()}).status_code == 200
        moved = srv.get("/metrics").text
        assert metric(moved, "regpipe_feature_drift", feature="dep_delay") > 2.5
        assert abs(metric(moved, "regpipe_feature_drift", feature="distance")) < 0.5
        assert mean[0] != 0  # the gauge is relative to the training mean, not zero


def stale_metrics(folder: Path) -> None:
    """A metric file left by an earlier run (1000 predictions), and a file that is not one."""
    folder.mkdir(parents=True)
    stale = MmapedDict(str(folder / "counter_99999.db"))
    key = mmap_key(
        "regpipe_predictions_total", "regpipe_predictions_total", ["protocol"], ["rest"], "x"
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()
    (folder / "keep.txt").write_text("not ours")


def test_ready_only_after_a_verified_model_loads(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / NAME).mkdir(parents=True)
    prom = tmp_path / "prom"
    stale_metrics(prom)
    with serve(models / NAME, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(prom)) as srv:
        assert not (prom / "counter_99999.db").exists()  # emptied at start
        assert (prom / "keep.txt").exists()
        assert srv.get("/healthz").status_code == 200
        assert srv.get("/readyz").status_code == 503
        assert srv.get("/v2/health/ready").status_code == 503
        refused = srv.post("/predict", json={"inputs": [[1, 2, 3, 4, 5]]})
        assert refused.status_code == 503 and refused.json()["error"]["reason"] == "not_ready"
        version = publish(models)
        srv.wait("/readyz", 200)
        srv.wait_loaded(version)  # both workers: one ready worker does not make the other one
        served = srv.post("/predict", json={"inputs": [[1, 2, 3, 4, 5]]}).json()
        assert served["model"]["version"] == version
        text = srv.get("/metrics").text
        assert metric(text, "regpipe_predictions_total", protocol="rest") == 1


def tampered_version(models: Path, scratch: Path, seed: int) -> str:
    """Publish elsewhere, flip a byte of model.joblib, move it beside the served versions."""
    version = publish(scratch, seed=seed)
    src = scratch / NAME / version
    payload = bytearray((src / "model.joblib").read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    (src / "model.joblib").write_bytes(bytes(payload))
    shutil.move(str(src), str(models / NAME / version))
    return version


def test_tampered_model_is_never_served(tmp_path: Path) -> None:
    models = tmp_path / "models"
    good = publish(models)
    with serve(models / NAME, tmp_path) as srv:
        srv.wait_loaded(good)
        bad = tampered_version(models, tmp_path / "scratch", seed=1)
        (models / NAME / "LATEST").write_text(bad + "\n")
        deadline = time.monotonic() + 60
        while "model refused" not in srv.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "model refused" in srv.log.read_text()
        for _ in range(20):
            body = srv.post("/predict", json={"inputs": [[1, 2, 3, 4, 5]]}).json()
            assert body["model"]["version"] == good
        assert srv.get("/readyz").json()["model"]["version"] == good
    only_bad = tmp_path / "only-bad"
    (only_bad / NAME).mkdir(parents=True)
    bad = tampered_version(only_bad, tmp_path / "scratch2", seed=2)
    (only_bad / NAME / "LATEST").write_text(bad + "\n")
    with serve(only_bad / NAME, tmp_path) as srv:
        time.sleep(1.0)  # several polls
        assert srv.get("/readyz").status_code == 503
        assert srv.post("/predict", json={"inputs": [[1, 2, 3, 4, 5]]}).status_code == 503


def test_hot_reload_under_load_fails_no_request(tmp_path: Path) -> None:
    models = tmp_path / "models"
    v1 = publish(models, seed=0)
    X, _ = synthetic(8, seed=9)
    expected = {v1: make_model(0).predict(X)}
    results: list[tuple[int, str | None, list[float] | None]] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as s:
            for _ in range(2000):  # bounded in count and, through `stop`, in time
                if stop.is_set():
                    return
                try:
                    r = s.post(srv.url + "/predict", json={"inputs": X.tolist()}, timeout=10)
                    body = r.json()
                    results.append((r.status_code, body["model"]["version"], body["predictions"]))
                except Exception:
                    results.append((-1, None, None))

    with serve(models / NAME, tmp_path) as srv:
        srv.wait_loaded(v1)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        v2 = publish(models, seed=1)
        expected[v2] = make_model(1).predict(X)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(1 for r in results[-20:] if r[1] == v2) < 20:
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        info = srv.get("/metrics").text
        assert metric(info, "regpipe_model_info", name=NAME, version=v2) == 1
        assert metric(info, "regpipe_model_info", name=NAME, version=v1) == 0
    assert len(results) > 50
    assert results and all(status == 200 for status, _, _ in results), {r[0] for r in results}
    versions = [v for _, v, _ in results]
    assert set(versions) == {v1, v2}
    for _, version, predictions in results:  # each response names the model that computed it
        np.testing.assert_allclose(predictions, expected[version], rtol=1e-12)


def test_sigterm_lets_the_in_flight_request_finish(models: Path, tmp_path: Path) -> None:
    body = orjson.dumps({"inputs": synthetic(1000, seed=2)[0].tolist()})
    version = (models / NAME / "LATEST").read_text().strip()
    with serve(models / NAME, tmp_path) as srv:
        srv.wait_loaded(version)  # both workers up: none is still booting when SIGTERM comes
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        head = (
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(head + body[:100])
        time.sleep(1.0)  # the worker has taken the connection and waits for the rest
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[100:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
        assert len(orjson.loads(response.split(b"\r\n\r\n", 1)[1])["predictions"]) == 1000
        assert srv.proc.wait(timeout=30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.url + "/healthz", timeout=2)


def raw_request(server: Server, head: bytes, body: bytes) -> tuple[int, bytes]:
    """Send bytes as they are; the status code and body of the answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.split(b"\r\n\r\n", 1)[1]


def chunked(payload: bytes, size: int = 1 << 20) -> bytes:
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def chunked_head(path: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("path", ["/predict", f"/v2/models/{NAME}/infer"])
def test_chunked_bodies_are_read_whole_and_within_the_limit(server: Server, path: str) -> None:
    rows = [[1.5, 2, 3, 4, 5]] * 3
    if path == "/predict":
        doc: dict = {"inputs": rows}
    else:
        doc = {"inputs": [{"name": "x", "shape": [3, 5], "datatype": "FP64", "data": rows}]}
    status, body = raw_request(server, chunked_head(path), chunked(orjson.dumps(doc), 7))
    assert status == 200, body
    # 17 MiB of valid JSON over the 16 MiB limit: a 413, never a prefix answered 200
    big = orjson.dumps({"inputs": [[1.5, 2, 3, 4, 5]] * 100_000}).replace(b",", b",   ")
    big = big[:-2] + b" " * (17 * 2**20 - len(big)) + big[-2:]
    status, body = raw_request(server, chunked_head(path), chunked(big))
    assert status == 413, body[:300]
    assert b"MAX_CONTENT_LENGTH" in body
    # a chunk size that is not hexadecimal: a 400 naming the body, never a 500
    status, body = raw_request(server, chunked_head(path), b"zz\r\n{}\r\n0\r\n\r\n")
    assert status == 400, body[:300]
    message = orjson.loads(body)["error"]
    assert "body" in (message if isinstance(message, str) else message["field"])


def test_metrics_show_no_library_versions(server: Server) -> None:
    assert server.post("/predict", json={"inputs": [[1, 2, 3, 4, 5]]}).status_code == 200
    text = server.get("/metrics").text
    assert "regpipe_predictions_total" in text
    assert "flask_exporter_info" not in text and "python_info" not in text
