"""The prepared dataset: its manifest, and one partition loaded as float64 arrays.

The loaders here run on the Dask workers; what they return is small enough for one process
(one partition at a time), never the whole split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from regpipe_common import storage
from regpipe_common.dataset import MANIFEST, part_url, read_manifest
from regpipe_common.errors import DataError

# Tags that keep the random streams for validation rows, row order and partition order apart.
VALIDATION_STREAM = 1
ROW_STREAM = 2
ORDER_STREAM = 3
SAMPLE_STREAM = 4  # the test rows the report plots


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
    """Read and check the dataset's manifest (:mod:`regpipe_common.dataset`, either layout);
    any problem is a :class:`DataError`."""
    doc = read_manifest(url)
    where = storage.join(url, MANIFEST)
    features = list(doc["features"])
    stats = doc["features"]
    dataset = Dataset(
        url=url,
        manifest=doc,
        features=features,
        target=str(doc["target"]["name"]),
        mean=np.array([float(stats[f]["mean"]) for f in features]),
        var=np.array([float(stats[f]["var"]) for f in features]),
        train=_parts(url, doc["splits"]["train"]),
        test=_parts(url, doc["splits"]["test"]),
    )
    if dataset.train_rows == 0:
        raise EmptySplitError(f"{where}: the train split is empty (0 rows)")
    if sum(p.rows for p in dataset.test) == 0:
        raise EmptySplitError(f"{where}: the test split is empty (0 rows)")
    return dataset


def _parts(url: str, entries: list[dict[str, Any]]) -> list[Part]:
    parts = [Part(part_url(url, e), int(e["rows"]), i) for i, e in enumerate(entries)]
    return [p for p in parts if p.rows > 0]


def read_partition(part: Part, features: list[str], target: str) -> tuple[np.ndarray, np.ndarray]:
    """One partition's features as a C-ordered float64 matrix and its target, checked."""
    fs, path = storage.filesystem(part.url)
    columns = [*features, target]
    try:
        parquet = pq.ParquetFile(path, filesystem=fs)
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise PartitionError(
                f"{part.url}: column(s) {', '.join(missing)} missing from partition"
            )
        table = parquet.read(columns=columns)
    except FileNotFoundError:
        raise PartitionError(f"{part.url}: partition listed in the manifest not found") from None
    except (OSError, pa.ArrowException) as exc:
        raise PartitionError(f"{part.url}: not a readable Parquet file ({exc})") from None
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
