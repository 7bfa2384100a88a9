"""The train job end to end, in this process, on small synthetic prepared datasets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from regpipe_common.bundle import REQUIRED_KEYS, load_bundle

ROWS = 60_000


def test_bundle_contents_and_sha256(make_dataset, train):
    data = make_dataset(ROWS)
    manifest = json.loads((data / "manifest.json").read_text())
    run = train(data, "--epochs", "3")
    assert run.code == 0
    meta = run.metadata
    version_dir = run.model_dir / run.latest
    assert sorted(p.name for p in version_dir.iterdir()) == [
        "coefficients.png",
        "learning_curve.png",
        "metadata.json",
        "model.joblib",
        "predicted_vs_actual.png",
        "report.html",
        "residuals.png",
    ]
    assert set(REQUIRED_KEYS) <= set(meta)
    assert meta["sha256"] == hashlib.sha256((version_dir / "model.joblib").read_bytes()).hexdigest()
    assert meta["name"] == "m" and meta["version"] == run.latest
    assert meta["features"] == list(manifest["features"])
    assert meta["target"] == "y"
    assert meta["dataset_fingerprint"] == manifest["fingerprint"]
    assert meta["feature_stats"] == manifest["features"]
    assert meta["target_stats"] == manifest["target"]
    assert meta["metrics"]["rows"] == manifest["rows_test"]
    assert set(meta["metrics"]) == {"rmse", "mae", "r2", "rows"}
    assert {"rmse", "r2", "gap_r2"} <= set(meta["optimum"])
    assert meta["params"]["epochs_run"] == len(meta["params"]["history"]) <= 3
    assert meta["params"]["batch_size"] == 20_000 and meta["params"]["seed"] == 0
    assert set(meta["library_versions"]) == {"python", "scikit-learn", "numpy", "joblib"}
    # The scaler holds the manifest's exact statistics.
    bundle = load_bundle(str(run.model_dir))
    scaler = bundle.model[0]
    stats = manifest["features"]
    np.testing.assert_array_equal(scaler.mean_, [stats[f]["mean"] for f in meta["features"]])
    np.testing.assert_array_equal(scaler.var_, [stats[f]["var"] for f in meta["features"]])
    assert scaler.n_samples_seen_ == manifest["rows_train"]
    # The checkpoint of a completed run is gone.
    assert not any((run.model_dir / ".checkpoints").rglob("state.joblib"))


def test_metrics_match_a_direct_computation(make_dataset, train):
    import pyarrow.parquet as pq

    data = make_dataset(ROWS)
    run = train(data, "--epochs", "2")
    meta, model = run.metadata, load_bundle(str(run.model_dir)).model
    test = [pq.read_table(p).to_pandas() for p in sorted((data / "test").glob("*.parquet"))]
    x = np.concatenate([t[meta["features"]].to_numpy() for t in test])
    y = np.concatenate([t["y"].to_numpy() for t in test])
    residual = y - model.predict(x)
    assert meta["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-9)
    assert meta["metrics"]["mae"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-9)
    r2 = 1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)
    assert meta["metrics"]["r2"] == pytest.approx(r2, abs=1e-9)


def test_r2_within_target_gap_of_the_exact_optimum(make_dataset, train):
    """Synthetic data with known weights: the optimum finds them, SGD gets within 0.0005."""
    from bench.datagen import true_model

    data = make_dataset(200_000, parts=5)
    run = train(data)
    meta = run.metadata
    assert meta["optimum"]["r2"] > 0.9
    assert 0 <= meta["optimum"]["gap_r2"] < 0.0005
    assert meta["optimum"]["r2"] - meta["metrics"]["r2"] == pytest.approx(meta["optimum"]["gap_r2"])
    # Weights back in the original units are the true ones, within the noise.
    _, _, weights, intercept = true_model(0)
    model = load_bundle(str(run.model_dir)).model
    raw = model[-1].coef_ / model[0].scale_
    assert np.allclose(raw * model[0].scale_, weights * model[0].scale_, atol=0.01)
    assert meta["metrics"]["rmse"] == pytest.approx(1.0, abs=0.02)  # the noise's sd
    assert intercept == pytest.approx(model[-1].intercept_[0] - raw @ model[0].mean_, abs=0.05)


def test_same_seed_same_model_whatever_the_worker_count(make_dataset, train, monkeypatch):
    data = make_dataset(ROWS)
    first = train(data, "--epochs", "3", "--seed", "7", name="a")
    monkeypatch.setenv("DASK_N_WORKERS", "1")
    second = train(data, "--epochs", "3", "--seed", "7", name="b")
    other_seed = train(data, "--epochs", "3", "--seed", "8", name="c")
    np.testing.assert_array_equal(first.coef(), second.coef())
    assert first.metadata["metrics"] == second.metadata["metrics"]
    assert not np.array_equal(first.coef(), other_seed.coef())


def test_early_stopping_patience_and_tolerance(make_dataset, train):
    data = make_dataset(ROWS)
    strict = train(data, "--epochs", "20", "--patience", "1", "--tolerance", "1", name="s")
    params = strict.metadata["params"]
    # With a tolerance no epoch can beat, the first epoch is best and one more is run.
    assert params["epochs_run"] == 2 and params["best_epoch"] == 1 and params["stopped_early"]
    patient = train(data, "--epochs", "4", "--patience", "10", "--tolerance", "0", name="p")
    assert patient.metadata["params"]["epochs_run"] == 4


def test_flags_fall_back_to_environment(make_dataset, train, monkeypatch, tmp_path, capsys):
    from regpipe_train.cli import main

    data = make_dataset(ROWS)
    monkeypatch.setenv("TRAIN_DATA", str(data))
    monkeypatch.setenv("TRAIN_MODELS", str(tmp_path / "env-models"))
    monkeypatch.setenv("TRAIN_NAME", "envmodel")
    monkeypatch.setenv("TRAIN_EPOCHS", "2")
    monkeypatch.setenv("TRAIN_BATCH_SIZE", "5000")
    monkeypatch.setenv("TRAIN_SEED", "3")
    assert main([]) == 0
    latest = (tmp_path / "env-models" / "envmodel" / "LATEST").read_text().strip()
    meta = json.loads((tmp_path / "env-models" / "envmodel" / latest / "metadata.json").read_text())
    assert (meta["params"]["batch_size"], meta["params"]["seed"], meta["params"]["epochs"]) == (
        5000,
        3,
        2,
    )
    out = capsys.readouterr().out
    assert "gap" in out and "optimum" in out
    monkeypatch.setenv("TRAIN_EPOCHS", "two")
    assert main([]) == 2
    assert "TRAIN_EPOCHS='two' is not an integer" in capsys.readouterr().err


def test_help_documents_every_environment_variable(capsys):
    from regpipe_train.cli import main
    from regpipe_train.settings import SCHEMA

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--data", "--models", "--name", "--epochs", "--batch-size", "--seed", "--resume"):
        assert flag in text
    for setting in SCHEMA.settings.values():
        assert setting.env in text


def _published_nothing(run) -> bool:
    return not run.model_dir.exists() or not any(
        p.is_dir() and not p.name.startswith(".") for p in run.model_dir.iterdir()
    )


def _set_manifest(data: Path, edit) -> None:
    path = data / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _drop_column(data: Path, column: str) -> None:
    import pyarrow.parquet as pq

    part = data / "train" / "part-00001.parquet"
    pq.write_table(pq.read_table(part).drop_columns([column]), part)


def _poison_value(data: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = data / "train" / "part-00002.parquet"
    table = pq.read_table(part)
    values = table.column("f03").to_numpy().copy()
    values[17] = np.inf
    pq.write_table(table.set_column(3, "f03", pa.array(values)), part)


def _truncate_part(data: Path) -> None:
    part = data / "train" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])


def _corrupt_part(data: Path) -> None:
    """Keep the footer (the file opens) and scribble over the column data."""
    part = data / "train" / "part-00002.parquet"
    raw = bytearray(part.read_bytes())
    raw[8 : len(raw) // 2] = b"\xab" * (len(raw) // 2 - 8)
    part.write_bytes(bytes(raw))


def _empty_train(data: Path) -> None:
    def edit(doc):
        doc["splits"]["train"] = []
        doc["rows_train"] = 0

    _set_manifest(data, edit)


BAD_INPUTS = {
    "missing manifest": (lambda d: (d / "manifest.json").unlink(), [], "manifest.json not found"),
    "incomplete manifest": (
        lambda d: _set_manifest(d, lambda doc: doc.pop("splits")),
        [],
        "incomplete: missing key(s) splits",
    ),
    "feature stats missing": (
        lambda d: _set_manifest(d, lambda doc: doc["features"]["f05"].pop("var")),
        [],
        "feature 'f05' lacks statistic(s) var",
    ),
    "feature missing from a partition": (
        lambda d: _drop_column(d, "f04"),
        [],
        "part-00001.parquet: column(s) f04 missing from partition",
    ),
    "partition file missing": (
        lambda d: (d / "train" / "part-00003.parquet").unlink(),
        [],
        "part-00003.parquet: partition listed in the manifest not found",
    ),
    "partition row count differs": (
        lambda d: _set_manifest(d, lambda doc: doc["splits"]["train"][0].update(rows=7)),
        [],
        "part-00000.parquet: 3983 rows, the manifest says 7",
    ),
    "truncated partition": (_truncate_part, [], "part-00001.parquet: not a readable Parquet"),
    "corrupt partition": (_corrupt_part, [], "part-00002.parquet: not a readable Parquet"),
    "empty train split": (_empty_train, [], "the train split is empty"),
    "non-finite value": (_poison_value, [], "column 'f03' has a non-finite value (inf) at row 17"),
    "diverging loss": (lambda d: None, ["--eta0", "1e6"], "SGD diverged at epoch 1"),
    "exploding weights": (lambda d: None, ["--max-weight", "1e-3"], "a weight reached"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_publishes_nothing(case, copy_dataset, train, capsys):
    data = copy_dataset(20_000)
    corrupt, flags, message = BAD_INPUTS[case]
    corrupt(data)
    run = train(data, "--epochs", "2", *flags)
    err = capsys.readouterr().err
    assert run.code == 2
    assert "regpipe-train: error: " in err and message in err, err
    assert len([line for line in err.splitlines() if "regpipe-train: error" in line]) == 1
    assert run.latest is None and _published_nothing(run)


def test_bad_settings_are_refused(make_dataset, train, capsys):
    run = train(make_dataset(20_000), "--validation-fraction", "0.9")
    assert run.code == 2
    err = capsys.readouterr().err
    assert "--validation-fraction / TRAIN_VALIDATION_FRACTION='0.9' must be in (0, 0.5)" in err
    assert run.latest is None


def test_tiny_dataset_without_validation_rows_trains_every_epoch(tmp_path, train, dataset_writer):
    x = np.random.default_rng(0).normal(size=(60, 3))
    y = x @ [1.0, -2.0, 0.5] + 3
    dataset_writer(tmp_path / "tiny", x, y, parts=2)
    run = train(tmp_path / "tiny", "--epochs", "3", "--validation-fraction", "0.0001")
    assert run.code == 0
    params = run.metadata["params"]
    assert params["epochs_run"] == 3 and params["validation_r2"] is None
    assert all(h["validation_r2"] is None for h in params["history"])


def test_large_target_offset_is_not_mistaken_for_divergence(tmp_path, train, dataset_writer):
    """The intercept is checked against the target's mean, not against zero."""
    x = np.random.default_rng(1).normal(size=(20_000, 3))
    y = x @ [1.0, -2.0, 0.5] + 5e7
    dataset_writer(tmp_path / "offset", x, y, parts=2)
    run = train(tmp_path / "offset", "--epochs", "2", "--max-weight", "10")
    assert run.code == 0
    assert run.metadata["optimum"]["r2"] > 0.99
    assert run.metadata["optimum"]["gap_r2"] < 0.0005
    assert load_bundle(str(run.model_dir)).model.predict(x[:1])[0] == pytest.approx(y[0], abs=0.1)


def test_a_versioned_dataset_trains_like_the_flat_layout(make_dataset, copy_dataset, train):
    """preprocess publishes ``<data>/<version>/...`` behind ``manifest.json``; older datasets
    are flat. ``--data`` is the same URL for both and gives the same model."""
    from regpipe_common import dataset

    data = copy_dataset(20_000)
    version_url = dataset.new_version_url(str(data))
    for split in ("train", "test"):
        (data / split).rename(Path(version_url) / split)
    dataset.publish_version(
        str(data), version_url, json.loads((data / "manifest.json").read_text())
    )
    assert sorted(p.name for p in data.iterdir()) == sorted(
        ["manifest.json", Path(version_url).name]
    )
    flat = train(make_dataset(20_000), "--epochs", "2", name="flat")
    versioned = train(data, "--epochs", "2", name="versioned")
    assert versioned.code == 0 == flat.code
    assert versioned.metadata["metrics"] == flat.metadata["metrics"]
    np.testing.assert_array_equal(versioned.coef(), flat.coef())
