"""A category bundle built as the issue 11 contract says: ColumnTransformer(StandardScaler on the
numeric columns, OneHotEncoder(kept levels, handle_unknown="ignore") on the category columns)
then SGDRegressor, published with ``regpipe_common.bundle.publish_bundle``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from predict_helpers import NAME
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from regpipe_common.bundle import publish_bundle
from regpipe_common.spec import MISSING_LEVEL

CAT_FEATURES = ["dep_delay", "carrier", "distance", "origin"]
NUMERIC = [0, 2]
CATEGORY = [1, 3]
CARRIERS = ["UA", "AA", "B6", "DL", "EV", "MQ", "OO", "HA"]  # the last two: infrequent
CARRIER_KEPT = CARRIERS[:6]
ORIGINS = ["EWR", "JFK", "LGA", MISSING_LEVEL]
CARRIER_EFFECT = dict(zip(CARRIERS, [5.0, -3.0, 8.0, 0.5, -6.0, 2.0, 11.0, -9.0], strict=True))
ORIGIN_EFFECT = dict(zip(ORIGINS, [1.0, -2.0, 3.0, 7.0], strict=True))


def category_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(object rows in CAT_FEATURES order, target)``; 2% of carriers are infrequent."""
    rng = np.random.default_rng(seed)
    carrier_p = np.array([0.3, 0.2, 0.2, 0.12, 0.1, 0.06, 0.01, 0.01])
    carriers = rng.choice(CARRIERS, size=n, p=carrier_p)
    origins = rng.choice(ORIGINS, size=n, p=[0.4, 0.3, 0.25, 0.05])
    dep = 12.0 + 40.0 * rng.standard_normal(n)
    dist = 1000.0 + 700.0 * rng.standard_normal(n)
    y = (
        60.0
        + 0.9 * dep
        - 0.01 * dist
        + np.array([CARRIER_EFFECT[c] for c in carriers])
        + np.array([ORIGIN_EFFECT[o] for o in origins])
        + rng.normal(0, 1, n)
    )
    rows = np.empty((n, 4), dtype=object)
    rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = dep, carriers, dist, origins
    return rows, y


def make_category_model(seed: int = 0) -> Pipeline:
    rows, y = category_rows(3000, seed)
    encode = ColumnTransformer(
        [
            ("number", StandardScaler(), NUMERIC),
            (
                "category",
                OneHotEncoder(categories=[CARRIER_KEPT, ORIGINS], handle_unknown="ignore"),
                CATEGORY,
            ),
        ]
    )
    model = Pipeline([("encode", encode), ("sgd", SGDRegressor(random_state=seed))])
    return model.fit(rows, y)


def category_metadata(seed: int = 0) -> dict[str, Any]:
    rows, y = category_rows(3000, seed)
    stats = {
        f: {
            "count": len(rows),
            "mean": float(rows[:, j].astype(float).mean()),
            "var": float(rows[:, j].astype(float).var()),
            "min": float(rows[:, j].astype(float).min()),
            "max": float(rows[:, j].astype(float).max()),
        }
        for f, j in (("dep_delay", 0), ("distance", 2))
    }
    infrequent = float(np.isin(rows[:, 1], CARRIER_KEPT, invert=True).mean())
    return {
        "features": CAT_FEATURES,
        "target": "arr_delay",
        "metrics": {"r2": 0.9},
        "optimum": {"r2": 0.9},
        "params": {},
        "dataset_fingerprint": "test-categories",
        "feature_stats": stats,
        "categories": {
            "carrier": {"levels": CARRIER_KEPT, "infrequent_share": infrequent, "missing": "drop"},
            "origin": {"levels": ORIGINS, "infrequent_share": 0.0, "missing": "level"},
        },
        "target_stats": {
            "name": "arr_delay",
            "count": len(y),
            "mean": float(y.mean()),
            "var": float(y.var()),
            "min": float(y.min()),
            "max": float(y.max()),
        },
    }


def publish_categories(models: Path, seed: int = 0) -> str:
    return publish_bundle(str(models), NAME, make_category_model(seed), category_metadata(seed))


def records(rows: np.ndarray) -> list[dict[str, Any]]:
    """JSON records of object rows (MISSING_LEVEL sent as null, as a client would)."""
    return [
        {
            f: (None if v == MISSING_LEVEL else (float(v) if j in NUMERIC else str(v)))
            for j, (f, v) in enumerate(zip(CAT_FEATURES, row, strict=True))
        }
        for row in rows
    ]
