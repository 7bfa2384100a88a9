"""Level counts of category columns: merge order, manifest entry, and the bound on memory."""

from __future__ import annotations

import pyarrow as pa
import pytest

from regpipe_common.errors import DataError
from regpipe_common.spec import parse_spec
from regpipe_preprocess.stats import (
    LEVELS_IN_MANIFEST,
    MAX_DISTINCT_LEVELS,
    LevelCounts,
    merge_levels,
)


def column(**options):
    spec = parse_spec(
        {
            "columns": [
                {"name": "c", "type": "category", **options},
                {"name": "y", "type": "float"},
            ],
            "target": "y",
            "features": ["c"],
        }
    )
    return spec.column("c")


def counts_of(levels: list[str]) -> LevelCounts:
    return LevelCounts("c").add(pa.array(levels))


def test_kept_levels_most_frequent_first_ties_by_name_and_the_infrequent_share():
    levels = ["b"] * 5 + ["a"] * 5 + ["c"] * 3 + ["e"] * 2 + ["d"] * 2 + ["f"]
    entry = counts_of(levels).to_dict(column(max_categories=3))
    assert entry == {
        "count": 18,
        "distinct": 6,
        "levels": {"a": 5, "b": 5, "c": 3, "d": 2, "e": 2, "f": 1},
        "kept": ["a", "b", "c"],
        "infrequent_share": pytest.approx(5 / 18),
        "missing": "drop",
        "max_categories": 3,
    }
    default = counts_of(levels).to_dict(column(missing="level"))
    assert default["max_categories"] == 100 and default["missing"] == "level"
    assert default["kept"] == ["a", "b", "c", "d", "e", "f"] and default["infrequent_share"] == 0


def test_merging_units_in_any_order_gives_the_same_counts():
    parts = [counts_of(["x", "y", "y"]), counts_of(["z", "y"]), counts_of(["x"])]
    results = []
    for order in (parts, parts[::-1]):
        merged: dict[str, LevelCounts] = {}
        for part in order:
            merge_levels(merged, {"c": part})
        results.append(merged["c"].to_dict(column()))
    assert results[0] == results[1]
    assert results[0]["levels"] == {"y": 3, "x": 2, "z": 1}


def test_the_manifest_lists_the_most_frequent_levels_and_always_the_kept_ones():
    many = [f"l{i:05d}" for i in range(LEVELS_IN_MANIFEST + 500)]
    entry = counts_of([*many, "l00042"]).to_dict(column())
    assert entry["distinct"] == LEVELS_IN_MANIFEST + 500 and entry["count"] == len(many) + 1
    assert len(entry["levels"]) == LEVELS_IN_MANIFEST
    assert next(iter(entry["levels"].items())) == ("l00042", 2)
    wide = counts_of(many).to_dict(column(max_categories=LEVELS_IN_MANIFEST + 100))
    assert len(wide["levels"]) == len(wide["kept"]) == LEVELS_IN_MANIFEST + 100


def test_distinct_levels_held_never_exceed_the_cap():
    """A row id as a category: blocks of new levels until the cap; the structure never holds
    more than MAX_DISTINCT_LEVELS levels and the error names the column and the cap."""
    counts = LevelCounts("row_id")
    block = 25_000
    with pytest.raises(DataError) as caught:
        for start in range(0, 10 * MAX_DISTINCT_LEVELS, block):
            counts.add(pa.array([f"r{i}" for i in range(start, start + block)]))
            assert len(counts.counts) <= MAX_DISTINCT_LEVELS
    assert len(counts.counts) <= MAX_DISTINCT_LEVELS
    assert "'row_id'" in str(caught.value) and f"{MAX_DISTINCT_LEVELS:,}" in str(caught.value)
    # Known levels never count against the cap.
    full = LevelCounts("c").add(pa.array([f"r{i}" for i in range(MAX_DISTINCT_LEVELS)]))
    full.add(pa.array(["r0", "r1"]))
    full.merge(counts_of(["r5"]))
    assert len(full.counts) == MAX_DISTINCT_LEVELS and full.counts["r0"] == 2
    with pytest.raises(DataError, match="'c'"):
        full.merge(counts_of(["new"]))
