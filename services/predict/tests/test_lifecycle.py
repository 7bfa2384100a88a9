"""The model lifecycle seen from the service: ``GET /model/report``, and ``regpipe-models
rollback`` while a real gunicorn serves a steady stream of requests."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from predict_helpers import BIN, FEATURES, NAME, make_model, metadata, serve, synthetic

from regpipe_common.bundle import REPORT_CSP, publish_bundle
from regpipe_predict.app import create_app
from regpipe_predict.settings import Settings

PAGE = b"<!doctype html><title>report</title><h1>the training report</h1>"


def publish(models: Path, seed: int, report: bytes | None = None) -> str:
    model = make_model(seed)
    files = {"report.html": report} if report is not None else None
    return publish_bundle(str(models), NAME, model, metadata(model), files=files)


def test_model_report_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    models = tmp_path / "models"
    old = publish(models, 0)  # a bundle from before reports existed
    new = publish(models, 1, report=PAGE)
    app = create_app(Settings(model_uri=str(models / NAME), model_poll_interval=0))
    client = app.test_client()
    page = client.get("/model/report")
    assert page.status_code == 200 and page.data == PAGE
    assert page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == REPORT_CSP
    assert page.headers["X-Model-Version"] == new
    doc = client.get("/openapi.json").get_json()["paths"]["/model/report"]["get"]
    assert "text/html" in doc["responses"]["200"]["content"]
    assert {"200", "404", "503"} <= set(doc["responses"])
    done = subprocess.run(
        [str(BIN / "regpipe-models"), "--models", str(models), "promote", NAME, old],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert app.extensions["regpipe"].store.refresh()
    missing = client.get("/model/report")
    assert missing.status_code == 404 and missing.mimetype == "application/json"
    error = missing.get_json()["error"]
    assert error["reason"] == "not_found"
    assert f"{NAME}/{old} has no report.html" in error["message"]


def test_model_report_before_a_model_is_loaded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings = Settings(model_uri=str(tmp_path / "none"), model_poll_interval=0)
    response = create_app(settings).test_client().get("/model/report")
    assert response.status_code == 503 and response.get_json()["error"]["reason"] == "not_ready"


class Load:
    """A client thread posting one row again and again; every answer's status and version."""

    def __init__(self, url: str, row: list[float]) -> None:
        self.url, self.body = (
            url + "/predict",
            {"instances": [dict(zip(FEATURES, row, strict=True))]},
        )
        self.results: list[tuple[int, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self, max_requests: int = 20_000, max_seconds: float = 90.0) -> None:
        deadline = time.monotonic() + max_seconds
        with requests.Session() as session:
            while not self.stop.is_set() and len(self.results) < max_requests:
                if time.monotonic() > deadline:
                    break
                try:
                    r = session.post(self.url, json=self.body, timeout=30)
                    version = r.json()["model"]["version"] if r.status_code == 200 else None
                    self.results.append((r.status_code, version))
                except (requests.RequestException, ValueError) as exc:
                    self.results.append((0, repr(exc)))

    def versions_seen(self) -> list[str | None]:
        """The served versions in the order they first answered."""
        return list(dict.fromkeys(v for _, v in self.results))


def test_rollback_under_serving_load(tmp_path: Path) -> None:
    models = tmp_path / "models"
    v1 = publish(models, 0)
    v2 = publish(models, 1)
    X, _ = synthetic(1)
    with serve(models / NAME, tmp_path) as server:
        server.wait_loaded(v2)
        load = Load(server.url, X[0].tolist())
        load.thread.start()
        try:
            while len(load.results) < 100 and load.thread.is_alive():
                time.sleep(0.05)
            done = subprocess.run(
                [str(BIN / "regpipe-models"), "--models", str(models), "rollback", NAME],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout == f"LATEST of {NAME}: {v2} -> {v1}\n"
            server.wait_loaded(v1)
            mark = len(load.results)
            while len(load.results) < mark + 200 and load.thread.is_alive():
                time.sleep(0.05)
        finally:
            load.stop.set()
            load.thread.join(timeout=30)
    statuses = Counter(status for status, _ in load.results)
    assert statuses == {200: len(load.results)}, statuses  # zero failed requests
    assert load.versions_seen() == [v2, v1]
    assert load.results[-1][1] == v1  # the served version changed back, and stayed
