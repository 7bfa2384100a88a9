"""One Dask task: read a unit, set malformed rows aside, drop rows with missing values, split,
accumulate statistics and write the unit's train and test Parquet parts, all in one pass.

A part holds the features (numbers as float64, categories as dictionary-encoded strings), the
target (float64), then the spec's key columns that are neither (as their spec type: int64,
float64 or string), so that scores can name their rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regpipe_common import storage
from regpipe_common.dataset import SPLITS
from regpipe_common.ingest.parse import Reject
from regpipe_common.ingest.read import read_unit
from regpipe_common.ingest.sources import Unit
from regpipe_common.spec import MISSING_LEVEL, DatasetSpec

from .split import content_sum, is_test, row_hash
from .stats import LevelCounts, Moments

MAX_REJECTS_KEPT = 1000  # per unit; the counts stay exact


@dataclass(frozen=True)
class JobContext:
    spec: DatasetSpec
    headers: dict[str, list[str]]  # CSV header of each input file
    version_url: str  # the unpublished version folder the parts go to
    seed: int
    test_fraction: float
    stream_block_bytes: int


@dataclass
class UnitResult:
    index: int
    file: str
    lines: int = 0  # lines (CSV) or rows (Parquet) this unit covers, to number later units
    rows_read: int = 0
    rows_rejected: int = 0
    rows_dropped_missing: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    content: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    moments: dict[str, Moments] = field(default_factory=dict)  # train split, numeric columns
    levels: dict[str, LevelCounts] = field(default_factory=dict)  # train split, categories
    rejects: list[Reject] = field(default_factory=list)


class _PartWriter:
    """Opens ``<split>/part-<unit>.parquet`` on the first non-empty batch."""

    def __init__(self, ctx: JobContext, unit: Unit, split: str):
        self.url = storage.join(ctx.version_url, split, f"part-{unit.index:05d}.parquet")
        self.writer: pq.ParquetWriter | None = None
        self.handle = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.writer is None:
            fs, path = storage.filesystem(self.url)
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.handle = fs.open(path, "wb")
            self.writer = pq.ParquetWriter(self.handle, table.schema, compression="snappy")
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.handle.close()


def process_unit(unit: Unit, ctx: JobContext) -> UnitResult:
    result = UnitResult(index=unit.index, file=unit.file.url)
    writers = {split: _PartWriter(ctx, unit, split) for split in SPLITS}
    try:
        line_base = 0
        header = ctx.headers.get(unit.file.url, [])  # none for Parquet
        for parsed, lines_in_block in read_unit(unit, ctx.spec, header, ctx.stream_block_bytes):
            for r in parsed.rejects:
                if len(result.rejects) < MAX_REJECTS_KEPT:
                    result.rejects.append(Reject(r.line + line_base, r.column, r.reason, r.raw))
            result.rows_rejected += len(parsed.rejects)
            result.rows_read += parsed.rows_read
            _clean_split_write(parsed.table, ctx, result, writers)
            line_base += lines_in_block
        result.lines = line_base
    finally:
        for writer in writers.values():
            writer.close()
    return result


def _clean_split_write(
    table: pa.Table, ctx: JobContext, result: UnitResult, writers: dict[str, _PartWriter]
) -> None:
    spec = ctx.spec
    table = _missing_as_level(table, spec)
    model_columns = spec.model_columns
    complete = np.ones(table.num_rows, dtype=bool)
    for name in model_columns:
        complete &= np.asarray(table.column(name).is_valid())
    result.rows_dropped_missing += int((~complete).sum())
    if not complete.all():
        table = table.filter(pa.array(complete))
    hashes = row_hash(table, list(spec.key) or spec.column_names, ctx.seed)
    test_mask = is_test(hashes, ctx.test_fraction)
    table = table.select(prepared_columns(spec))
    for split, mask in (("train", ~test_mask), ("test", test_mask)):
        part = table.filter(pa.array(mask))
        result.rows[split] += part.num_rows
        result.content[split] = (
            result.content[split] + content_sum(part, model_columns, hashes[mask])
        ) % (1 << 64)
        writers[split].write(prepared_table(part, spec))
        if split == "train":
            _accumulate(part, spec, result)


def _missing_as_level(table: pa.Table, spec: DatasetSpec) -> pa.Table:
    """A missing value of a ``missing: level`` category column becomes ``MISSING_LEVEL``."""
    for i, name in enumerate(table.column_names):
        column = spec.column(name)
        if column.missing_is_level and table.column(i).null_count:
            table = table.set_column(i, name, pc.fill_null(table.column(i), MISSING_LEVEL))
    return table


def prepared_columns(spec: DatasetSpec) -> list[str]:
    """The columns of a prepared part: features, target, then the other key columns."""
    model_columns = spec.model_columns
    return [*model_columns, *(k for k in spec.key if k not in model_columns)]


def prepared_table(part: pa.Table, spec: DatasetSpec) -> pa.Table:
    """The part as written: categories dictionary-encoded, int keys as int64."""
    columns = {}
    for name in prepared_columns(spec):
        values, column = part.column(name), spec.column(name)
        if column.category:
            values = pc.dictionary_encode(values)
        elif column.type == "int" and name not in spec.model_columns:
            values = pc.cast(values, pa.int64())
        columns[name] = values
    return pa.table(columns)


def _accumulate(part: pa.Table, spec: DatasetSpec, result: UnitResult) -> None:
    """Train statistics: moments of the numeric features and target, level counts of the
    category features."""
    for name in [*spec.numeric_features, spec.target]:
        values = pc.cast(part.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        result.moments[name] = result.moments.get(name, Moments()).merge(Moments.of(values))
    for name in spec.category_features:
        result.levels.setdefault(name, LevelCounts(name)).add(part.column(name))
