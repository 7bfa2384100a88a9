"""The split is a pure function of each row and the seed."""

from __future__ import annotations

import json

import pandas as pd


def ids(out, split: str) -> set[int]:
    # The output holds the model columns; 'n' is unique enough together with a, b, y.
    entries = json.loads((out / "manifest.json").read_text())["splits"][split]
    frames = [pd.read_parquet(out / e["path"]) for e in entries]
    frame = pd.concat(frames)
    return set(map(tuple, frame[["a", "b", "n", "y"]].itertuples(index=False)))


def test_same_split_for_any_block_count(pp, tmp_path, spec_file):
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(6000))
    runs = {}
    for blocksize in ("4KiB", "64KiB", "16MiB"):
        out = tmp_path / f"out-{blocksize}"
        assert (
            pp.run("--input", src, "--spec", spec_file, "--output", out, "--blocksize", blocksize)
            == 0
        )
        runs[blocksize] = (pp.manifest(out), ids(out, "train"), ids(out, "test"))
    parts = {len(m["splits"]["train"]) for m, _, _ in runs.values()}
    assert len(parts) == 3  # really different partitionings
    first = runs["16MiB"]
    for m, train, test in runs.values():
        assert train == first[1] and test == first[2]
        assert m["fingerprint"] == first[0]["fingerprint"]


def test_appending_data_never_moves_a_row(pp, tmp_path, spec_file):
    base = pp.rows(3000)
    src = pp.write_csv(tmp_path / "a.csv", base)
    both = pp.write_csv(tmp_path / "b.csv", base + pp.rows(2000, start=3000))
    out_a, out_b = tmp_path / "out-a", tmp_path / "out-b"
    assert pp.run("--input", src, "--spec", spec_file, "--output", out_a) == 0
    assert pp.run("--input", both, "--spec", spec_file, "--output", out_b) == 0
    assert ids(out_a, "train") <= ids(out_b, "train")
    assert ids(out_a, "test") <= ids(out_b, "test")


def test_seed_changes_the_split_and_fraction_is_respected(pp, tmp_path, spec_file):
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(4000))
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-{seed}"
        assert (
            pp.run(
                "--input",
                src,
                "--spec",
                spec_file,
                "--output",
                out,
                "--seed",
                seed,
                "--test-fraction",
                "0.3",
            )
            == 0
        )
        outs.append(out)
        m = pp.manifest(out)
        assert abs(m["rows_test"] / 4000 - 0.3) < 0.03
    assert ids(outs[0], "test") != ids(outs[1], "test")
