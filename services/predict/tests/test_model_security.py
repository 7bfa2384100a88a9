"""Crafted and broken bundles against a real server: nothing runs, the old model keeps serving."""

from __future__ import annotations

import time
from pathlib import Path

from pickle_attacks import eval_via_sklearn, write_marker
from predict_helpers import (
    FEATURES,
    NAME,
    joblib_bytes,
    make_model,
    metadata,
    publish,
    serve,
    write_raw_bundle,
)
from sklearn.linear_model import SGDRegressor

ROW = {"instances": [dict.fromkeys(FEATURES, 1.0)]}


def refused_count(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("regpipe_model_refused_total "):
            return float(line.split()[1])
    return 0.0


def wait_refused(server, at_least: float, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while refused_count(server.get("/metrics").text) < at_least:
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.2)


def test_crafted_and_unpredictable_bundles_never_run_and_never_serve(tmp_path: Path) -> None:
    models = tmp_path / "models"
    good = publish(models)
    marker = tmp_path / "pwned"
    meta = metadata(make_model())
    with serve(models / NAME, tmp_path) as server:
        server.wait_loaded(good)
        # Code execution through names scikit-learn re-exports, with a matching sha256.
        write_raw_bundle(models, eval_via_sklearn(write_marker(marker)), meta)
        wait_refused(server, 2)  # both workers refused it
        # A model that loads but cannot predict: unfitted, and one with fewer weights than names.
        write_raw_bundle(models, joblib_bytes(SGDRegressor()), meta)
        wait_refused(server, 4)
        write_raw_bundle(models, joblib_bytes(make_model()), {**meta, "features": [*FEATURES, "x"]})
        wait_refused(server, 6)
        assert server.get("/readyz").status_code == 200
        for _ in range(20):
            answer = server.post("/predict", json=ROW)
            assert answer.status_code == 200 and answer.json()["model"]["version"] == good
        assert "refused" in server.log.read_text()
    assert not marker.exists()


def test_a_worker_starting_on_a_crafted_latest_runs_nothing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    good = publish(models)
    marker = tmp_path / "pwned"
    write_raw_bundle(models, eval_via_sklearn(write_marker(marker)), metadata(make_model()))
    with serve(models / NAME, tmp_path) as server:
        server.wait_loaded(good)  # the newest older version that verifies
        assert server.post("/predict", json=ROW).json()["model"]["version"] == good
    assert not marker.exists()
