"""The job end to end on small data: counts, statistics, outputs, formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COUNT_KEYS = ("rows_rejected", "rows_dropped_missing", "rows_train", "rows_test")


def read_split(out: Path, split: str) -> pd.DataFrame:
    entries = json.loads((out / "manifest.json").read_text())["splits"][split]
    return pd.concat([pd.read_parquet(out / e["path"]) for e in entries], ignore_index=True)


def rejected(out: Path) -> list[dict]:
    path = out / json.loads((out / "manifest.json").read_text())["rejected"]
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_counts_add_up_and_stats_are_exact(pp, tmp_path, spec_file):
    lines = pp.rows(5000)
    lines[10] = "10,g1,,1.0,2,3.0"  # missing feature
    lines[20] = "20,g2,1.0,2.0,3,"  # missing target
    src = pp.write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    m = pp.manifest(out)
    assert m["rows_read"] == 5000
    assert m["rows_dropped_missing"] == 2
    assert m["rows_read"] == sum(m[k] for k in COUNT_KEYS)
    train, test = read_split(out, "train"), read_split(out, "test")
    # Features and target as float64, then the spec's key as its type (for scores).
    assert list(train.columns) == ["a", "b", "n", "y", "id"]
    assert all(t == np.float64 for t in train.dtypes[:4]) and train["id"].dtype == np.int64
    assert len(train) == m["rows_train"] and len(test) == m["rows_test"]
    assert 0.15 < m["rows_test"] / (m["rows_train"] + m["rows_test"]) < 0.25
    for name in ("a", "b", "n"):
        s = m["features"][name]
        assert s["count"] == len(train)
        assert np.isclose(s["mean"], train[name].mean(), rtol=1e-12)
        assert np.isclose(s["var"], train[name].var(ddof=0), rtol=1e-10)
        assert s["min"] == train[name].min() and s["max"] == train[name].max()
    assert m["target"]["name"] == "y"
    assert np.isclose(m["target"]["mean"], train["y"].mean())
    assert m["spec"]["target"] == "y" and len(m["fingerprint"]) == 64
    assert sum(p["rows"] for p in m["splits"]["train"]) == m["rows_train"]
    assert all((out / p["path"]).exists() for p in m["splits"]["test"])


def test_gzip_parquet_and_folder_inputs_give_the_same_dataset(pp, tmp_path, spec_file):
    lines = pp.rows(3000)
    plain = pp.write_csv(tmp_path / "plain" / "data.csv", lines)
    gz = tmp_path / "gz" / "data.csv.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    frame = pd.read_csv(plain)
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.slice(0, 1000), pq_dir / "a.parquet", row_group_size=300)
    pq.write_table(table.slice(1000), pq_dir / "b.parquet", row_group_size=700)
    fingerprints = {}
    for name, src in {
        "csv": plain,
        "gzip": gz,
        "parquet": pq_dir,
        "glob": pq_dir / "*.parquet",
    }.items():
        out = tmp_path / f"out-{name}"
        assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
        fingerprints[name] = pp.manifest(out)["fingerprint"]
        assert pp.manifest(out)["rows_read"] == 3000
    assert len(set(fingerprints.values())) == 1, fingerprints


def test_file_url_and_several_csv_files(pp, tmp_path, spec_file):
    pp.write_csv(tmp_path / "in" / "part1.csv", pp.rows(700))
    pp.write_csv(tmp_path / "in" / "part2.csv", pp.rows(300, start=700))
    out = tmp_path / "out"
    assert (
        pp.run("--input", f"file://{tmp_path}/in", "--spec", spec_file, "--output", f"file://{out}")
        == 0
    )
    m = pp.manifest(out)
    assert m["rows_read"] == 1000


def test_rejected_rows_are_counted_and_written_with_their_line(pp, tmp_path, spec_file):
    lines = pp.rows(1000)
    lines[4] = "4,g1,1.0,2.0"  # too few fields -> file line 6
    lines[9] = "9,g1,abc,2.0,1,3.0"  # not a number
    lines[14] = "14,g1,1.0,500.0,1,3.0"  # b above its maximum
    lines[19] = "19,g1,1.0,2.0,1.5,3.0"  # fraction in an int column
    lines[24] = "24,g1,inf,2.0,1,3.0"  # non-finite
    src = pp.write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    code = pp.run(
        "--input", src, "--spec", spec_file, "--output", out, "--max-rejected-fraction", "0.01"
    )
    assert code == 0
    m = pp.manifest(out)
    assert m["rows_rejected"] == 5
    assert m["rows_read"] == 1000 == sum(m[k] for k in COUNT_KEYS)
    rows = rejected(out)
    got = {(r["line"], r["column"]) for r in rows}
    assert got == {(6, None), (11, "a"), (16, "b"), (21, "n"), (26, "a")}
    by_line = {r["line"]: r for r in rows}
    assert "expected 6 fields" in by_line[6]["reason"] and by_line[6]["raw"] == "4,g1,1.0,2.0"
    assert "not a number" in by_line[11]["reason"] and by_line[11]["raw"].startswith("9,g1,abc")
    assert "maximum" in by_line[16]["reason"]
    assert "integer" in by_line[21]["reason"]
    assert "non-finite" in by_line[26]["reason"]
    assert all(r["file"].endswith("in.csv") for r in rows)


def test_line_numbers_are_file_absolute_across_blocks(pp, tmp_path, spec_file):
    lines = pp.rows(4000)
    lines[3500] = "3500,g1,oops,2.0,1,3.0"
    src = pp.write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", "8KiB") == 0
    (row,) = rejected(out)
    assert row["line"] == 3502 and row["column"] == "a"


def test_too_many_rejected_rows_fail_the_job(pp, tmp_path, spec_file, capsys):
    lines = pp.rows(200)
    for i in range(0, 10):
        lines[i] = f"{i},g1,1.0,999,1,3.0"
    src = pp.write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 2
    err = capsys.readouterr().err
    assert "10 of 200 rows" in err and "--max-rejected-fraction" in err
    assert "line 2 column b" in err
    assert not (out / "manifest.json").exists()
    assert not list(out.iterdir())  # the unpublished version folder is removed


def test_s3_input_spec_and_output(pp, tmp_path, spec_file, s3_env):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("regpipe-test")
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(2000))
    fs.put(str(src), "regpipe-test/raw/in.csv")
    fs.put(str(spec_file), "regpipe-test/spec.yaml")
    assert (
        pp.run(
            "--input",
            "s3://regpipe-test/raw/",
            "--spec",
            "s3://regpipe-test/spec.yaml",
            "--output",
            "s3://regpipe-test/prepared",
            "--blocksize",
            "16KiB",
        )
        == 0
    )
    local = tmp_path / "local"
    assert (
        pp.run("--input", src, "--spec", spec_file, "--output", local, "--blocksize", "16KiB") == 0
    )
    remote = json.loads(fs.cat("regpipe-test/prepared/manifest.json"))
    assert remote["fingerprint"] == pp.manifest(local)["fingerprint"]
    assert remote["rows_train"] == pp.manifest(local)["rows_train"]
    assert not fs.glob("regpipe-test/prepared.staging-*")
    first = remote["splits"]["train"][0]["path"]
    assert fs.exists(f"regpipe-test/prepared/{first}")
