"""Category features (issue 11): a manifest with ``categories`` gives a category bundle whose
model applies the training-time encoding itself, reaches the optimum, and resumes exactly."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from regpipe_common.bundle import category_levels, load_bundle

LEVELS = {"color": 10, "city": 100, "shop": 1000}  # "shop" keeps its 100 most frequent levels
ROWS = 200_000


@pytest.fixture(scope="module")
def category_data(tmp_path_factory, hard) -> Path:
    out = tmp_path_factory.mktemp("categories")
    numbers, cats, y = hard.category_frame(ROWS, LEVELS)
    hard.write_category_dataset(out, numbers, cats, y, parts=5)
    return out


def _test_rows(data: Path, features: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    tables = [pq.read_table(p).to_pandas() for p in sorted((data / "test").glob("*.parquet"))]
    frame = pd.concat(tables, ignore_index=True)
    return frame[features].astype({f: str for f in LEVELS}), frame["y"].to_numpy()


def test_category_manifest_gives_a_category_bundle_at_the_optimum(category_data, train):
    manifest = json.loads((category_data / "manifest.json").read_text())
    run = train(category_data)
    assert run.code == 0
    meta = run.metadata
    assert meta["features"] == manifest["feature_order"] == ["a", "b", "color", "city", "shop"]
    assert meta["feature_stats"] == manifest["features"]  # numeric only
    assert set(meta["categories"]) == set(LEVELS)
    for feature, entry in meta["categories"].items():
        assert entry["levels"] == manifest["categories"][feature]["kept"]
        assert entry["infrequent_share"] == manifest["categories"][feature]["infrequent_share"]
        assert entry["missing"] == "drop"
    assert len(meta["categories"]["shop"]["levels"]) == 100
    assert meta["categories"]["shop"]["infrequent_share"] > 0
    pre = meta["params"]["preconditioning"]
    assert pre == {"method": "whitened", "columns": 2 + 10 + 100 + 100, "rank": pre["rank"]}
    assert pre["rank"] == 2 + 10 + 100 + 100 - 2  # color and city each sum to one
    assert meta["optimum"]["r2"] > 0.5 and meta["optimum"]["gap_r2"] < 2e-4
    assert meta["params"]["model"].startswith("Pipeline(ColumnTransformer(")
    bundle = load_bundle(str(run.model_dir))  # the probe rows of a category bundle predict
    assert category_levels(bundle.metadata) == {
        f: e["levels"] for f, e in meta["categories"].items()
    }
    report = (run.model_dir / run.latest / "report.html").read_text()
    assert "whitened design (rank 210 of 212 columns)" in report
    names = [r["feature"] for r in meta["coefficients"]["features"]]
    assert "color=color_0" in names and "a" in names


def test_training_transform_is_the_serving_transform(category_data, train):
    from regpipe_train.dataset import load_dataset, read_partition

    run = train(category_data, "--epochs", "2")
    meta, model = run.metadata, load_bundle(str(run.model_dir)).model
    frame, y = _test_rows(category_data, meta["features"])
    # The training-time encoding of the same rows (standardized numbers + one-hot levels).
    dataset = load_dataset(str(category_data))
    blocks = [read_partition(part, dataset) for part in dataset.test]
    design = np.concatenate([b.dense(dataset.layout) for b in blocks])
    objects = frame.to_numpy(dtype=object)
    np.testing.assert_allclose(model[0].transform(objects), design, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fitted without feature names
        on_frame = model.predict(frame)
    on_objects = model.predict(objects)
    np.testing.assert_array_equal(on_objects, on_frame)
    sgd = model[-1]
    np.testing.assert_allclose(on_objects, design @ sgd.coef_ + sgd.intercept_[0], rtol=1e-12)
    residual = y - on_objects
    r2 = 1 - residual @ residual / ((y - y.mean()) @ (y - y.mean()))
    assert meta["metrics"]["r2"] == pytest.approx(r2, abs=1e-9)


def test_an_unseen_or_infrequent_level_encodes_as_zeros(category_data, train):
    run = train(category_data, "--epochs", "1")
    model = load_bundle(str(run.model_dir)).model
    kept = run.metadata["categories"]["shop"]["levels"]
    rows = np.array([[0.0, 50.0, "color_0", "city_0", s] for s in (kept[0], "nope")], dtype=object)
    encoded = model[0].transform(rows)
    shop = slice(encoded.shape[1] - len(kept), encoded.shape[1])
    assert encoded[0, shop].sum() == 1 and encoded[1, shop].sum() == 0
    first, unseen = model.predict(rows)
    assert first - unseen == pytest.approx(model[-1].coef_[shop][0], rel=1e-12)


def test_a_design_too_wide_for_a_dense_gram_trains_without_the_optimum(tmp_path, hard, train):
    from regpipe_train.design import MAX_GRAM_COLUMNS

    rng = np.random.default_rng(5)
    ids = rng.integers(0, 4_500, 60_000)  # every level seen, about 13 rows each
    numbers = rng.normal(size=(60_000, 2))
    y = numbers @ [2.0, -1.0] + rng.normal(0, 1.0, 4_500)[ids] + rng.normal(0, 0.5, 60_000)
    cats = {"id": np.array([f"id_{i}" for i in ids], dtype=object)}
    hard.write_category_dataset(tmp_path / "data", numbers, cats, y, max_categories=5_000)
    run = train(tmp_path / "data", "--epochs", "2")
    assert run.code == 0
    meta = run.metadata
    width = 2 + len(meta["categories"]["id"]["levels"])
    assert width > MAX_GRAM_COLUMNS
    pre = meta["params"]["preconditioning"]
    assert pre["method"] == "none" and pre["columns"] == width
    assert f"> {MAX_GRAM_COLUMNS}" in pre["reason"]
    assert meta["optimum"]["method"] == "skipped" and meta["optimum"]["r2"] is None
    assert meta["optimum"]["skipped"] == pre["reason"]
    assert meta["metrics"]["r2"] > 0.5
    report = (run.model_dir / run.latest / "report.html").read_text()
    assert "skipped" in report
    load_bundle(str(run.model_dir))


def test_resume_of_an_interrupted_category_run_matches_an_uninterrupted_one(
    category_data, train, tmp_path, monkeypatch
):
    from regpipe_train import checkpoint

    flags = ["--epochs", "3", "--patience", "100"]
    real_save = checkpoint.save

    def save_then_stop(url: str, state) -> None:
        real_save(url, state)
        if state.epochs_done == 1:
            raise RuntimeError("interrupted after epoch 1")

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    models = tmp_path / "models"
    assert train(category_data, *flags, models=models).code != 0
    assert any((models / "m" / ".checkpoints").rglob("state.joblib"))
    monkeypatch.setattr(checkpoint, "save", real_save)
    resumed = train(category_data, *flags, "--resume", models=models)
    reference = train(category_data, *flags, name="reference", models=tmp_path / "ref")
    assert resumed.code == 0 and resumed.metadata["params"]["epochs_run"] == 3
    np.testing.assert_array_equal(resumed.coef(), reference.coef())
    assert resumed.metadata["metrics"] == reference.metadata["metrics"]


def test_a_category_column_that_is_not_strings_names_the_column(tmp_path, hard, train, capsys):
    numbers, cats, y = hard.category_frame(5_000, {"color": 5})
    data = tmp_path / "data"
    hard.write_category_dataset(data, numbers, cats, y)
    part = next((data / "train").glob("*.parquet"))
    table = pq.read_table(part)
    column = table.schema.get_field_index("color")
    pq.write_table(table.set_column(column, "color", [np.arange(table.num_rows)]), part)
    assert train(data).code == 2
    err = capsys.readouterr().err
    assert "color" in err and part.name in err and "not strings" in err


def test_the_gate_compares_with_a_current_category_model(category_data, train, tmp_path):
    models = tmp_path / "models"
    first = train(category_data, "--epochs", "1", models=models).metadata
    second = train(category_data, "--epochs", "2", models=models)
    promotion = second.metadata["promotion"]
    assert promotion["current_version"] == first["version"]
    # The current model, written on the new design, scores what it scored when published.
    assert promotion["current_metrics"]["r2"] == pytest.approx(first["metrics"]["r2"], abs=1e-12)
    assert promotion["promoted"], promotion["reason"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: doc["categories"]["color"].update(kept=[]), "keeps no level"),
        (lambda doc: doc["categories"]["color"].pop("kept"), "lacks its 'kept' list"),
        (lambda doc: doc["feature_order"].append("size"), "neither statistics"),
    ],
    ids=["no-kept-level", "no-kept-list", "unknown-feature"],
)
def test_a_bad_category_manifest_names_the_feature(edit, message, tmp_path, hard, train, capsys):
    numbers, cats, y = hard.category_frame(2_000, {"color": 5})
    data = tmp_path / "data"
    doc = hard.write_category_dataset(data, numbers, cats, y)
    edit(doc)
    (data / "manifest.json").write_text(json.dumps(doc))
    assert train(data).code == 2
    err = capsys.readouterr().err
    assert message in err and "manifest.json" in err
    assert not (tmp_path / "models" / "m" / "LATEST").exists()
