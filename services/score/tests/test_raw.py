"""regpipe-score on raw CSV and Parquet with ``--spec``: the same rows read, rejected and
numbered as regpipe-preprocess reads them (the real preprocess job on the same file), rows with
a missing feature reported, keys kept, predictions the model's own."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regpipe_common.bundle import load_bundle

BLOCK = 256 * 1024  # many units per file, so that numbering across units is exercised
FEATURES = [f"f{i:02d}" for i in range(20)]
# Malformed lines, by the row id they replace: text in a number, a field too many, not UTF-8.
BAD_LINES = {101: (1, b"abc"), 20_005: (None, b"7"), 33_333: (2, b"\xff")}


def _raw_csv(pipeline) -> Path:
    return pipeline.prepared.parent / "raw" / "synthetic.csv"


def _spec(pipeline) -> Path:
    return _raw_csv(pipeline).with_name("synthetic.spec.yaml")


def _with_bad_lines(pipeline, tmp_path: Path) -> Path:
    """The fixture's CSV with three malformed lines (see BAD_LINES), as bytes."""
    lines = _raw_csv(pipeline).read_bytes().split(b"\n")
    for row_id, (field, value) in BAD_LINES.items():
        fields = lines[row_id + 1].split(b",")
        assert fields[0] == str(row_id).encode()
        if field is None:
            fields.append(value)
        else:
            fields[field] = value
        lines[row_id + 1] = b",".join(fields)
    out = tmp_path / "raw" / "bad.csv"
    out.parent.mkdir()
    out.write_bytes(b"\n".join(lines))
    return out


def _score_and_preprocess(pipeline, data: Path, score, helpers, tmp_path: Path) -> tuple:
    """Score ``data`` and prepare it with the real preprocess job: check that both read the
    same rows and set aside the same malformed rows, numbered and described alike. Returns the
    score manifest, its rows, its rejected rows and preprocess's."""
    from regpipe_preprocess.cli import main as preprocess

    spec, out, again = _spec(pipeline), tmp_path / "scored", tmp_path / "prepared"
    args = ["--input", data, "--spec", spec]
    code, _, err = score(*args, "--model", pipeline.models / "m", "--output", out)
    assert code == 0, err
    flags = ["--output", again, "--blocksize", BLOCK, "--max-rejected-fraction", "0.5"]
    assert preprocess([str(a) for a in [*args, *flags]]) == 0
    prepared = json.loads((again / "manifest.json").read_text())
    manifest, scored = helpers.read_output(out)
    assert manifest["rows_read"] == prepared["rows_read"]
    assert manifest["rows_malformed"] == prepared["rows_rejected"] > 0
    ours = _jsonl(out / "rejected" / "rejected.jsonl")
    theirs = _jsonl(again / prepared["rejected"])
    assert [r for r in ours if r["reason"] != "missing"] == theirs
    return manifest, scored, ours, theirs


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _frame(pipeline) -> pd.DataFrame:
    return pd.read_csv(_raw_csv(pipeline))


@pytest.fixture
def small_units(monkeypatch):
    monkeypatch.setattr("regpipe_score.inputs.RAW_BLOCK_BYTES", BLOCK)


@pytest.mark.parametrize("units", ["256KiB", "one"])
def test_raw_csv_rejects_and_counts_rows_as_preprocess_does(
    pipeline, score, helpers, tmp_path, monkeypatch, units
):
    """In 256 KiB units, and in one unit of 40,000 rows of which a third miss a feature: the
    malformed rows are listed however many rows miss a feature (1000 of each kind per task)."""
    if units != "one":
        monkeypatch.setattr("regpipe_score.inputs.RAW_BLOCK_BYTES", BLOCK)
    data, model = _with_bad_lines(pipeline, tmp_path), pipeline.models / "m"
    manifest, scored, ours, theirs = _score_and_preprocess(pipeline, data, score, helpers, tmp_path)
    assert manifest["rows_read"] == 40_000 and manifest["rows_malformed"] == len(BAD_LINES)
    assert [r["line"] for r in theirs] == [i + 2 for i in BAD_LINES]  # header is line 1
    assert manifest["rejected"] == "rejected/rejected.jsonl"

    # Rows with a missing feature are reported, each with its line in the file.
    frame = _frame(pipeline)
    good = ~frame["id"].isin(list(BAD_LINES))
    missing = frame[FEATURES].isna().any(axis=1) & good
    assert manifest["rows_missing"] == int(missing.sum()) > 0
    assert manifest["rows_rejected"] == manifest["rows_missing"] + manifest["rows_malformed"]
    assert manifest["rows_scored"] == manifest["rows_read"] - manifest["rows_rejected"]
    missing_lines = sorted(r["line"] for r in ours if r["reason"] == "missing")
    expected = list(frame.loc[missing, "id"] + 2)
    assert missing_lines == (expected if units != "one" else expected[:1000])
    assert manifest["rejected_examples"][0] == {k: v for k, v in ours[0].items() if k != "raw"}

    # The spec's row key (id, int64), the model's predictions, the target and residual.
    assert manifest["key"] == ["id"] and manifest["split"] is None
    assert list(scored.columns) == ["id", "prediction", "y", "residual"]
    assert scored["id"].dtype == np.int64
    kept = frame[good & ~missing]
    np.testing.assert_array_equal(scored["id"], kept["id"])
    expected = load_bundle(str(model)).model.predict(kept[FEATURES].to_numpy())
    np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12, atol=1e-9)
    assert manifest["metrics"]["rows"] == int(kept["y"].notna().sum())
    assert len(manifest["input_fingerprint"]) == 64
    assert manifest["spec"]["key"] == ["id"]


def test_raw_parquet_rejects_rows_as_preprocess_does(pipeline, score, helpers, tmp_path):
    frame = _frame(pipeline)
    frame.loc[[5, 17_000], "f03"] = np.inf  # non-finite: malformed, as in preprocess
    data = tmp_path / "raw" / "synthetic.parquet"
    data.parent.mkdir()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data, row_group_size=7_000)
    model = pipeline.models / "m"
    manifest, scored, _, theirs = _score_and_preprocess(pipeline, data, score, helpers, tmp_path)
    assert manifest["rows_read"] == len(frame) and manifest["rows_malformed"] == 2
    assert [(r["line"], r["column"]) for r in theirs] == [(6, "f03"), (17_001, "f03")]
    assert len(manifest["parts"]) == 6  # one per row group
    kept = frame[np.isfinite(frame[FEATURES]).all(axis=1)]
    np.testing.assert_array_equal(scored["id"], kept["id"])
    expected = load_bundle(str(model)).model.predict(kept[FEATURES].to_numpy())
    np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12, atol=1e-9)


def test_raw_gzip_csv_is_read_as_a_stream_as_preprocess_reads_it(
    pipeline, score, helpers, tmp_path
):
    data = _with_bad_lines(pipeline, tmp_path)
    packed = data.with_suffix(".csv.gz")
    packed.write_bytes(gzip.compress(data.read_bytes()))
    data.unlink()
    manifest, scored, _, theirs = _score_and_preprocess(pipeline, packed, score, helpers, tmp_path)
    assert manifest["rows_read"] == 40_000 and len(manifest["parts"]) == 1  # one unit a file
    assert [r["line"] for r in theirs] == [i + 2 for i in BAD_LINES]
    assert len(scored) == manifest["rows_scored"] > 0


def _one_hole(pipeline, tmp_path: Path, row_id: int, column: str) -> Path:
    """Complete rows of the fixture's CSV but one missing cell (row ``row_id``)."""
    frame = _frame(pipeline)
    frame = frame[frame[FEATURES].notna().all(axis=1) | (frame["id"] == row_id)].copy()
    frame[FEATURES] = frame[FEATURES].fillna(1.0)
    frame.loc[frame["id"] == row_id, column] = np.nan
    out = tmp_path / "raw" / "hole.csv"
    out.parent.mkdir()
    frame.to_csv(out, index=False)
    return out


def test_on_missing_skip_reports_and_fail_stops_naming_file_line_and_column(
    pipeline, score, helpers, tmp_path, small_units
):
    data = _one_hole(pipeline, tmp_path, row_id=35_001, column="f05")
    lines = data.read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if text.startswith("35001,"))
    assert line > 20_000  # far past the first unit: the line is counted across units
    spec, model = _spec(pipeline), pipeline.models / "m"
    skipped = tmp_path / "skipped"
    args = ["--input", data, "--spec", spec, "--model", model]
    code, _, err = score(*args, "--output", skipped)
    assert code == 0, err
    manifest, scored = helpers.read_output(skipped)
    assert manifest["rows_missing"] == manifest["rows_rejected"] == 1
    assert manifest["rejected_examples"] == [
        {"file": str(data), "line": line, "column": "f05", "reason": "missing"}
    ]
    assert 35_001 not in set(scored["id"]) and len(scored) == len(lines) - 2

    failed = tmp_path / "failed"
    code, _, err = score(*args, "--output", failed, "--on-missing", "fail")
    assert code == 2
    assert f"{data}: line {line}: feature 'f05' is missing" in err and "Traceback" not in err
    assert not failed.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--key", "nope"], "--key column(s) nope missing"),
        (["--spec", "missing.yaml"], "spec file not found: missing.yaml"),
    ],
)
def test_raw_input_errors_name_the_problem(pipeline, score, tmp_path, flags, message):
    out = tmp_path / "scored"
    args = ["--input", _raw_csv(pipeline), "--model", pipeline.models / "m", "--output", out]
    code, _, err = score(*args, "--spec", _spec(pipeline), *flags)
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_raw_input_with_another_key_and_without_spec(pipeline, score, helpers, tmp_path):
    csv = tmp_path / "one.csv"
    shutil.copy(_raw_csv(pipeline), csv)
    out = tmp_path / "scored"
    args = ["--input", csv, "--model", pipeline.models / "m"]
    code, _, err = score(*args, "--spec", _spec(pipeline), "--output", out, "--key", "f00", "id")
    assert code == 0, err
    manifest, scored = helpers.read_output(out)
    assert manifest["key"] == ["f00", "id"]
    assert list(scored.columns)[:3] == ["f00", "id", "prediction"]
    code, _, err = score(*args, "--output", tmp_path / "nospec")
    assert code == 2 and "raw CSV/Parquet files need --spec" in err


def test_on_missing_fail_names_the_row_of_a_later_parquet_row_group(pipeline, score, tmp_path):
    csv = _one_hole(pipeline, tmp_path, row_id=35_001, column="f05")
    frame = pd.read_csv(csv)
    row = int(np.flatnonzero(frame["id"] == 35_001)[0]) + 1  # 1-based row in the file
    assert row > 7_000  # past the first row group
    data = tmp_path / "raw" / "hole.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data, row_group_size=7_000)
    out = tmp_path / "failed"
    args = ["--input", data, "--spec", _spec(pipeline), "--model", pipeline.models / "m"]
    code, _, err = score(*args, "--output", out, "--on-missing", "fail")
    assert code == 2, err
    assert f"{data}: line {row}: feature 'f05' is missing" in err and "Traceback" not in err
    assert not out.exists()
