"""Category features through the real ``regpipe-preprocess``: exact level counts on the train
split in the manifest, the spec's options, dictionary-encoded parts, bad bytes, Parquet input
and the bound on distinct levels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from regpipe_common.dataset import read_manifest
from regpipe_common.spec import MISSING_LEVEL
from regpipe_preprocess.stats import MAX_DISTINCT_LEVELS

HEADER = "id,shop,city,a,y"
SPEC = {
    "name": "shops",
    "columns": [
        {"name": "id", "type": "int"},
        {"name": "shop", "type": "category", "max_categories": 3},  # missing: drop
        {"name": "city", "type": "category", "missing": "level"},  # max_categories: 100
        {"name": "a", "type": "float"},
        {"name": "y", "type": "float"},
    ],
    "target": "y",
    "features": ["city", "a", "shop"],
    "key": "id",
}
SHOPS = ["s0", "s1", "s2", "s3", "s4", " s5 "]  # " s5 " keeps its spaces
CITIES = ["Zürich", "Oslo", "Lima", "Kyiv"]


def rows(n: int, seed: int = 0) -> list[str]:
    """CSV lines with skewed level frequencies, missing cities and a few missing shops."""
    rng = np.random.default_rng(seed)
    shop = rng.choice(len(SHOPS), n, p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    city = rng.choice(len(CITIES) + 1, n, p=[0.4, 0.3, 0.15, 0.1, 0.05])  # last: missing
    a = rng.normal(0, 1, n).round(4)
    lines = []
    for i in range(n):
        shop_text = "" if i % 97 == 5 else SHOPS[shop[i]]
        city_text = CITIES[city[i]] if city[i] < len(CITIES) else ""
        lines.append(f"{i},{shop_text},{city_text},{a[i]},{(a[i] + shop[i]).round(4)}")
    return lines


def write(tmp_path: Path, lines: list[str], spec: dict | None = None) -> tuple[Path, Path]:
    src = tmp_path / "in.csv"
    src.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec or SPEC, allow_unicode=True))
    return src, spec_file


def read_split(out: Path, split: str) -> pa.Table:
    entries = json.loads((out / "manifest.json").read_text())["splits"][split]
    return pa.concat_tables(
        [pq.read_table(out / e["path"]) for e in entries], promote_options="permissive"
    )


def test_manifest_counts_levels_of_the_train_split_exactly(pp, tmp_path):
    lines = rows(6000)
    src, spec_file = write(tmp_path, lines)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", "16KiB") == 0
    m = pp.manifest(out)
    # A missing shop (missing: drop) drops the row like a missing number; a missing city
    # (missing: level) is the level MISSING_LEVEL.
    assert m["rows_dropped_missing"] == sum(1 for i in range(6000) if i % 97 == 5)
    assert m["feature_order"] == ["city", "a", "shop"]
    assert list(m["features"]) == ["a"]  # numeric stats only
    train = read_split(out, "train")
    assert train.column_names == ["city", "a", "shop", "y", "id"]
    for name in ("city", "shop"):
        assert train.schema.field(name).type == pa.dictionary(pa.int32(), pa.string())
    assert train.schema.field("a").type == pa.float64()
    assert train.schema.field("id").type == pa.int64()

    for name, cap, missing in (("shop", 3, "drop"), ("city", 100, "level")):
        entry = m["categories"][name]
        counted = Counter(train.column(name).to_pylist())
        ordered = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
        assert entry["count"] == train.num_rows == m["rows_train"]
        assert entry["distinct"] == len(counted)
        assert list(entry["levels"].items()) == ordered  # exact, most frequent first
        assert entry["kept"] == [level for level, _ in ordered[:cap]]
        kept_rows = sum(counted[level] for level in entry["kept"])
        assert entry["infrequent_share"] == pytest.approx(1 - kept_rows / train.num_rows)
        assert (entry["missing"], entry["max_categories"]) == (missing, cap)
    assert MISSING_LEVEL in m["categories"]["city"]["levels"]
    assert m["categories"]["city"]["infrequent_share"] == 0.0  # 5 levels, cap 100
    assert " s5 " in m["categories"]["shop"]["levels"]
    assert None not in train.column("shop").to_pylist()


def test_category_counts_do_not_depend_on_block_size(pp, tmp_path):
    src, spec_file = write(tmp_path, rows(3000))
    manifests = []
    for blocksize in ("4KiB", "16MiB"):
        out = tmp_path / f"out-{blocksize}"
        assert (
            pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", blocksize)
            == 0
        )
        manifests.append(pp.manifest(out))
    assert manifests[0]["categories"] == manifests[1]["categories"]
    assert manifests[0]["fingerprint"] == manifests[1]["fingerprint"]


def test_a_non_utf8_category_field_rejects_its_row(pp, tmp_path):
    lines = [line.encode() for line in rows(2000)]
    lines[700] = b"700,s\xff1,Oslo,0.5,1.5"  # latin-1 byte in 'shop'
    src, spec_file = write(tmp_path, [])
    src.write_bytes(HEADER.encode() + b"\n" + b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", "8KiB") == 0
    m = pp.manifest(out)
    assert m["rows_rejected"] == 1
    (bad,) = [json.loads(x) for x in (out / m["rejected"]).read_text().splitlines()]
    assert (bad["line"], bad["column"], bad["reason"]) == (702, "shop", "encoding")
    assert bad["file"].endswith("in.csv")
    assert all("\ufffd" not in level for level in m["categories"]["shop"]["levels"])


def test_parquet_dictionary_binary_and_integer_category_columns(pp, tmp_path):
    """Dictionary strings give the CSV's manifest; integers are levels by their decimal text;
    a binary value that is not UTF-8 rejects its row with the file's row number."""
    src, spec_file = write(tmp_path, rows(3000))
    frame = pd.read_csv(src, keep_default_na=False, na_values={"a": [""], "y": [""]})
    for name in ("shop", "city"):
        frame[name] = frame[name].astype(object).where(frame[name] != "", None)
    csv_out, pq_out = tmp_path / "csv-out", tmp_path / "pq-out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", csv_out) == 0
    table = pa.table(
        {
            "id": pa.array(frame["id"], pa.int64()),
            "shop": pa.array(frame["shop"], pa.string()).dictionary_encode(),
            "city": pa.array(
                [None if c is None else c.encode() for c in frame["city"]], pa.binary()
            ),
            "a": pa.array(frame["a"], pa.float64()),
            "y": pa.array(frame["y"], pa.float64()),
        }
    )
    pq_src = tmp_path / "in.parquet"
    pq.write_table(table, pq_src, row_group_size=700)
    assert pp.run("--input", pq_src, "--spec", spec_file, "--output", pq_out) == 0
    csv_m, pq_m = pp.manifest(csv_out), pp.manifest(pq_out)
    assert pq_m["categories"] == csv_m["categories"]
    assert pq_m["fingerprint"] == csv_m["fingerprint"]

    city = table.column("city").to_pylist()
    city[1234] = b"Z\xfcrich"  # latin-1
    bad_src = tmp_path / "bad.parquet"
    pq.write_table(table.set_column(2, "city", pa.array(city, pa.binary())), bad_src)
    bad_out = tmp_path / "bad-out"
    assert pp.run("--input", bad_src, "--spec", spec_file, "--output", bad_out) == 0
    m = pp.manifest(bad_out)
    assert m["rows_rejected"] == 1
    (bad,) = [json.loads(x) for x in (bad_out / m["rejected"]).read_text().splitlines()]
    assert (bad["line"], bad["column"], bad["reason"]) == (1235, "city", "encoding")

    ints = table.set_column(1, "shop", pa.array([i % 4 for i in range(table.num_rows)]))
    int_src, int_out = tmp_path / "int.parquet", tmp_path / "int-out"
    pq.write_table(ints, int_src)
    assert pp.run("--input", int_src, "--spec", spec_file, "--output", int_out) == 0
    shop = pp.manifest(int_out)["categories"]["shop"]
    assert set(shop["levels"]) == {"0", "1", "2", "3"} and set(shop["kept"]) < set(shop["levels"])
    assert pq.read_table(int_out / pp.manifest(int_out)["splits"]["train"][0]["path"]).column(
        "shop"
    ).type == pa.dictionary(pa.int32(), pa.string())


def test_a_float_parquet_column_declared_category_is_refused_naming_it(pp, tmp_path, capsys):
    _, spec_file = write(tmp_path, [])
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {"id": [1, 2], "shop": [1.5, 2.0], "city": ["a", "b"], "a": [1.0, 2.0], "y": [1.0, 2.0]}
        ),
        src,
    )
    assert pp.run("--input", src, "--spec", spec_file, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "'shop'" in err and "category" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_row_id_declared_category_stops_the_job_naming_the_column_and_the_cap(
    pp, tmp_path, capsys
):
    """More distinct levels than the cap on the train split: exit 2, one line, no dataset. With
    small blocks every unit stays under the cap and the merged count crosses it."""
    spec = {**SPEC, "columns": [*SPEC["columns"], {"name": "rid", "type": "category"}]}
    spec["features"] = ["a", "rid"]
    n = int(MAX_DISTINCT_LEVELS * 1.4)  # ~80% of it lands in the train split
    rng = np.random.default_rng(1)
    a = rng.normal(size=n).round(3)
    src = tmp_path / "in.csv"
    with src.open("w") as f:
        f.write(HEADER + ",rid\n")
        f.writelines(f"{i},s1,Oslo,{a[i]},{a[i]},r{i}\n" for i in range(n))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", "1MiB") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "'rid'" in err[-1] and f"{MAX_DISTINCT_LEVELS:,}" in err[-1]
    assert not (out / "manifest.json").exists()


def test_key_columns_are_kept_as_their_spec_types_without_repeating_features(pp, tmp_path):
    spec = {**SPEC, "key": ["id", "city", "a"]}  # city and a are features already
    src, spec_file = write(tmp_path, rows(500), spec)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    train = read_split(out, "train")
    assert train.column_names == ["city", "a", "shop", "y", "id"]
    ids = train.column("id").to_numpy()
    assert ids.dtype == np.int64 and len(set(ids)) == len(ids)


def test_a_dataset_of_category_features_only_is_a_valid_manifest(pp, tmp_path):
    spec = {**SPEC, "features": ["shop", "city"]}
    src, spec_file = write(tmp_path, rows(800), spec)
    out = tmp_path / "out"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    m = read_manifest(str(out))
    assert m["features"] == {} and m["feature_order"] == ["shop", "city"]
    assert m["categories"]["shop"]["count"] == m["rows_train"]
