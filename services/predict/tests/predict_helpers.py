"""Test helpers: small published bundles and real gunicorn servers on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import requests
from net import free_port
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regpipe_common.bundle import library_versions, new_version, publish_bundle, sha256_hex

FEATURES = ["dep_delay", "distance", "air_time", "hour", "month"]
NAME = "flights"
BIN = Path(sys.executable).parent


def synthetic(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = np.array([40.0, 700.0, 90.0, 5.0, 3.5])
    locs = np.array([12.0, 1000.0, 150.0, 13.0, 6.5])
    X = locs + scales * rng.standard_normal((n, len(FEATURES)))
    y = X @ np.array([1.0, -0.01, 0.05, 0.3, -0.2]) + rng.normal(0, 1, n)
    return X, y


def make_model(seed: int = 0) -> Pipeline:
    X, y = synthetic(seed=seed)
    model = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor(random_state=seed))])
    return model.fit(X, y)


def metadata(model: Pipeline) -> dict[str, Any]:
    X, y = synthetic()
    stats = {
        f: {
            "count": len(X),
            "mean": float(X[:, i].mean()),
            "var": float(X[:, i].var()),
            "min": float(X[:, i].min()),
            "max": float(X[:, i].max()),
        }
        for i, f in enumerate(FEATURES)
    }
    target = {
        "name": "arr_delay",
        "count": len(y),
        "mean": float(y.mean()),
        "var": float(y.var()),
        "min": float(y.min()),
        "max": float(y.max()),
    }
    return {
        "features": FEATURES,
        "target": "arr_delay",
        "metrics": {"r2": 0.9},
        "optimum": {"r2": 0.9},
        "params": {},
        "dataset_fingerprint": "test",
        "feature_stats": stats,
        "target_stats": target,
    }


def publish(models: Path, seed: int = 0) -> str:
    model = make_model(seed)
    return publish_bundle(str(models), NAME, model, metadata(model))


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kw)

    def wait(self, path: str = "/healthz", status: int = 200, seconds: float = 90.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if self.get(path).status_code == status:
                    return
            except requests.RequestException:  # not listening yet, or workers still booting
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {status}: {self.log.read_text()[-3000:]}")

    def wait_loaded(self, version: str, workers: int = 2, seconds: float = 90.0) -> None:
        """Until every worker logged that it loaded ``version``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if text.count(f"model loaded name={NAME} version={version}") >= workers:
                return
            time.sleep(0.1)
        raise AssertionError(f"not every worker loaded {version}: {self.log.read_text()[-3000:]}")


@contextmanager
def serve(model_uri: Path | str, tmp: Path, **env: str) -> Iterator[Server]:
    """``regpipe-predict`` on a free 127.0.0.1 port; terminated (then killed) on exit."""
    port = free_port()
    full_env = {
        **os.environ,
        "MODEL_URI": str(model_uri),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "MODEL_POLL_INTERVAL": "0.2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{port}"),
        "GRACEFUL_TIMEOUT": "10",
        **env,
    }
    log = tmp / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "regpipe-predict")], env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(proc, port, log)
    try:
        server.wait()
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def write_raw_bundle(models: Path, payload: bytes, meta: dict[str, Any]) -> str:
    """A version folder written as an attacker (or a broken tool) would, then LATEST moved to it.

    Nothing is checked here: ``payload`` is stored as ``model.joblib`` with a matching sha256.
    """
    version = new_version()
    folder = models / NAME / version
    folder.mkdir(parents=True)
    (folder / "model.joblib").write_bytes(payload)
    doc = {
        **meta,
        "name": NAME,
        "version": version,
        "library_versions": library_versions(),
        "created_at": "2026-01-01T00:00:00+00:00",
        "sha256": sha256_hex(payload),
    }
    (folder / "metadata.json").write_text(json.dumps(doc))
    (models / NAME / "LATEST").write_text(version + "\n")
    return version


def joblib_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()
