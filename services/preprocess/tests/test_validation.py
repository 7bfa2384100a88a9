"""Input that cannot be processed stops the job before any output, with a one-line message."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml


def run_failing(pp, capsys, *args) -> str:
    assert pp.run(*args) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]  # earlier lines are the job's log
    assert last.startswith("regpipe-preprocess: error: "), err
    return last


@pytest.mark.parametrize(
    ("header", "line", "expected"),
    [
        ("id,group,a,b,y", "1,g,1.0,2.0,3.0", "missing column 'n'"),
        ("id,group,a,b,n,y,extra", "1,g,1.0,2.0,1,3.0,x", "unexpected column 'extra'"),
    ],
)
def test_wrong_columns_name_the_file_and_column(
    pp, tmp_path, spec_file, capsys, header, line, expected
):
    src = pp.write_csv(tmp_path / "bad.csv", [line] * 5, header=header)
    out = tmp_path / "out"
    err = run_failing(pp, capsys, "--input", src, "--spec", spec_file, "--output", out)
    assert expected in err and "bad.csv" in err
    assert not out.exists()
    assert not list(tmp_path.glob("out.staging-*"))


def test_wrong_column_type_names_the_file_and_column(pp, tmp_path, spec_file, capsys):
    good = pp.write_csv(tmp_path / "in" / "1.csv", pp.rows(50))
    assert good.exists()
    lines = [f"{i},g,1.0,2.0,many,3.0" for i in range(50)]
    pp.write_csv(tmp_path / "in" / "2.csv", lines)
    err = run_failing(
        pp, capsys, "--input", tmp_path / "in", "--spec", spec_file, "--output", tmp_path / "out"
    )
    assert "2.csv" in err and "column 'n'" in err and "'many'" in err and "int" in err
    assert not (tmp_path / "out").exists()


def test_parquet_column_of_wrong_type(pp, tmp_path, spec_file, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [1], "group": ["g"], "a": ["x"], "b": [1.0], "n": [1], "y": [2.0]})
    pq.write_table(table, tmp_path / "t.parquet")
    err = run_failing(
        pp,
        capsys,
        "--input",
        tmp_path / "t.parquet",
        "--spec",
        spec_file,
        "--output",
        tmp_path / "out",
    )
    assert "t.parquet" in err and "column 'a'" in err and "string" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", "file is empty"), ("id,group,a,b,n,y\n", "input is empty")],
)
def test_empty_input(pp, tmp_path, spec_file, capsys, content, expected):
    src = tmp_path / "empty.csv"
    src.write_text(content)
    err = run_failing(pp, capsys, "--input", src, "--spec", spec_file, "--output", tmp_path / "o")
    assert expected in err


def test_missing_input_and_empty_folder(pp, tmp_path, spec_file, capsys):
    err = run_failing(
        pp,
        capsys,
        "--input",
        tmp_path / "nope.csv",
        "--spec",
        spec_file,
        "--output",
        tmp_path / "o",
    )
    assert "input not found" in err and "nope.csv" in err
    (tmp_path / "empty").mkdir()
    err = run_failing(
        pp, capsys, "--input", tmp_path / "empty", "--spec", spec_file, "--output", tmp_path / "o"
    )
    assert "no CSV or Parquet files" in err
    err = run_failing(
        pp, capsys, "--input", tmp_path / "*.csv", "--spec", spec_file, "--output", tmp_path / "o"
    )
    assert "no input files match" in err


def test_invalid_spec(pp, tmp_path, capsys):
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(10))
    bad = tmp_path / "spec.yaml"
    bad.write_text(yaml.safe_dump({**pp.spec, "target": "nope"}))
    err = run_failing(pp, capsys, "--input", src, "--spec", bad, "--output", tmp_path / "o")
    assert "spec.yaml: target: column 'nope' is not declared" in err
    err = run_failing(
        pp, capsys, "--input", src, "--spec", tmp_path / "none.yaml", "--output", tmp_path / "o"
    )
    assert "spec file not found" in err


def test_cli_needs_flags_or_env_and_documents_them(tmp_path, spec_file, pp, monkeypatch):
    exe = [sys.executable, "-m", "regpipe_preprocess"]
    usage = subprocess.run([*exe, "--help"], capture_output=True, text=True, check=True).stdout
    for env in (
        "PREPROCESS_INPUT",
        "PREPROCESS_SPEC",
        "PREPROCESS_OUTPUT",
        "PREPROCESS_TEST_FRACTION",
        "PREPROCESS_SEED",
        "DASK_SCHEDULER_ADDRESS",
    ):
        assert env in usage
    missing = subprocess.run(exe, capture_output=True, text=True)
    assert missing.returncode == 2 and "--input" in missing.stderr
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(100))
    monkeypatch.setenv("PREPROCESS_INPUT", str(src))
    monkeypatch.setenv("PREPROCESS_SPEC", str(spec_file))
    monkeypatch.setenv("PREPROCESS_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("PREPROCESS_TEST_FRACTION", "0.5")
    assert pp.run() == 0
    assert pp.manifest(tmp_path / "out")["test_fraction"] == 0.5


@pytest.mark.parametrize("blocksize", ["0", "-1KiB"])
def test_a_blocksize_below_one_byte_is_refused_naming_the_flag(
    pp, tmp_path, spec_file, capsys, blocksize
):
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(100))
    args = ["--input", src, "--spec", spec_file, "--output", tmp_path / "o"]
    err = run_failing(pp, capsys, *args, f"--blocksize={blocksize}")
    assert "--blocksize / PREPROCESS_BLOCKSIZE" in err and "at least 1" in err
    assert not (tmp_path / "o").exists()
