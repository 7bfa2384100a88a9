"""The model store on its own: a worker never starts without a model while a good one exists."""

from __future__ import annotations

import shutil
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from predict_helpers import (
    FEATURES,
    NAME,
    joblib_bytes,
    make_model,
    metadata,
    publish,
    write_raw_bundle,
)
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regpipe_predict.model_store import ModelStore


def tamper(models: Path, version: str) -> None:
    path = models / NAME / version / "model.joblib"
    path.write_bytes(path.read_bytes() + b"tampered")


def test_starting_on_a_refused_latest_serves_the_newest_good_version(tmp_path: Path) -> None:
    models = tmp_path / "models"
    publish(models, seed=0)
    good = publish(models, seed=1)
    bad = publish(models, seed=2)  # LATEST now names this one
    tamper(models, bad)
    (models / NAME / f"{bad}.staging-0123").mkdir()  # half-published folders are skipped

    store = ModelStore(str(models / NAME), poll_interval=0)
    store.start()
    assert store.current is not None and store.current.version == good
    assert not store.refresh()  # the refused LATEST is not retried, the fallback stays

    newer = publish(models, seed=3)
    assert store.refresh()
    assert store.current.version == newer


def test_no_fallback_for_a_pinned_version_or_when_nothing_older_verifies(tmp_path: Path) -> None:
    models = tmp_path / "models"
    old = publish(models, seed=0)
    bad = publish(models, seed=1)
    tamper(models, bad)
    pinned = ModelStore(str(models / NAME / bad), poll_interval=0)
    pinned.start()
    assert pinned.current is None
    tamper(models, old)
    store = ModelStore(str(models / NAME), poll_interval=0)
    store.start()
    assert store.current is None


def test_bundles_that_verify_but_cannot_predict_are_refused_and_counted(tmp_path: Path) -> None:
    models = tmp_path / "models"
    good = publish(models, seed=0)
    refused: list[str] = []
    store = ModelStore(str(models / NAME), poll_interval=0, on_refuse=refused.append)
    store.start()
    assert store.current.version == good

    unfitted = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor())])
    write_raw_bundle(models, joblib_bytes(unfitted), metadata(make_model()))
    assert not store.refresh()
    wider = {**metadata(make_model()), "features": [*FEATURES, "extra"]}  # 6 names, 5 weights
    write_raw_bundle(models, joblib_bytes(make_model()), wider)
    assert not store.refresh()
    assert store.current.version == good and len(refused) == 2


def test_a_latest_naming_a_version_that_appears_later_is_picked_up(tmp_path: Path) -> None:
    models = tmp_path / "models"
    good = publish(models, seed=0)
    store = ModelStore(str(models / NAME), poll_interval=0)
    store.start()
    ahead = publish(tmp_path / "elsewhere", seed=1)  # published elsewhere, copied over later
    (models / NAME / "LATEST").write_text(ahead + "\n")
    assert not store.refresh() and store.current.version == good
    shutil.copytree(tmp_path / "elsewhere" / NAME / ahead, models / NAME / ahead)
    assert store.refresh() and store.current.version == ahead


@pytest.mark.parametrize("aligned", [True, False])
def test_linear_predict_equals_the_pipeline_without_a_fresh_copy(
    tmp_path: Path, aligned: bool
) -> None:
    """The served linear form gives model.predict's very numbers, for any row count, and a
    repeated 100,000-row batch allocates no new scaled copy of the matrix (only the output)."""
    from regpipe_common.bundle import load_bundle
    from regpipe_predict.model_store import prepare

    publish(tmp_path)
    bundle = load_bundle(str(tmp_path / NAME))
    served = prepare(bundle)
    assert served.linear is not None
    X = np.random.default_rng(3).normal(0, 100, (100_000, len(bundle.features)))
    if not aligned:  # a binary tensor after a JSON header of odd length, read in place
        raw = b"\0" * 3 + X.tobytes()
        X = np.frombuffer(raw, "<f8", offset=3).reshape(X.shape)
    sizes = [1, 2, 3, 4097, 31_250, 65_821, 100_000]
    sizes += np.random.default_rng(4).integers(1, 100_000, 10).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for n in sizes:
            assert np.array_equal(served.predict(X[:n]), bundle.model.predict(X[:n])), n
    served.predict(X)
    tracemalloc.start()
    try:
        served.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000 * 8 + 2**16, peak  # the predictions and a few small arrays
