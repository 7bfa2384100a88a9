"""A bundle with category features (the issue 11 contract: ColumnTransformer of a scaler on the
numeric columns and a one-hot encoder of the kept levels on the category columns, then
SGDRegressor), hand-built and published with ``publish_bundle``, scored from raw CSV and from
prepared Parquet whose category columns are dictionary-encoded strings."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from regpipe_common.bundle import publish_bundle
from regpipe_common.spec import MISSING_LEVEL

FEATURES = ["x1", "color", "x2", "shape"]  # numbers and categories interleaved: model order
KEPT = {"color": ["red", "green", MISSING_LEVEL], "shape": ["round", "square"]}
ROWS = 3_000


def _frame(seed: int) -> pd.DataFrame:
    """Rows with a missing color (``missing: level``), a missing shape (``drop``), rare and
    unseen colors."""
    rng = np.random.default_rng(seed)
    color = rng.choice(
        ["red", "green", "blue", "teal", "purple"], ROWS, p=[0.4, 0.3, 0.2, 0.05, 0.05]
    )
    color = np.where(rng.random(ROWS) < 0.05, None, color)
    shape = np.where(rng.random(ROWS) < 0.03, None, rng.choice(["round", "square"], ROWS))
    frame = pd.DataFrame(
        {
            "id": np.arange(ROWS, dtype=np.int64) + 500,
            "x1": rng.normal(5, 10, ROWS),
            "color": color,
            "x2": rng.uniform(0, 1, ROWS),
            "shape": shape,
        }
    )
    effect = frame["color"].map({"red": 3.0, "green": -2.0}).fillna(0.5)
    frame["y"] = 2 * frame["x1"] - frame["x2"] + effect + (frame["shape"] == "round") * 1.5
    return frame


def _model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """What the model takes: missing colors as the missing level, rows missing a shape gone."""
    rows = frame[frame["shape"].notna()].copy()
    rows["color"] = rows["color"].fillna(MISSING_LEVEL)
    return rows


@pytest.fixture(scope="module")
def category_bundle(tmp_path_factory) -> tuple[Path, Pipeline]:
    train = _model_input(_frame(seed=1))
    encode = ColumnTransformer(
        [
            ("number", StandardScaler(), [0, 2]),
            (
                "category",
                OneHotEncoder(
                    categories=[KEPT["color"], KEPT["shape"]],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                [1, 3],
            ),
        ]
    )
    model = Pipeline([("encode", encode), ("sgd", SGDRegressor(random_state=0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown levels encode as zeros
        model.fit(train[FEATURES].to_numpy(dtype=object), train["y"].to_numpy())
    stats = {
        f: {"count": len(train), "mean": float(train[f].mean()), "var": float(train[f].var())}
        for f in ("x1", "x2")
    }
    metadata = {
        "features": FEATURES,
        "target": "y",
        "categories": {
            "color": {"levels": KEPT["color"], "infrequent_share": 0.3, "missing": "level"},
            "shape": {"levels": KEPT["shape"], "infrequent_share": 0.0, "missing": "drop"},
        },
        "feature_stats": stats,
        "target_stats": {
            "name": "y",
            "count": len(train),
            "mean": float(train["y"].mean()),
            "var": float(train["y"].var()),
        },
        "metrics": {},
        "optimum": {},
        "params": {},
        "dataset_fingerprint": "hand-built",
    }
    models = tmp_path_factory.mktemp("category-models")
    publish_bundle(str(models), "cat", model, metadata)
    return models / "cat", model


def _expected(model: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.predict(rows[FEATURES])  # the contract's DataFrame input


def _spec(path: Path) -> Path:
    columns = [
        {"name": "id", "type": "int"},
        {"name": "x1", "type": "float"},
        {"name": "color", "type": "category", "max_categories": 3, "missing": "level"},
        {"name": "x2", "type": "float"},
        {"name": "shape", "type": "category"},
        {"name": "y", "type": "float"},
    ]
    doc = {"name": "shapes", "columns": columns, "target": "y", "features": FEATURES, "key": "id"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_category_bundle_scores_raw_csv(category_bundle, score, helpers, tmp_path):
    models, model = category_bundle
    frame = _frame(seed=2)
    csv = tmp_path / "shapes.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "scored"
    spec = _spec(tmp_path / "shapes.yaml")
    code, _, err = score("--input", csv, "--spec", spec, "--model", models, "--output", out)
    assert code == 0, err
    manifest, scored = helpers.read_output(out)
    rows = _model_input(frame)
    assert manifest["rows_missing"] == int(frame["shape"].isna().sum()) > 0
    assert {r["column"] for r in manifest["rejected_examples"]} == {"shape"}
    assert manifest["rows_scored"] == len(rows) and manifest["rows_malformed"] == 0
    np.testing.assert_array_equal(scored["id"], rows["id"])
    np.testing.assert_allclose(scored["prediction"], _expected(model, rows), rtol=1e-12)
    # Unseen and infrequent levels are scored (their effect is the intercept's), not rejected.
    assert {"blue", "teal", "purple"} <= set(rows["color"])
    assert manifest["metrics"]["r2"] > 0.9


def _prepared(root: Path, frame: pd.DataFrame) -> Path:
    """A prepared dataset as preprocess writes one for a category spec: category columns as
    dictionary-encoded strings, a missing ``level`` color as ``MISSING_LEVEL``; one part with a
    null shape (a row the reader must report, not score)."""
    (root / "test").mkdir(parents=True)
    frame = frame.copy()
    frame["color"] = frame["color"].fillna(MISSING_LEVEL)
    columns = {
        "id": pa.array(frame["id"]),
        "x1": pa.array(frame["x1"]),
        "color": pa.array(frame["color"]).dictionary_encode(),
        "x2": pa.array(frame["x2"]),
        "shape": pa.array(frame["shape"]).dictionary_encode(),
        "y": pa.array(frame["y"]),
    }
    pq.write_table(pa.table(columns), root / "test" / "part-00000.parquet")
    stats = {"count": 1, "mean": 0.0, "var": 1.0, "min": -5.0, "max": 5.0}
    manifest = {
        "format": "regpipe-dataset/1",
        "splits": {"train": [], "test": [{"path": "test/part-00000.parquet", "rows": len(frame)}]},
        "features": {"x1": stats, "x2": stats},
        "target": {"name": "y", **stats},
        "feature_order": FEATURES,
        "spec": {"key": ["id"]},
        "fingerprint": "f" * 64,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_category_bundle_scores_prepared_parquet(category_bundle, score, helpers, tmp_path):
    models, model = category_bundle
    frame = _frame(seed=3)
    data = _prepared(tmp_path / "prepared", frame)
    out = tmp_path / "scored"
    code, _, err = score("--input", data / "test", "--model", models, "--output", out)
    assert code == 0, err
    manifest, scored = helpers.read_output(out)
    rows = _model_input(frame)
    assert manifest["key"] == ["id"] and list(scored.columns) == [
        "id",
        "prediction",
        "y",
        "residual",
    ]
    assert manifest["rows_missing"] == int(frame["shape"].isna().sum()) > 0
    np.testing.assert_array_equal(scored["id"], rows["id"])
    np.testing.assert_allclose(scored["prediction"], _expected(model, rows), rtol=1e-12)


def test_a_spec_that_types_a_feature_otherwise_than_the_model_is_refused(
    category_bundle, score, tmp_path
):
    models, _ = category_bundle
    csv = tmp_path / "shapes.csv"
    _frame(seed=4).to_csv(csv, index=False)
    spec = _spec(tmp_path / "shapes.yaml")
    spec.write_text(
        spec.read_text().replace("name: x1\n  type: float", "name: x1\n  type: category")
    )
    out = tmp_path / "scored"
    code, _, err = score("--input", csv, "--spec", spec, "--model", models, "--output", out)
    assert code == 2 and not out.exists()
    assert "column 'x1' is category; the model takes it as int or float" in err
