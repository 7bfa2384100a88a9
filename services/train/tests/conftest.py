"""Fixtures: small prepared datasets written exactly per docs/contracts.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bundles import column_stats

from bench.datagen import N_FEATURES, feature_names, true_model


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


# ---- hard data: correlated columns and one-hot designs --------------------------------------


def correlated(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The benchmark's correlated dataset: three sizes of one object, its volume and a free
    column (after standardization the condition number is in the hundreds)."""
    from bench.train_bench import correlated_chunk

    numbers, _, target = correlated_chunk(np.random.default_rng([seed, 11]), rows)
    return np.column_stack(list(numbers.values())), target, list(numbers)


def skewed_levels(rng: np.random.Generator, rows: int, n_levels: int, prefix: str) -> np.ndarray:
    """``rows`` string levels ``prefix0..`` with Zipf-like frequencies (rare levels included)."""
    weights = 1.0 / np.arange(1, n_levels + 1) ** 1.2
    codes = rng.choice(n_levels, size=rows, p=weights / weights.sum())
    return np.array([f"{prefix}{i}" for i in range(n_levels)], dtype=object)[codes]


def one_hot_numeric(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A one-hot design written as numeric 0/1 columns that sum to one, plus two numbers, one
    of them mostly determined by the level."""
    rng = np.random.default_rng([seed, 12])
    levels = skewed_levels(rng, rows, 30, "c")
    names = [f"c{i}" for i in range(30)]
    onehot = (levels[:, None] == np.array(names, dtype=object)[None, :]).astype(np.float64)
    effects = rng.normal(0, 3.0, 30)
    # ``a`` is mostly its level's location (as a distance is mostly its destination's).
    numbers = rng.normal([0.0, 50.0], [0.05, 10.0], size=(rows, 2))
    numbers[:, 0] += onehot @ rng.normal(0, 1.0, 30)
    target = onehot @ effects + numbers @ [20.0, 0.1] + rng.normal(0, 1.0, rows)
    return np.column_stack([onehot, numbers]), target, [*names, "a", "b"]


def category_frame(
    rows: int, levels: dict[str, int], seed: int = 0
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Two numbers and category columns (name -> number of levels) with a level effect each."""
    rng = np.random.default_rng([seed, 13])
    numbers = rng.normal([0.0, 50.0], [1.0, 10.0], size=(rows, 2))
    target = numbers @ [2.0, 0.1] + rng.normal(0, 1.0, rows)
    cats = {}
    for name, n in levels.items():
        cats[name] = skewed_levels(rng, rows, n, f"{name}_")
        effects = dict(zip([f"{name}_{i}" for i in range(n)], rng.normal(0, 2.0, n), strict=True))
        target += np.array([effects[v] for v in cats[name]])
    return numbers, cats, target


def write_category_dataset(
    out: Path,
    numbers: np.ndarray,
    cats: dict[str, np.ndarray],
    y: np.ndarray,
    max_categories: int = 100,
    parts: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """A prepared dataset to the category contract: numbers ``a``, ``b`` (float64), category
    columns as dictionary-encoded strings, manifest ``feature_order`` and ``categories``."""
    numeric = ["a", "b"][: numbers.shape[1]]
    manifest = write_dataset(out, numbers, y, features=numeric, parts=parts, seed=seed)
    is_test = np.random.default_rng([seed, 99]).random(len(y)) < 0.2
    digest = hashlib.sha256()
    for split, mask in (("train", ~is_test), ("test", is_test)):
        rows_of = np.array_split(np.flatnonzero(mask), parts)
        for entry, rows in zip(manifest["splits"][split], rows_of, strict=True):
            table = pq.read_table(out / entry["path"])
            for name, values in cats.items():
                table = table.append_column(name, pa.array(values[rows]).dictionary_encode())
            pq.write_table(table, out / entry["path"])
            digest.update((out / entry["path"]).read_bytes())
    manifest["feature_order"] = [*numeric, *cats]
    manifest["categories"] = {
        name: category_stats(values[~is_test], max_categories) for name, values in cats.items()
    }
    manifest["spec"]["features"] = manifest["feature_order"]
    manifest["fingerprint"] = digest.hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def category_stats(values: np.ndarray, max_categories: int) -> dict[str, Any]:
    """The manifest's ``categories`` entry of one column (most frequent first, ties by name)."""
    levels, counts = np.unique(values.astype(str), return_counts=True)
    order = sorted(zip(levels.tolist(), counts.tolist(), strict=True), key=lambda t: (-t[1], t[0]))
    kept = [level for level, _ in order[:max_categories]]
    kept_rows = sum(count for _, count in order[:max_categories])
    return {
        "count": len(values),
        "distinct": len(order),
        "levels": dict(order),
        "kept": kept,
        "infrequent_share": 1.0 - kept_rows / len(values),
        "missing": "drop",
        "max_categories": max_categories,
    }


@pytest.fixture(scope="session")
def hard() -> Any:
    """The hard-data generators and the category dataset writer, for tests to call."""
    import types

    return types.SimpleNamespace(
        correlated=correlated,
        one_hot_numeric=one_hot_numeric,
        category_frame=category_frame,
        write_category_dataset=write_category_dataset,
    )
