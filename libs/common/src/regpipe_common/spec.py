"""The dataset spec: a YAML file that says what the raw data looks like.

```yaml
name: flights
columns:                       # every column of the input, in any order
  - {name: month, type: int, min: 1, max: 12}
  - {name: carrier, type: category, max_categories: 20, missing: level}
  - {name: tailnum, type: string}
  - {name: dep_delay, type: float}
target: arr_delay              # numeric column to predict
features: [dep_delay, distance, air_time, hour, month, carrier]   # model order
key: [year, month, day, carrier, flight]   # optional row key (one name or a list)
csv: {delimiter: ","}          # optional CSV options
```

Types are ``int``, ``float``, ``string`` and ``category``; ``min`` / ``max`` (inclusive) are
allowed on numeric columns only. Features are numeric or ``category`` columns. A ``category``
column holds strings (levels) and may say ``max_categories`` (default 100: the most frequent
levels on the train split are kept, the others share the "infrequent" encoding) and
``missing: drop | level`` (default ``drop``: a row with no value is dropped like a row missing
a number; ``level``: a missing value is the level :data:`MISSING_LEVEL`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from . import storage
from .errors import SpecError

TYPES = ("int", "float", "string", "category")
NUMERIC = ("int", "float")
CATEGORY = "category"
MISSING_CHOICES = ("drop", "level")
DEFAULT_MAX_CATEGORIES = 100
# A missing value of a ``missing: level`` category column, in prepared data and in the model.
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    max_categories: int | None = None  # category columns only; None: DEFAULT_MAX_CATEGORIES
    missing: str | None = None  # category columns only; None: "drop"

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC

    @property
    def category(self) -> bool:
        return self.type == CATEGORY

    @property
    def kept_levels_cap(self) -> int:
        return self.max_categories or DEFAULT_MAX_CATEGORIES

    @property
    def missing_is_level(self) -> bool:
        return self.missing == "level"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    columns: tuple[Column, ...]
    target: str
    features: tuple[str, ...]
    key: tuple[str, ...] = ()
    delimiter: str = ","
    source: str = field(default="<dict>", compare=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def numeric_features(self) -> list[str]:
        return [f for f in self.features if self.column(f).numeric]

    @property
    def category_features(self) -> list[str]:
        return [f for f in self.features if self.column(f).category]

    @property
    def model_columns(self) -> list[str]:
        """The features, in model order, then the target."""
        return [*self.features, self.target]

    def to_dict(self) -> dict[str, Any]:
        cols = []
        for c in self.columns:
            d = {k: v for k, v in asdict(c).items() if v is not None}
            cols.append(d)
        doc: dict[str, Any] = {
            "name": self.name,
            "columns": cols,
            "target": self.target,
            "features": list(self.features),
        }
        if self.key:
            doc["key"] = list(self.key)
        if self.delimiter != ",":
            doc["csv"] = {"delimiter": self.delimiter}
        return doc

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def load_spec(url: str) -> DatasetSpec:
    """Read and validate a spec file; any problem is a :class:`SpecError` naming the field."""
    try:
        text = storage.read_text(url)
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {url}") from None
    except OSError as exc:
        raise SpecError(f"cannot read spec file {url}: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{url}: not valid YAML{where}") from None
    return parse_spec(doc, source=url)


def parse_spec(doc: Any, source: str = "<dict>") -> DatasetSpec:
    def fail(where: str, problem: str) -> SpecError:
        return SpecError(f"{source}: {where}: {problem}")

    if not isinstance(doc, dict):
        raise fail("top level", "expected a mapping with columns, target and features")
    unknown = set(doc) - {"name", "description", "columns", "target", "features", "key", "csv"}
    if unknown:
        raise fail(", ".join(sorted(unknown)), "unknown key")
    raw_columns = doc.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise fail("columns", "expected a non-empty list of {name, type}")
    columns = [_parse_column(i, c, fail) for i, c in enumerate(raw_columns)]
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise fail("columns", f"duplicate column name(s): {', '.join(dupes)}")
    by_name = {c.name: c for c in columns}

    target = doc.get("target")
    if not isinstance(target, str):
        raise fail("target", "expected one column name")
    _check_numeric("target", target, by_name, fail)

    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise fail("features", "expected a non-empty list of column names")
    for i, name in enumerate(features):
        if not isinstance(name, str):
            raise fail(f"features[{i}]", "expected a column name")
        _check_feature(f"features[{i}]", name, by_name, fail)
    if len(set(features)) != len(features):
        raise fail("features", "a feature is listed twice")
    if target in features:
        raise fail("features", f"the target {target!r} cannot also be a feature")

    key = doc.get("key") or []
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list):
        raise fail("key", "expected a column name or a list of column names")
    for i, name in enumerate(key):
        if name not in by_name:
            raise fail(f"key[{i}]", f"column {name!r} is not declared in columns")

    csv = doc.get("csv") or {}
    if not isinstance(csv, dict) or set(csv) - {"delimiter"}:
        raise fail("csv", "only 'delimiter' is supported")
    delimiter = csv.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise fail("csv.delimiter", "expected one character")

    return DatasetSpec(
        name=str(doc.get("name") or "dataset"),
        columns=tuple(columns),
        target=target,
        features=tuple(features),
        key=tuple(key),
        delimiter=delimiter,
        source=source,
    )


def _parse_column(i: int, raw: Any, fail: Any) -> Column:
    where = f"columns[{i}]"
    if not isinstance(raw, dict):
        raise fail(where, "expected a mapping like {name: x, type: float}")
    unknown = set(raw) - {"name", "type", "min", "max", "max_categories", "missing"}
    if unknown:
        raise fail(where, f"unknown key(s): {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "expected a non-empty string")
    ctype = raw.get("type")
    if ctype not in TYPES:
        raise fail(f"{where}.type", f"{ctype!r} is not one of {', '.join(TYPES)} (column {name!r})")
    bounds = {}
    for bound in ("min", "max"):
        value = raw.get(bound)
        if value is None:
            continue
        if ctype not in NUMERIC:
            raise fail(f"{where}.{bound}", f"ranges apply to numeric columns only ({name!r})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"{where}.{bound}", f"expected a number, got {value!r}")
        bounds[bound] = float(value)
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise fail(where, f"min {bounds['min']} is greater than max {bounds['max']}")
    return Column(name=name, type=ctype, **bounds, **_category_options(where, name, raw, fail))


def _category_options(where: str, name: str, raw: dict[str, Any], fail: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in ("max_categories", "missing"):
        if raw.get(key) is not None and raw.get("type") != CATEGORY:
            raise fail(f"{where}.{key}", f"applies to category columns only ({name!r})")
    cap = raw.get("max_categories")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise fail(f"{where}.max_categories", f"expected an integer >= 1, got {cap!r}")
        options["max_categories"] = cap
    missing = raw.get("missing")
    if missing is not None:
        if missing not in MISSING_CHOICES:
            raise fail(f"{where}.missing", f"{missing!r} is not one of drop, level")
        options["missing"] = missing
    return options


def _check_feature(where: str, name: str, by_name: dict[str, Column], fail: Any) -> None:
    if name not in by_name:
        raise fail(where, f"column {name!r} is not declared in columns")
    if not (by_name[name].numeric or by_name[name].category):
        raise fail(
            where,
            f"column {name!r} has type {by_name[name].type}; a feature is numeric or category",
        )


def _check_numeric(where: str, name: str, by_name: dict[str, Column], fail: Any) -> None:
    if name not in by_name:
        raise fail(where, f"column {name!r} is not declared in columns")
    if not by_name[name].numeric:
        raise fail(where, f"column {name!r} has type {by_name[name].type}; it must be numeric")
