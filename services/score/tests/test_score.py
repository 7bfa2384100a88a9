"""regpipe-score end to end, in this process, on a real preprocess + train pipeline."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regpipe_common.bundle import load_bundle, publish_bundle
from regpipe_score.predictor import predictor_for


def test_latest_model_scores_the_test_split_with_train_metrics(pipeline, score, helpers, tmp_path):
    out = tmp_path / "scored"
    code, stdout, err = score(
        "--input", pipeline.prepared / "test", "--model", pipeline.models / "m", "--output", out
    )
    assert code == 0, err
    latest = pipeline.versions[-1]
    meta, prepared = pipeline.metadata(latest), pipeline.manifest
    manifest, scored = helpers.read_output(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(p["path"] for p in manifest["parts"])]
    )
    assert len(manifest["parts"]) == len(prepared["splits"]["test"]) > 1
    assert manifest["model"] == {"name": "m", "version": latest}
    assert manifest["rows_read"] == manifest["rows_scored"] == prepared["rows_test"]
    assert manifest["rows_rejected"] == 0
    assert manifest["dataset_fingerprint"] == prepared["fingerprint"]
    assert len(manifest["input_fingerprint"]) == 64
    # Preprocess writes the spec's row key (id) into the parts: it leads the output.
    assert manifest["key"] == ["id"]
    assert list(scored.columns) == ["id", "prediction", "y", "residual"]
    # Metrics equal train's test metrics on the same split.
    for name in ("rmse", "mae", "r2"):
        assert manifest["metrics"][name] == pytest.approx(meta["metrics"][name], rel=1e-9)
    assert manifest["metrics"]["rows"] == meta["metrics"]["rows"]
    # Predictions are the model's own, row for row.
    test = helpers.read_split(pipeline.prepared)
    model = load_bundle(str(pipeline.models / "m")).model
    expected = model.predict(test[meta["features"]].to_numpy())
    np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(scored["y"], test["y"])
    np.testing.assert_allclose(scored["residual"], test["y"] - expected, rtol=1e-9, atol=1e-9)
    assert f"m/{latest}" in stdout and "rows_scored" not in stdout


def test_a_pinned_version_is_used_and_an_unknown_one_refused(pipeline, score, helpers, tmp_path):
    old, latest = pipeline.versions
    pinned, follow = tmp_path / "pinned", tmp_path / "latest"
    test = pipeline.prepared / "test"
    assert (
        score("--input", test, "--model", f"{pipeline.models}/m@{old}", "--output", pinned)[0] == 0
    )
    assert score("--input", test, "--model", pipeline.models / "m", "--output", follow)[0] == 0
    old_manifest, old_scores = helpers.read_output(pinned)
    new_manifest, new_scores = helpers.read_output(follow)
    assert old_manifest["model"]["version"] == old and new_manifest["model"]["version"] == latest
    assert old_manifest["metrics"]["r2"] == pytest.approx(pipeline.metadata(old)["metrics"]["r2"])
    assert not np.allclose(old_scores["prediction"], new_scores["prediction"])

    missing = tmp_path / "missing"
    code, _, err = score(
        "--input", test, "--model", f"{pipeline.models}/m@2001", "--output", missing
    )
    assert code == 2
    assert err.startswith("regpipe-score: error:") and "version 2001 of m not found" in err
    assert not missing.exists()


def test_a_tampered_model_is_refused_and_nothing_is_published(pipeline, score, tmp_path):
    models = tmp_path / "models"

    shutil.copytree(pipeline.models / "m", models / "m")
    model_file = models / "m" / pipeline.versions[-1] / "model.joblib"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    out = tmp_path / "scored"
    code, _, err = score(
        "--input", pipeline.prepared / "test", "--model", models / "m", "--output", out
    )
    assert code == 2
    assert "sha256" in err and "tampered" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("scored.staging-*"))


def _with_id_and_a_hole(pipeline, tmp_path: Path, row: int, column: str) -> tuple[Path, Path]:
    """A copy of the prepared dataset whose first test part has ``id`` = 1000, 1001, ... (the
    other parts 0, 1, ...) and one missing feature cell; returns (dataset, that part)."""

    data = tmp_path / "prepared"
    shutil.copytree(pipeline.prepared, data)
    manifest = json.loads((data / "manifest.json").read_text())
    part = data / manifest["splits"]["test"][0]["path"]
    table = pq.read_table(part)
    ids = pa.array(np.arange(table.num_rows, dtype=np.int64) + 1000)
    values = table.column(column).to_numpy().copy()
    values[row] = np.nan
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values))
    pq.write_table(_with_id(table, ids), part)
    for entry in manifest["splits"]["test"][1:]:
        other = pq.read_table(data / entry["path"])
        ids = pa.array(np.arange(other.num_rows, dtype=np.int64))
        pq.write_table(_with_id(other, ids), data / entry["path"])
    return data, part


def _with_id(table: pa.Table, ids: pa.Array) -> pa.Table:
    """The part with these ids (preprocess writes the spec's key column ``id`` into parts)."""
    if "id" in table.column_names:
        return table.set_column(table.schema.get_field_index("id"), "id", ids)
    return table.add_column(0, "id", ids)


def test_rows_with_a_missing_feature_are_skipped_and_reported(pipeline, score, helpers, tmp_path):
    data, part = _with_id_and_a_hole(pipeline, tmp_path, row=7, column="f03")
    out = tmp_path / "scored"
    code, _, err = score(
        "--input", data / "test", "--model", pipeline.models / "m", "--output", out, "--key", "id"
    )
    assert code == 0, err
    manifest, scored = helpers.read_output(out)
    assert manifest["rows_rejected"] == 1
    assert manifest["rows_scored"] == manifest["rows_read"] - 1
    assert manifest["rejected_examples"] == [
        {"file": str(part), "row": 7, "column": "f03", "reason": "missing"}
    ]
    assert manifest["key"] == ["id"]
    assert list(scored.columns) == ["id", "prediction", "y", "residual"]
    first = pq.read_table(out / manifest["parts"][0]["path"]).to_pandas()
    assert 1007 not in set(first["id"]) and first["id"].iloc[7] == 1008
    assert manifest["metrics"]["rows"] == manifest["rows_scored"]
    # Without --key, the spec's row key (id, in the prepared manifest) is used when parts hold it.
    assert pipeline.manifest["spec"]["key"] in ("id", ["id"])
    default = tmp_path / "default-key"
    code, _, err = score(
        "--input", data / "test", "--model", pipeline.models / "m", "--output", default
    )
    assert code == 0, err
    manifest, scored = helpers.read_output(default)
    assert manifest["key"] == ["id"] and list(scored.columns)[:2] == ["id", "prediction"]


def test_on_missing_fail_names_file_row_and_column(pipeline, score, tmp_path):
    data, part = _with_id_and_a_hole(pipeline, tmp_path, row=11, column="f05")
    out = tmp_path / "scored"
    code, _, err = score(
        "--input",
        data / "test",
        "--model",
        pipeline.models / "m",
        "--output",
        out,
        "--on-missing",
        "fail",
    )
    assert code == 2
    assert f"{part}: row 11: feature 'f05' is missing" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--key", "nope"], "--key column(s) nope missing"),
        (
            ["--on-missing", "drop"],
            "--on-missing / SCORE_ON_MISSING='drop' is not one of: skip, fail",
        ),
    ],
)
def test_bad_flags_are_refused(pipeline, score, tmp_path, flags, message):
    out = tmp_path / "scored"
    args = [
        "--input",
        pipeline.prepared / "test",
        "--model",
        pipeline.models / "m",
        "--output",
        out,
    ]
    code, _, err = score(*args, *flags)
    assert code == 2
    assert not out.exists()
    assert message in err and "regpipe-score: error:" in err


def test_input_must_be_a_split_of_a_whole_prepared_dataset(pipeline, score, tmp_path):
    model = pipeline.models / "m"
    code, _, err = score("--input", pipeline.prepared, "--model", model, "--output", tmp_path / "o")
    assert code == 2 and "expected a prepared dataset's split" in err
    half = tmp_path / "half"
    (half / "test").mkdir(parents=True)
    code, _, err = score("--input", half / "test", "--model", model, "--output", tmp_path / "o")
    assert code == 2 and f"{half}/manifest.json not found" in err


def test_settings_come_from_score_environment_variables(pipeline, score, monkeypatch, tmp_path):
    data, _ = _with_id_and_a_hole(pipeline, tmp_path, row=0, column="f00")
    out = tmp_path / "scored"
    monkeypatch.setenv("SCORE_INPUT", str(data / "test"))
    monkeypatch.setenv("SCORE_MODEL", f"{pipeline.models}/m@{pipeline.versions[0]}")
    monkeypatch.setenv("SCORE_OUTPUT", str(out))
    monkeypatch.setenv("SCORE_KEY", "id")
    monkeypatch.setenv("SCORE_ON_MISSING", "fail")
    code, _, err = score()
    assert code == 2 and "row 0: feature 'f00'" in err
    code, _, err = score("--on-missing", "skip")  # a flag wins over the environment
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["key"] == ["id"] and manifest["rows_rejected"] == 1
    assert manifest["model"]["version"] == pipeline.versions[0]


def test_any_other_model_predicts_through_its_own_predict(pipeline, score, helpers, tmp_path):
    """Not exactly Pipeline(StandardScaler, SGDRegressor) (here a scaler without centring):
    ``model.predict`` does the work, and its predictions are what the output holds."""
    latest = load_bundle(str(pipeline.models / "m"))
    model = copy.deepcopy(latest.model)
    model[0].with_mean = False
    assert predictor_for(model).linear is None and predictor_for(latest.model).linear is not None
    keep = {k: v for k, v in latest.metadata.items() if k not in ("name", "version", "sha256")}
    version = publish_bundle(str(tmp_path / "models"), "other", model, keep)
    out = tmp_path / "scored"
    code, _, err = score(
        "--input", pipeline.prepared / "test", "--model", tmp_path / "models" / "other",
        "--output", out,
    )  # fmt: skip
    assert code == 0, err
    manifest, scored = helpers.read_output(out)
    assert manifest["model"] == {"name": "other", "version": version}
    test = helpers.read_split(pipeline.prepared)
    expected = model.predict(test[latest.features].to_numpy())
    np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12)
    assert not np.allclose(expected, latest.model.predict(test[latest.features].to_numpy()))


def test_help_and_version(score):
    code, out, _ = score("--version")
    assert code == 0 and out.startswith("regpipe-score 0.1.0 (Python 3.11.") and "  numpy==" in out
    code, out, _ = score("--help")
    assert code == 0
    for flag, env in (
        ("--input", "SCORE_INPUT"),
        ("--model", "SCORE_MODEL"),
        ("--output", "SCORE_OUTPUT"),
        ("--key", "SCORE_KEY"),
        ("--on-missing", "SCORE_ON_MISSING"),
        ("--spec", "SCORE_SPEC"),
    ):
        assert flag in out and env in out
    assert "default: skip" in " ".join(out.split())
