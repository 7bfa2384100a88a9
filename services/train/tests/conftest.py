"""Fixtures: small prepared datasets written exactly per docs/contracts.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for bench.datagen, the benchmark's generator

from bundles import column_stats  # noqa: E402 (tests/support)

from bench.datagen import N_FEATURES, feature_names, true_model  # noqa: E402


def synthetic(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The benchmark generator's model (mixed scales, known weights), without missing cells."""
    locs, scales, weights, intercept = true_model(seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(rows, N_FEATURES)) * scales + locs
    y = x @ weights + intercept + rng.normal(0, 1.0, rows)
    return x, y, {"weights": weights, "intercept": intercept}


def write_dataset(
    out: Path,
    x: np.ndarray,
    y: np.ndarray,
    features: list[str] | None = None,
    parts: int = 4,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``train/`` and ``test/`` parts and ``manifest.json`` (last); return the manifest."""
    features = features or feature_names()[: x.shape[1]]
    is_test = np.random.default_rng([seed, 99]).random(len(y)) < test_fraction
    manifest_splits: dict[str, list[dict[str, Any]]] = {}
    digest = hashlib.sha256()
    for split, mask in (("train", ~is_test), ("test", is_test)):
        xs, ys = x[mask], y[mask]
        (out / split).mkdir(parents=True, exist_ok=True)
        entries = []
        for i, rows in enumerate(np.array_split(np.arange(len(ys)), parts)):
            columns = {f: xs[rows, j] for j, f in enumerate(features)} | {"y": ys[rows]}
            rel = f"{split}/part-{i:05d}.parquet"
            pq.write_table(pa.table(columns), out / rel)
            digest.update((out / rel).read_bytes())
            entries.append({"path": rel, "rows": len(rows)})
        manifest_splits[split] = entries
    train = ~is_test
    manifest = {
        "format": "regpipe-dataset/1",
        "input": "synthetic",
        "rows_read": len(y),
        "rows_rejected": 0,
        "rows_dropped_missing": 0,
        "rows_train": int(train.sum()),
        "rows_test": int(is_test.sum()),
        "features": {f: column_stats(x[train, j]) for j, f in enumerate(features)},
        "target": {"name": "y", **column_stats(y[train])},
        "splits": manifest_splits,
        "test_fraction": test_fraction,
        "seed": seed,
        "spec": {"name": "synthetic", "target": "y", "features": features, "key": []},
        "fingerprint": digest.hexdigest(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


@pytest.fixture(scope="session")
def dataset_writer() -> Callable[..., dict[str, Any]]:
    """:func:`write_dataset`, for tests that build their own arrays."""
    return write_dataset


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_dataset(rows, parts=4, seed=0)``: a synthetic prepared dataset, cached by args."""
    cache: dict[tuple, Path] = {}

    def make(rows: int, parts: int = 4, seed: int = 0) -> Path:
        key = (rows, parts, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"data-{rows}-{parts}-{seed}")
            x, y, _ = synthetic(rows, seed)
            write_dataset(out, x, y, parts=parts, seed=seed)
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture
def copy_dataset(make_dataset: Callable[..., Path], tmp_path: Path) -> Callable[..., Path]:
    """``copy_dataset(rows, parts=4)``: a private copy of a cached dataset, to break."""

    def copy(rows: int, parts: int = 4) -> Path:
        out = tmp_path / "data"
        shutil.copytree(make_dataset(rows, parts), out)
        return out

    return copy


@pytest.fixture
def train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., TrainRun]:
    """``train(data, *flags, name="m")``: run ``regpipe-train``'s ``main`` in this process."""
    from regpipe_train.cli import main

    for var in list(os.environ):
        if var.startswith("TRAIN_") or var == "DASK_SCHEDULER_ADDRESS":
            monkeypatch.delenv(var)
    monkeypatch.setenv("DASK_N_WORKERS", "2")

    def run(
        data: Path | str, *flags: str, name: str = "m", models: Path | str | None = None
    ) -> TrainRun:
        models = models or tmp_path / "models"
        code = main(["--data", str(data), "--models", str(models), "--name", name, *flags])
        return TrainRun(code=code, models=models, name=name)

    return run


@dataclass
class TrainRun:
    code: int
    models: Path | str  # the helpers below read local model stores only
    name: str

    @property
    def model_dir(self) -> Path:
        return Path(self.models) / self.name

    @property
    def latest(self) -> str | None:
        path = self.model_dir / "LATEST"
        return path.read_text().strip() if path.exists() else None

    @property
    def metadata(self) -> dict[str, Any]:
        assert self.latest, f"nothing published (exit {self.code})"
        return json.loads((self.model_dir / self.latest / "metadata.json").read_text())

    def coef(self) -> np.ndarray:
        from regpipe_common.bundle import load_bundle

        sgd = load_bundle(str(self.model_dir)).model[-1]
        return np.append(sgd.coef_, sgd.intercept_)
