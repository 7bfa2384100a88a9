"""Read one work unit (:mod:`.sources`) into parsed blocks, the way preprocess reads it.

Line numbers of a block's rows start at 1 in the block; add the lines of the earlier blocks of
the unit (what :func:`read_unit` yields beside each block) and :func:`lines_before` of the unit
to get the line (CSV, header included) or 1-based row (Parquet) in the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.utils import read_block

from regpipe_common import storage
from regpipe_common.errors import DataError
from regpipe_common.spec import DatasetSpec

from .parse import Parsed, parse_csv_block, typed_parquet_table
from .sources import Unit

STREAM_BLOCK_BYTES = 16 * 2**20  # gzip CSV: decompressed bytes per parsed block


def read_unit(
    unit: Unit, spec: DatasetSpec, header: list[str], stream_block_bytes: int = STREAM_BLOCK_BYTES
) -> Iterator[tuple[Parsed, int]]:
    """Yield ``(parsed block, lines it spans)``; ``header`` is the file's CSV header."""
    fs, path = storage.filesystem(unit.file.url)
    if unit.file.kind == "parquet":
        table = read_row_group(unit, spec.column_names)
        yield typed_parquet_table(table, 0, spec), table.num_rows
        return
    if unit.file.kind == "csv":
        with fs.open(path, "rb") as handle:
            data = read_block(handle, unit.offset, unit.length, delimiter=b"\n")
        yield parse_csv_block(data, header, spec, unit.starts_file), data.count(b"\n")
        return
    with fs.open(path, "rb", compression="gzip") as handle:
        first = True
        for data in line_blocks(handle, stream_block_bytes):
            yield parse_csv_block(data, header, spec, first), data.count(b"\n")
            first = False


def read_row_group(unit: Unit, columns: list[str]) -> pa.Table:
    """One row group of a Parquet file; a damaged file is a DataError naming it."""
    fs, path = storage.filesystem(unit.file.url)
    try:
        with fs.open(path, "rb") as handle:
            return pq.ParquetFile(handle).read_row_group(unit.offset, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"{unit.file.url}: row group {unit.offset} is not readable Parquet ({exc})"
        ) from None


def line_blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """Read a stream in blocks of about ``size`` bytes, each ending at a line end."""
    carry = b""
    while True:
        chunk = handle.read(size)
        if not chunk:
            if carry:
                yield carry
            return
        chunk = carry + chunk
        cut = chunk.rfind(b"\n")
        if cut < 0:
            carry = chunk
            continue
        carry = chunk[cut + 1 :]
        yield chunk[: cut + 1]


def lines_before(unit: Unit, chunk_bytes: int = 16 * 2**20) -> int:
    """Lines (CSV) or rows (Parquet) of the file before the unit's first one: the rows of the
    earlier row groups, or, as a CSV byte range starts after the first line end at or after its
    offset, the line ends before the offset plus that one. A cold path (error messages): it
    reads the Parquet footer, or the CSV that far."""
    if unit.offset == 0:  # the file's first unit (a gzip CSV has only that one)
        return 0
    fs, path = storage.filesystem(unit.file.url)
    if unit.file.kind == "parquet":
        with fs.open(path, "rb") as handle:
            meta = pq.ParquetFile(handle).metadata
        return sum(meta.row_group(rg).num_rows for rg in range(unit.offset))
    count, left = 0, unit.offset
    with fs.open(path, "rb") as handle:
        while left > 0:
            chunk = handle.read(min(chunk_bytes, left))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count + 1
