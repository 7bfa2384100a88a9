"""The dataset spec format: what loads, and the message for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from regpipe_common.errors import SpecError
from regpipe_common.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[3]
GOOD = {
    "name": "t",
    "columns": [
        {"name": "k", "type": "string"},
        {"name": "x", "type": "float", "min": 0, "max": 10},
        {"name": "z", "type": "int"},
        {"name": "y", "type": "float"},
    ],
    "target": "y",
    "features": ["z", "x"],
    "key": "k",
}


def test_good_spec_round_trips():
    spec = parse_spec(GOOD)
    assert spec.features == ("z", "x") and spec.target == "y" and spec.key == ("k",)
    assert spec.model_columns == ["z", "x", "y"]
    assert spec.column("x").min == 0.0 and spec.column("x").max == 10.0
    assert parse_spec(spec.to_dict()) == spec
    assert spec.digest() == parse_spec(spec.to_dict()).digest()


def test_flights_example_spec_loads():
    spec = load_spec(str(REPO / "examples" / "flights" / "spec.yaml"))
    assert spec.target == "arr_delay" and "dep_delay" in spec.features
    assert len(spec.columns) == 19


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "nope"}, "target: column 'nope' is not declared in columns"),
        ({"target": "k"}, "target: column 'k' has type string; it must be numeric"),
        ({"features": []}, "features: expected a non-empty list"),
        ({"features": ["x", "x"]}, "features: a feature is listed twice"),
        ({"features": ["x", "y"]}, "the target 'y' cannot also be a feature"),
        ({"features": ["x", "k"]}, "features[1]: column 'k' has type string"),
        ({"key": ["x", "q"]}, "key[1]: column 'q' is not declared"),
        ({"columns": []}, "columns: expected a non-empty list"),
        (
            {"columns": [{"name": "x", "type": "decimal"}]},
            "columns[0].type: 'decimal' is not one of",
        ),
        (
            {"columns": [{"name": "x", "type": "string", "min": 1}]},
            "ranges apply to numeric columns",
        ),
        ({"columns": [{"name": "x", "type": "float", "min": 2, "max": 1}]}, "min 2.0 is greater"),
        ({"columns": [{"name": "x", "type": "float"}] * 2}, "duplicate column name(s): x"),
        ({"colums": 1}, "colums: unknown key"),
        ({"csv": {"delimiter": ";;"}}, "csv.delimiter: expected one character"),
    ],
)
def test_each_mistake_is_named(change, message):
    with pytest.raises(SpecError) as err:
        parse_spec({**GOOD, **change}, source="s.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("s.yaml: ")


def test_bad_files(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [\n")
    with pytest.raises(SpecError, match=r"not valid YAML \(line"):
        load_spec(str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(SpecError, match="top level"):
        load_spec(str(listy))


def test_category_features_and_their_options():
    doc = {
        **GOOD,
        "columns": [
            *GOOD["columns"],
            {"name": "c", "type": "category", "max_categories": 3, "missing": "level"},
            {"name": "d", "type": "category"},
        ],
        "features": ["z", "c", "x", "d"],
    }
    spec = parse_spec(doc)
    assert spec.numeric_features == ["z", "x"] and spec.category_features == ["c", "d"]
    assert spec.column("c").kept_levels_cap == 3 and spec.column("c").missing_is_level
    assert spec.column("d").kept_levels_cap == 100 and not spec.column("d").missing_is_level
    assert parse_spec(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"name": "c", "type": "string", "missing": "level"}, "columns[4].missing: applies to"),
        ({"name": "c", "type": "category", "max_categories": 0}, "max_categories: expected an"),
        ({"name": "c", "type": "category", "missing": "zero"}, "'zero' is not one of drop, level"),
    ],
)
def test_category_options_are_checked(column, message):
    doc = {**GOOD, "columns": [*GOOD["columns"], column], "features": ["z", "c"]}
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(doc)


def test_a_string_column_is_not_a_feature():
    with pytest.raises(SpecError, match="a feature is numeric or category"):
        parse_spec({**GOOD, "features": ["k"]})
