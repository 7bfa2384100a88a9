"""The prepared dataset: its manifest, and one partition loaded as float64 arrays.

The loaders here run on the Dask workers; what they return is small enough for one process
(one partition at a time), never the whole split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from regpipe_common import publish, storage
from regpipe_common.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "regpipe-dataset/1"
STAT_KEYS = ("count", "mean", "var")
# Tags that keep the random streams for validation rows, row order and partition order apart.
VALIDATION_STREAM = 1
ROW_STREAM = 2
ORDER_STREAM = 3
SAMPLE_STREAM = 4  # the test rows the report plots


class ManifestError(DataError):
    """The manifest is missing, unreadable or incomplete."""


class EmptySplitError(DataError):
    """A split has no rows."""


class PartitionError(DataError):
    """A partition lacks a column, has the wrong row count or a non-finite value."""


@dataclass(frozen=True)
class Part:
    url: str
    rows: int
    index: int


@dataclass(frozen=True)
class Dataset:
    """What training needs from a prepared dataset's manifest."""

    url: str
    manifest: dict[str, Any]
    features: list[str]
    target: str
    mean: np.ndarray
    var: np.ndarray
    train: list[Part]
    test: list[Part]

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @property
    def scale(self) -> np.ndarray:
        """``StandardScaler.scale_``: the standard deviation, 1 where it is zero."""
        scale = np.sqrt(self.var)
        scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
        return scale

    @property
    def target_mean(self) -> float:
        return float(self.manifest["target"]["mean"])

    @property
    def target_std(self) -> float:
        return float(np.sqrt(self.manifest["target"]["var"]))

    @property
    def train_rows(self) -> int:
        return sum(p.rows for p in self.train)


def load_dataset(url: str) -> Dataset:
    """Read and check ``<url>/manifest.json``; any problem is a :class:`DataError`."""
    manifest_url = storage.join(url, MANIFEST)
    try:
        doc = publish.read_json(manifest_url)
    except FileNotFoundError:
        raise ManifestError(
            f"{manifest_url} not found: the dataset is missing or incomplete "
            "(the preprocess service writes the manifest last)"
        ) from None
    except ValueError as exc:
        raise ManifestError(f"{manifest_url} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{manifest_url} is not a JSON object")
    _check_manifest(doc, manifest_url)
    features = list(doc["features"])
    stats = doc["features"]
    dataset = Dataset(
        url=url,
        manifest=doc,
        features=features,
        target=str(doc["target"]["name"]),
        mean=np.array([float(stats[f]["mean"]) for f in features]),
        var=np.array([float(stats[f]["var"]) for f in features]),
        train=_parts(url, doc["splits"]["train"], manifest_url, "train"),
        test=_parts(url, doc["splits"]["test"], manifest_url, "test"),
    )
    if dataset.train_rows == 0:
        raise EmptySplitError(f"{manifest_url}: the train split is empty (0 rows)")
    if sum(p.rows for p in dataset.test) == 0:
        raise EmptySplitError(f"{manifest_url}: the test split is empty (0 rows)")
    return dataset


def _check_manifest(doc: dict[str, Any], where: str) -> None:
    missing = [k for k in ("features", "target", "splits", "fingerprint") if k not in doc]
    if missing:
        raise ManifestError(f"{where} is incomplete: missing key(s) {', '.join(missing)}")
    if doc.get("format", FORMAT) != FORMAT:
        raise ManifestError(f"{where}: format {doc['format']!r} is not {FORMAT!r}")
    features = doc["features"]
    if not isinstance(features, dict) or not features:
        raise ManifestError(f"{where}: 'features' must name at least one feature with its stats")
    for name, stats in features.items():
        _check_stats(stats, f"{where}: feature {name!r}")
    target = doc["target"]
    if not isinstance(target, dict) or "name" not in target:
        raise ManifestError(f"{where}: 'target' lacks its 'name'")
    _check_stats(target, f"{where}: target {target['name']!r}")
    splits = doc["splits"]
    for split in ("train", "test"):
        if not isinstance(splits, dict) or not isinstance(splits.get(split), list):
            raise ManifestError(f"{where}: 'splits' lacks the {split!r} partition list")


def _check_stats(stats: Any, what: str) -> None:
    if not isinstance(stats, dict):
        raise ManifestError(f"{what} has no statistics")
    missing = [k for k in STAT_KEYS if k not in stats]
    if missing:
        raise ManifestError(f"{what} lacks statistic(s) {', '.join(missing)}")
    values = [stats[k] for k in STAT_KEYS]
    if not all(isinstance(v, int | float) and np.isfinite(v) for v in values):
        raise ManifestError(f"{what} has a non-numeric or non-finite statistic: {stats}")
    if stats["var"] < 0:
        raise ManifestError(f"{what} has a negative variance")


def _parts(url: str, entries: list[Any], where: str, split: str) -> list[Part]:
    parts = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "path" not in entry or "rows" not in entry:
            raise ManifestError(f"{where}: {split} partition #{i} lacks 'path' or 'rows'")
        parts.append(Part(url=storage.join(url, entry["path"]), rows=int(entry["rows"]), index=i))
    return [p for p in parts if p.rows > 0]


def read_partition(part: Part, features: list[str], target: str) -> tuple[np.ndarray, np.ndarray]:
    """One partition's features as a C-ordered float64 matrix and its target, checked."""
    fs, path = storage.filesystem(part.url)
    try:
        parquet = pq.ParquetFile(path, filesystem=fs)
    except FileNotFoundError:
        raise PartitionError(f"{part.url}: partition listed in the manifest not found") from None
    columns = [*features, target]
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise PartitionError(f"{part.url}: column(s) {', '.join(missing)} missing from partition")
    table = parquet.read(columns=columns)
    if table.num_rows != part.rows:
        raise PartitionError(f"{part.url}: {table.num_rows} rows, the manifest says {part.rows}")
    x = np.empty((table.num_rows, len(features)))
    for j in range(len(features)):
        x[:, j] = table.column(j).to_numpy()
    y = table.column(len(features)).to_numpy().astype(np.float64, copy=False)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        _raise_non_finite(part, columns, np.column_stack([x, y]))
    return x, y


def _raise_non_finite(part: Part, columns: list[str], values: np.ndarray) -> None:
    rows, cols = np.nonzero(~np.isfinite(values))
    row, col = int(rows[0]), int(cols[0])
    raise PartitionError(
        f"{part.url}: column {columns[col]!r} has a non-finite value ({values[row, col]}) "
        f"at row {row}"
    )


def standardize(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` in place (what ``StandardScaler.transform`` computes)."""
    x -= mean
    x /= scale
    return x


def validation_mask(seed: int, part_index: int, rows: int, fraction: float) -> np.ndarray:
    """Which rows of a train partition are held out for validation (fixed for a seed)."""
    rng = np.random.default_rng([seed, VALIDATION_STREAM, part_index])
    return rng.random(rows) < fraction


def row_order(seed: int, epoch: int, part_index: int, rows: int) -> np.ndarray:
    """The order in which one partition's fit rows are visited in ``epoch``."""
    return np.random.default_rng([seed, ROW_STREAM, epoch, part_index]).permutation(rows)


def partition_order(seed: int, epoch: int, n_parts: int) -> np.ndarray:
    """The order in which the train partitions are visited in ``epoch``."""
    return np.random.default_rng([seed, ORDER_STREAM, epoch]).permutation(n_parts)
