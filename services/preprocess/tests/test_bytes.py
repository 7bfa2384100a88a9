"""Bytes that once crashed the job or changed its answer: bad encodings, a BOM, huge numbers,
quoted newlines and broken Parquet files, each through the real ``regpipe-preprocess``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

COUNT_KEYS = ("rows_rejected", "rows_dropped_missing", "rows_train", "rows_test")


def rejected(out: Path) -> list[dict]:
    text = (out / json.loads((out / "manifest.json").read_text())["rejected"]).read_text()
    return [json.loads(line) for line in text.splitlines()]


def write_bytes(path: Path, header: str, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + b"\n" + b"\n".join(lines) + b"\n")
    return path


def encoded(lines: list[str]) -> list[bytes]:
    return [line.encode() for line in lines]


@pytest.mark.parametrize("where", ["numeric", "string", "first-block", "gzip"])
def test_a_non_utf8_byte_rejects_its_row_and_the_job_goes_on(pp, tmp_path, spec_file, where):
    lines = encoded(pp.rows(3000))
    row = {"numeric": 2500, "string": 1500, "first-block": 3, "gzip": 2999}[where]
    if where == "string":
        lines[row] = f"{row},g\xff1,1.0,2.0,1,3.0".encode("latin-1")  # in column 'group'
        column = "group"
    else:
        lines[row] = f"{row},g1,1.\xe90,2.0,1,3.0".encode("latin-1")  # in column 'a'
        column = "a"
    src = write_bytes(tmp_path / "in.csv", pp.header, lines)
    if where == "gzip":
        src = src.rename(tmp_path / "in.csv.gz")
        src.write_bytes(gzip.compress(src.read_bytes()))
    out = tmp_path / "out"
    code = pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", "16KiB")
    assert code == 0
    m = pp.manifest(out)
    assert m["rows_read"] == 3000 == sum(m[k] for k in COUNT_KEYS)
    assert m["rows_rejected"] == 1
    (bad,) = rejected(out)
    assert bad["reason"] == "encoding"
    assert bad["line"] == row + 2 and bad["column"] == column
    assert bad["file"].endswith(src.name) and bad["raw"].startswith(f"{row},g")


def test_a_utf8_bom_is_not_part_of_the_first_column_name(pp, tmp_path, spec_file):
    plain = pp.write_csv(tmp_path / "plain.csv", pp.rows(1000))
    bom = tmp_path / "bom" / "bom.csv"
    bom.parent.mkdir()
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    fingerprints = []
    for src in (plain, bom):
        out = tmp_path / f"out-{src.stem}"
        assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
        m = pp.manifest(out)
        assert m["rows_read"] == 1000 and m["rows_rejected"] == 0
        fingerprints.append(m["fingerprint"])
    assert fingerprints[0] == fingerprints[1]


def test_huge_magnitudes_are_rejected_as_out_of_range(pp, tmp_path, spec_file):
    lines = pp.rows(2000)
    lines[5] = "5,g1,1e308,2.0,1,3.0"  # its square overflows
    lines[6] = "6,g1,-2e150,2.0,1,3.0"  # its square is finite, still beyond the bound
    lines[7] = "7,g1,1.0,2.0,1,1e101"  # the target too
    lines[8] = "8,g1,1e99,2.0,1,3.0"  # within the bound: kept
    src = pp.write_csv(tmp_path / "in.csv", lines)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    m = pp.manifest(out)
    assert m["rows_rejected"] == 3
    got = {(r["line"], r["column"]) for r in rejected(out)}
    assert got == {(7, "a"), (8, "a"), (9, "y")}
    assert all("out of range" in r["reason"] for r in rejected(out))
    stats = [m["target"], *m["features"].values()]
    assert all(pd.notna(s["var"]) and abs(s["var"]) < float("inf") for s in stats)


def test_huge_magnitudes_in_parquet_are_rejected_too(pp, tmp_path, spec_file):
    frame = pd.read_csv(pp.write_csv(tmp_path / "src.csv", pp.rows(500)))
    frame.loc[42, "y"] = 1e308
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), src)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    ((bad),) = rejected(out)
    assert (bad["line"], bad["column"]) == (43, "y") and "out of range" in bad["reason"]
    assert abs(pp.manifest(out)["target"]["var"]) < float("inf")


def test_quoted_newlines_give_the_same_answer_with_any_block_size(pp, tmp_path, spec_file):
    lines = pp.rows(400)
    lines[100] = '100,"g\n1",1.0,2.0,1,3.0'  # a quoted field over two physical lines
    lines[250] = '250,"multi\nline\nvalue",1.0,2.0,1,3.0'
    lines[300] = '300,"a ""quoted"" word",1.0,2.0,1,3.0'  # one line, escaped quotes: kept
    src = pp.write_csv(tmp_path / "in.csv", lines)
    physical = src.read_bytes().split(b"\n")
    answers = set()
    for blocksize in ("24", "100", "1KiB", "7KiB", "16MiB"):
        out = tmp_path / f"out-{blocksize}"
        flags = ("--blocksize", blocksize, "--max-rejected-fraction", "0.05")
        code = pp.run("--input", src, "--spec", spec_file, "--output", out, *flags)
        assert code == 0, blocksize
        m = pp.manifest(out)
        rows = rejected(out)
        for r in rows:  # the file's own physical line numbers
            assert physical[r["line"] - 1].decode() == r["raw"], (blocksize, r)
        lines_rejected = tuple(sorted(r["line"] for r in rows))
        answers.add((m["fingerprint"], *(m[k] for k in ("rows_read", *COUNT_KEYS)), lines_rejected))
    assert len(answers) == 1, answers
    ((_, read, n_rejected, *_, lines_rejected),) = answers
    assert lines_rejected == (102, 103, 253, 254, 255)
    assert read == 403 and n_rejected == 5


def _parquet_input(tmp_path: Path, pp) -> Path:
    frame = pd.read_csv(pp.write_csv(tmp_path / "src.csv", pp.rows(2000)))
    folder = tmp_path / "pq"
    folder.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.slice(0, 1000), folder / "a.parquet", row_group_size=500)
    pq.write_table(table.slice(1000), folder / "b.parquet", row_group_size=500)
    return folder


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_pages(path: Path) -> None:
    """Keep the footer (so the file opens) and scribble over the column data."""
    data = bytearray(path.read_bytes())
    for i in range(8, len(data) // 2):
        data[i] = 0xAB
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _corrupt_pages], ids=["truncated", "corrupt"])
def test_a_broken_parquet_input_is_exit_2_naming_the_file(pp, tmp_path, spec_file, damage, capsys):
    folder = _parquet_input(tmp_path, pp)
    damage(folder / "b.parquet")
    out = tmp_path / "out"
    assert pp.run("--input", folder, "--spec", spec_file, "--output", out) == 2
    err = capsys.readouterr().err
    assert "regpipe-preprocess: error: " in err and "b.parquet" in err, err
    assert "unexpected" not in err
    assert not (out / "manifest.json").exists()
