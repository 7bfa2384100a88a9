"""Exact streaming moments: count, mean, variance (ddof=0), min, max, merged across blocks
with Chan et al.'s parallel update, so the result does not depend on how rows were split up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
