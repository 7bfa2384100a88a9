"""Read one task's input into batches of typed rows: a prepared part row group by row group,
or a raw work unit block by block through :mod:`regpipe_common.ingest` (malformed rows set
aside exactly as preprocess sets them aside)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regpipe_common import storage
from regpipe_common.errors import DataError
from regpipe_common.ingest.read import lines_before, read_unit
from regpipe_common.ingest.sources import Unit
from regpipe_common.spec import DatasetSpec


@dataclass(frozen=True)
class Batch:
    """Rows to score and what the reader set aside."""

    table: pa.Table  # the key, feature and target columns
    rows: np.ndarray  # each row's number in the task: 0-based row (prepared), line (raw)
    malformed: list[dict[str, Any]]  # raw input: rejected rows, numbered in the task
    rows_read: int
    lines: int  # rows (prepared) or lines (raw) the batch spans


def item_file(item: str | Unit) -> str:
    """The file a task reads: a prepared part's URL, or a raw unit's file."""
    return item if isinstance(item, str) else item.file.url


def first_row_of_file(item: str | Unit) -> int:
    """What turns a row number in the task into one in the file (a cold path: it may read)."""
    return 0 if isinstance(item, str) else lines_before(item)


def batches(
    item: str | Unit,
    columns: list[str],
    spec: DatasetSpec | None,
    headers: dict[str, list[str]],
) -> Iterator[Batch]:
    """The batches of one task's input, in order."""
    if isinstance(item, str):
        yield from _prepared(item, columns)
    else:
        assert spec is not None
        yield from _raw(item, columns, spec, headers.get(item.file.url, []))


def _prepared(url: str, columns: list[str]) -> Iterator[Batch]:
    fs, path = storage.filesystem(url)
    try:
        parquet = pq.ParquetFile(path, filesystem=fs)
    except FileNotFoundError:
        raise DataError(f"{url}: partition listed in the manifest not found") from None
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise DataError(f"{url}: input column(s) {', '.join(missing)} missing")
    offset = 0
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group, columns=columns)
        n = table.num_rows
        yield Batch(table, np.arange(offset, offset + n, dtype=np.int64), [], n, n)
        offset += n


def _raw(unit: Unit, columns: list[str], spec: DatasetSpec, header: list[str]) -> Iterator[Batch]:
    line_base = 0
    for parsed, lines in read_unit(unit, spec, header):
        malformed = [
            {
                "file": unit.file.url,
                "line": line_base + r.line,
                "column": r.column,
                "reason": r.reason,
                "raw": r.raw,
            }
            for r in parsed.rejects
        ]
        table = _with_int_keys(parsed.table.select(columns), spec)
        yield Batch(table, parsed.lines + line_base, malformed, parsed.rows_read, lines)
        line_base += lines


def _with_int_keys(table: pa.Table, spec: DatasetSpec) -> pa.Table:
    """``int`` columns are parsed as float64 (checked whole): keys go out as int64."""
    for i, name in enumerate(table.column_names):
        if spec.column(name).type == "int" and name not in spec.model_columns:
            try:
                table = table.set_column(i, name, pc.cast(table.column(name), pa.int64()))
            except pa.ArrowInvalid:
                raise DataError(f"key column {name!r}: a value does not fit in int64") from None
    return table
