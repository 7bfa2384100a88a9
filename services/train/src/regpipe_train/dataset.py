"""The prepared dataset: its manifest, and one partition loaded as a design :class:`Block`.

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

from .design import Block, Layout

# Tags that keep the random streams for validation rows, row order and partition order apart.
VALIDATION_STREAM = 1
ROW_STREAM = 2
ORDER_STREAM = 3
MIX_STREAM = 4
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
    features: list[str]  # every input feature, in model order
    target: str
    mean: np.ndarray  # of the numeric features (``layout.numeric``)
    var: np.ndarray
    train: list[Part]
    test: list[Part]
    layout: Layout

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
    stats = doc["features"]
    layout = _layout(doc, where)
    dataset = Dataset(
        url=url,
        manifest=doc,
        features=list(doc.get("feature_order") or stats),
        target=str(doc["target"]["name"]),
        mean=np.array([float(stats[f]["mean"]) for f in layout.numeric]),
        var=np.array([float(stats[f]["var"]) for f in layout.numeric]),
        train=_parts(url, doc["splits"]["train"]),
        test=_parts(url, doc["splits"]["test"]),
        layout=layout,
    )
    if dataset.train_rows == 0:
        raise EmptySplitError(f"{where}: the train split is empty (0 rows)")
    if sum(p.rows for p in dataset.test) == 0:
        raise EmptySplitError(f"{where}: the test split is empty (0 rows)")
    return dataset


def _layout(doc: dict[str, Any], where: str) -> Layout:
    """Numeric features (with stats) and category features (with kept levels), in the order of
    ``feature_order`` (every feature must be one or the other)."""
    stats, categories = doc["features"], doc.get("categories") or {}
    order = list(doc.get("feature_order") or stats)
    unknown = [f for f in order if f not in stats and f not in categories]
    if unknown:
        raise DataError(
            f"{where}: feature(s) {', '.join(unknown)} in 'feature_order' have neither "
            "statistics ('features') nor levels ('categories')"
        )
    kept = {}
    for f in (f for f in order if f in categories):
        levels = categories[f].get("kept") if isinstance(categories[f], dict) else None
        if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
            raise DataError(f"{where}: categories[{f!r}] lacks its 'kept' list of level strings")
        if not levels:
            raise DataError(f"{where}: categories[{f!r}] keeps no level: nothing to encode")
        kept[f] = levels
    return Layout(numeric=[f for f in order if f not in categories], categories=kept)


def _parts(url: str, entries: list[dict[str, Any]]) -> list[Part]:
    parts = [Part(part_url(url, e), int(e["rows"]), i) for i, e in enumerate(entries)]
    return [p for p in parts if p.rows > 0]


def read_partition(part: Part, dataset: Dataset) -> Block:
    """One partition as a :class:`Block`: numbers standardized, levels as design columns,
    target centered on the train mean; checked, any problem names the column and row."""
    fs, path = storage.filesystem(part.url)
    layout = dataset.layout
    columns = [*layout.numeric, *layout.categories, dataset.target]
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
    p = len(layout.numeric)
    x = np.empty((table.num_rows, p))
    for j in range(p):
        x[:, j] = _numbers(part, table, columns[j])
    y = _numbers(part, table, dataset.target)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        numeric = [*layout.numeric, dataset.target]
        _raise_non_finite(part, numeric, np.column_stack([x, y]))
    codes = np.empty((table.num_rows, len(layout.categories)), dtype=np.int32)
    for j, (feature, levels) in enumerate(layout.categories.items()):
        column = {level: k for k, level in enumerate(levels, start=layout.offsets[j])}
        codes[:, j] = _level_columns(part, table.column(feature), feature, column)
    return Block(standardize(x, dataset.mean, dataset.scale), codes, y - dataset.target_mean)


def _numbers(part: Part, table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise PartitionError(f"{part.url}: column {name!r} is {column.type}, not a number")
    return column.to_numpy().astype(np.float64, copy=False)


def _level_columns(
    part: Part, column: pa.ChunkedArray, feature: str, design_column: dict[str, int]
) -> np.ndarray:
    """Each row's design column for its level (-1: unseen or infrequent)."""
    array = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    if not pa.types.is_string(array.type.value_type) and not pa.types.is_large_string(
        array.type.value_type
    ):
        raise PartitionError(
            f"{part.url}: category column {feature!r} holds {array.type.value_type}, not strings"
        )
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise PartitionError(f"{part.url}: category column {feature!r} is missing at row {row}")
    lookup = np.array(
        [design_column.get(level, -1) for level in array.dictionary.to_pylist()] + [-1],
        dtype=np.int32,
    )
    return lookup[array.indices.to_numpy(zero_copy_only=False)]


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


def batch_order(seed: int, epoch: int, window: int, batch: int, rows: int) -> np.ndarray:
    """The order of one mini-batch's rows, drawn from the partitions of a mixing window."""
    return np.random.default_rng([seed, MIX_STREAM, epoch, window, batch]).permutation(rows)


def partition_order(seed: int, epoch: int, n_parts: int) -> np.ndarray:
    """The order in which the train partitions are visited in ``epoch``."""
    return np.random.default_rng([seed, ORDER_STREAM, epoch]).permutation(n_parts)
