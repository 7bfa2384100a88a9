"""Exact streaming statistics of the train split, merged across blocks so that the result does
not depend on how rows were split up: moments of numeric columns (count, mean, variance
(ddof=0), min, max, with Chan et al.'s parallel update) and level counts of category columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regpipe_common.errors import DataError
from regpipe_common.spec import Column

# Level counts are exact and held for at most this many distinct levels per category column
# (a few MB); a column with more (a row id declared as a category) stops the job, naming it.
MAX_DISTINCT_LEVELS = 100_000
# The manifest lists the counts of this many most frequent levels (at least the kept ones).
LEVELS_IN_MANIFEST = 1_000


@dataclass
class Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    min: float = float("inf")
    max: float = float("-inf")

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        if values.size == 0:
            return cls()
        mean = float(values.mean())
        return cls(
            count=int(values.size),
            mean=mean,
            m2=float(np.square(values - mean).sum()),
            min=float(values.min()),
            max=float(values.max()),
        )

    def merge(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        return Moments(
            count=n,
            mean=self.mean + delta * other.count / n,
            m2=self.m2 + other.m2 + delta * delta * self.count * other.count / n,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )

    def to_dict(self) -> dict[str, float | int | None]:
        if self.count == 0:
            return {"count": 0, "mean": None, "var": None, "min": None, "max": None}
        return {
            "count": self.count,
            "mean": self.mean,
            "var": self.m2 / self.count,
            "min": self.min,
            "max": self.max,
        }


def merge_all(parts: list[dict[str, Moments]]) -> dict[str, Moments]:
    """Merge per-block moment dicts column by column, in a fixed order."""
    merged: dict[str, Moments] = {}
    for part in parts:
        for name, moments in part.items():
            merged[name] = merged.get(name, Moments()).merge(moments)
    return merged


@dataclass
class LevelCounts:
    """Exact counts of one category column's levels, never more than ``MAX_DISTINCT_LEVELS``."""

    column: str
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, values: pa.Array | pa.ChunkedArray) -> LevelCounts:
        """Count a block of levels (no nulls: missing values were dropped or made a level)."""
        counted = pc.value_counts(values)
        levels = counted.field("values").to_pylist()
        self._check_room(levels)
        for level, n in zip(levels, counted.field("counts").to_pylist(), strict=True):
            self.counts[level] = self.counts.get(level, 0) + n
        return self

    def merge(self, other: LevelCounts) -> LevelCounts:
        self._check_room(list(other.counts))
        for level, n in other.counts.items():
            self.counts[level] = self.counts.get(level, 0) + n
        return self

    def _check_room(self, levels: list[str]) -> None:
        if len(self.counts) + len(levels) <= MAX_DISTINCT_LEVELS:
            return
        new = sum(1 for level in levels if level not in self.counts)
        if len(self.counts) + new > MAX_DISTINCT_LEVELS:
            raise DataError(
                f"category column {self.column!r} has more than {MAX_DISTINCT_LEVELS:,} distinct "
                "levels on the train split (the cap per category feature); a row id or free "
                "text is not a category: declare it string and leave it out of the features"
            )

    def to_dict(self, column: Column) -> dict[str, Any]:
        """The manifest entry: levels most frequent first (ties by level), the kept ones, the
        share of rows whose level is not kept."""
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        kept = ordered[: column.kept_levels_cap]
        count = sum(self.counts.values())
        infrequent = count - sum(n for _, n in kept)
        return {
            "count": count,
            "distinct": len(ordered),
            "levels": dict(ordered[: max(LEVELS_IN_MANIFEST, len(kept))]),
            "kept": [level for level, _ in kept],
            "infrequent_share": infrequent / count if count else 0.0,
            "missing": "level" if column.missing_is_level else "drop",
            "max_categories": column.kept_levels_cap,
        }


def merge_levels(into: dict[str, LevelCounts], part: dict[str, LevelCounts]) -> None:
    """Add one unit's level counts to ``into``, column by column."""
    for name, counts in part.items():
        into.setdefault(name, LevelCounts(name)).merge(counts)
