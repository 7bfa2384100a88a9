"""The whole pipeline on the real flights sample: preprocess -> train -> a served model whose
answers are the bundle's own predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from flights import flights_csv, preprocess_cmd, run_job, train_cmd
from net import serve_predict

from regpipe_common.bundle import load_bundle, read_latest


@pytest.mark.slow
def test_flights_pipeline_end_to_end(tmp_path):
    dataset, models = tmp_path / "flights", tmp_path / "models"
    run_job(preprocess_cmd(flights_csv(tmp_path), dataset))
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["rows_read"] == 336_776
    assert manifest["rows_dropped_missing"] == 9_430  # flights without an arrival delay
    assert manifest["rows_read"] == sum(
        manifest[k] for k in ("rows_rejected", "rows_dropped_missing", "rows_train", "rows_test")
    )

    report = run_job(train_cmd(dataset, models)).stdout
    bundle = load_bundle(str(models / "flights"))
    meta = bundle.metadata
    assert meta["version"] == read_latest(str(models / "flights"))
    assert meta["dataset_fingerprint"] == manifest["fingerprint"]
    assert meta["features"] == manifest["feature_order"]
    assert {"carrier", "origin", "dest"} <= set(meta["categories"])
    assert meta["optimum"]["r2"] - meta["metrics"]["r2"] <= 2e-4  # issue 11's target
    assert meta["metrics"]["r2"] > 0.8  # departure delay explains most of the arrival delay
    assert "r2" in report.lower()

    test = pd.concat(pd.read_parquet(dataset / p["path"]) for p in manifest["splits"]["test"])
    rows = test[meta["features"]].head(500)
    expected = bundle.model.predict(rows.to_numpy())
    with serve_predict(models / "flights", tmp_path, WEB_CONCURRENCY="1") as server:
        server.wait("/readyz")
        answer = server.post("/predict", json={"instances": rows.to_dict(orient="records")})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == {"name": "flights", "version": meta["version"]}
        np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9, atol=1e-9)
