"""Turn raw blocks into typed tables, setting malformed rows aside.

Every numeric column is parsed as float64 (an ``int`` column must then hold whole numbers),
string and ``category`` columns stay strings, exactly as written (nothing is trimmed; an empty
field or one of ``NULL_VALUES`` is missing, as in every column). A Parquet category (or string)
column may be stored as strings, dictionary-encoded strings, binary or integers (cast to their
decimal text: ``7`` is the level ``"7"``).

A row is rejected, with its line and the first offending column, when it is not UTF-8 (reason
``encoding``), has an odd number of ``"`` (a quoted field may not span lines: each physical
line is one row, whatever the block size), has the wrong number of fields, a value that is not
a number, a non-finite number, a magnitude above ``MAX_ABS_VALUE``, a fraction in an ``int``
column, a value outside the spec's range, or an ``int`` key column value beyond int64 (keys
are written as their spec type).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from regpipe_common.dataset import MAX_ABS_VALUE
from regpipe_common.spec import DatasetSpec

NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]
MAX_RAW_CHARS = 500
ENCODING = "encoding"
INT_KEY_LIMIT = 2.0**63  # an int key column is written as int64
UNBALANCED_QUOTE = "odd number of '\"': a quoted field may not span lines"


@dataclass(frozen=True)
class Reject:
    line: int  # 1-based line in the block (CSV) or row number in the file (Parquet)
    column: str | None
    reason: str
    raw: str


@dataclass
class Parsed:
    table: pa.Table  # spec columns: numeric as float64, strings as string
    lines: np.ndarray  # the line (or row) number of each table row
    rejects: list[Reject]
    rows_read: int


def to_number(strings: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Parse text to float64; unparseable values become null."""
    values = pd.to_numeric(pd.Series(np.asarray(strings, dtype=object)), errors="coerce")
    return pa.array(values.to_numpy(dtype=np.float64), from_pandas=True)


def arrow_types(spec: DatasetSpec, as_text: bool = False) -> dict[str, pa.DataType]:
    return {
        c.name: pa.float64() if c.numeric and not as_text else pa.string() for c in spec.columns
    }


def parse_csv_block(data: bytes, header: list[str], spec: DatasetSpec, skip_header: bool) -> Parsed:
    """Parse one block of CSV text (whole lines). The fast path parses straight to float64; a
    block with an unparseable number is parsed again as text to find the bad rows."""
    body = data.partition(b"\n")[2] if skip_header else data
    if not body:  # a tiny block may hold no line, or the header only
        return _empty(spec)
    data, screened = screen_lines(data, header, spec.delimiter, skip_header)
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number if row.number is not None else 0, row.text))
        return "skip"

    def read(as_text: bool) -> pa.Table:
        invalid.clear()
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=header,
                skip_rows=1 if skip_header else 0,
                use_threads=False,
                block_size=max(len(data) + 1, 1 << 20),
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=spec.delimiter, invalid_row_handler=on_invalid, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=arrow_types(spec, as_text),
                null_values=NULL_VALUES,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )

    try:
        table = read(as_text=False)
        text_rejects: list[Reject] = []
    except pa.ArrowInvalid:
        table, text_rejects = _numbers_from_text(read(as_text=True), spec)
    blank = {n for n, text in invalid if not text.strip()}
    bad_shape = [(n, text) for n, text in invalid if n not in blank]
    first_line = 2 if skip_header else 1
    n_lines = table.num_rows + len(text_rejects) + len(invalid)
    skipped = np.array(sorted(n for n, _ in invalid), dtype=np.int64)
    all_lines = np.arange(first_line, first_line + n_lines, dtype=np.int64)
    row_lines = np.setdiff1d(all_lines, skipped, assume_unique=True) if len(skipped) else all_lines
    # Rows rejected for unparseable text were removed from `table`: drop their lines too.
    if text_rejects:
        keep = np.ones(len(row_lines), dtype=bool)
        keep[[r.line for r in text_rejects]] = False
        text_rejects = [
            Reject(int(row_lines[r.line]), r.column, r.reason, r.raw) for r in text_rejects
        ]
        row_lines = row_lines[keep]
    rejects = screened + [
        Reject(n, None, f"expected {len(header)} fields", text[:MAX_RAW_CHARS])
        for n, text in bad_shape
    ]
    rejects += text_rejects
    table, row_lines, value_rejects = check_values(table, row_lines, spec)
    rejects += value_rejects
    if rejects:
        rejects = _with_raw_lines(rejects, data)
    rejects.sort(key=lambda r: r.line)
    return Parsed(table, row_lines, rejects, rows_read=n_lines - len(blank) + len(screened))


def _empty(spec: DatasetSpec) -> Parsed:
    types = arrow_types(spec)
    table = pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
    return Parsed(table, np.zeros(0, dtype=np.int64), [], rows_read=0)


def screen_lines(
    data: bytes, header: list[str], delimiter: str, skip_header: bool
) -> tuple[bytes, list[Reject]]:
    """Reject the lines (1-based in ``data``) that are not UTF-8 or have an odd number of
    quotes, and blank them so that the CSV parser neither fails nor joins lines."""
    first = 1 if skip_header else 0
    odd = [i for i in map(int, _odd_quote_lines(data)) if i >= first] if b'"' in data else []
    try:
        data.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    if utf8 and not odd:
        return data, []  # the common case: no line is split into a list
    lines = data.split(b"\n")
    bad = {i: Reject(i + 1, None, UNBALANCED_QUOTE, _raw(lines[i])) for i in odd}
    for i, line in enumerate(lines):
        offset = None if utf8 or i < first or i in bad else _first_bad_byte(line)
        if offset is not None:
            field = line[:offset].count(delimiter.encode())
            column = header[field] if field < len(header) else None
            bad[i] = Reject(i + 1, column, ENCODING, _raw(line))
    for i in bad:
        lines[i] = b" "  # a one-field line: the parser skips it as blank, numbering holds
    return b"\n".join(lines), sorted(bad.values(), key=lambda r: r.line)


def _odd_quote_lines(data: bytes) -> np.ndarray:
    """0-based indexes of the lines of ``data`` that hold an odd number of ``"``."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    quote_line = np.searchsorted(newlines, np.flatnonzero(buf == ord('"')))
    return np.flatnonzero(np.bincount(quote_line, minlength=len(newlines) + 1) % 2)


def _first_bad_byte(line: bytes) -> int | None:
    """The offset of the first byte that is not UTF-8; None for a UTF-8 line."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _raw(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", "replace")[:MAX_RAW_CHARS]


def _numbers_from_text(text: pa.Table, spec: DatasetSpec) -> tuple[pa.Table, list[Reject]]:
    """Convert the numeric columns of an all-text table; rows with unparseable numbers are
    removed and returned as rejects (``line`` holds the row's index until the caller maps it)."""
    bad = np.zeros(text.num_rows, dtype=bool)
    rejects: list[Reject] = []
    columns = {}
    for column in spec.columns:
        values = text.column(column.name)
        if not column.numeric:
            columns[column.name] = values
            continue
        numbers = to_number(values)
        unparsed = np.asarray(values.is_valid()) & np.asarray(numbers.is_null())
        for i in np.flatnonzero(unparsed & ~bad):
            rejects.append(
                Reject(int(i), column.name, f"not a number: {values[int(i)].as_py()!r}", "")
            )
        bad |= unparsed
        columns[column.name] = numbers
    table = pa.table(columns).filter(pa.array(~bad))
    rejects.sort(key=lambda r: r.line)
    return table, rejects


def check_values(
    table: pa.Table, lines: np.ndarray, spec: DatasetSpec
) -> tuple[pa.Table, np.ndarray, list[Reject]]:
    """Reject non-finite numbers, fractions in int columns and values out of range."""
    bad = np.zeros(table.num_rows, dtype=bool)
    rejects: list[Reject] = []
    for column in spec.columns:
        if not column.numeric:
            continue
        values = table.column(column.name).to_numpy(zero_copy_only=False)  # nulls -> nan
        with np.errstate(invalid="ignore"):
            checks = [
                (np.isinf(values), "non-finite value"),
                (np.abs(values) > MAX_ABS_VALUE, f"out of range (magnitude > {MAX_ABS_VALUE:g})"),
            ]
            if column.type == "int":
                checks.append(
                    (np.isfinite(values) & (values != np.floor(values)), "not an integer")
                )
                if column.name in spec.key:
                    checks.append(
                        (np.abs(values) >= INT_KEY_LIMIT, "out of range for an int64 key")
                    )
            if column.min is not None:
                checks.append((values < column.min, f"below the minimum {column.min:g}"))
            if column.max is not None:
                checks.append((values > column.max, f"above the maximum {column.max:g}"))
        for mask, reason in checks:
            new = mask & ~bad
            for i in np.flatnonzero(new):
                rejects.append(Reject(int(lines[i]), column.name, f"{reason}: {values[i]!r}", ""))
            bad |= new
    if not bad.any():
        return table, lines, rejects
    return table.filter(pa.array(~bad)), lines[~bad], rejects


def _with_raw_lines(rejects: list[Reject], data: bytes) -> list[Reject]:
    lines = data.split(b"\n")
    out = []
    for r in rejects:
        raw = r.raw
        if not raw and 0 < r.line <= len(lines):
            raw = lines[r.line - 1].rstrip(b"\r").decode("utf-8", "replace")[:MAX_RAW_CHARS]
        out.append(Reject(r.line, r.column, r.reason, raw))
    return out


def typed_parquet_table(table: pa.Table, first_row: int, spec: DatasetSpec) -> Parsed:
    """Cast a Parquet row group to the spec's types and check its values; a text value that is
    not UTF-8 rejects its row (reason ``encoding``)."""
    columns = {}
    lines = np.arange(first_row + 1, first_row + 1 + table.num_rows, dtype=np.int64)
    bad = np.zeros(table.num_rows, dtype=bool)
    rejects: list[Reject] = []
    for column in spec.columns:
        values = table.column(column.name)
        if column.numeric:
            columns[column.name] = (
                values if values.type == pa.float64() else pc.cast(values, pa.float64())
            )
            continue
        columns[column.name], not_utf8 = _as_text(values)
        for i in np.flatnonzero(not_utf8 & ~bad):
            rejects.append(Reject(int(lines[i]), column.name, ENCODING, ""))
        bad |= not_utf8
    typed = pa.table(columns)
    if bad.any():
        typed, lines = typed.filter(pa.array(~bad)), lines[~bad]
    typed, lines, value_rejects = check_values(typed, lines, spec)
    rejects = [
        Reject(r.line, r.column, r.reason, _row_json(table, r.line - first_row - 1))
        for r in sorted(rejects + value_rejects, key=lambda r: r.line)
    ]
    return Parsed(typed, lines, rejects, rows_read=table.num_rows)


def _as_text(values: pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """A Parquet text column as strings, and the mask of values that are not UTF-8 (nulled)."""
    not_utf8 = np.zeros(len(values), dtype=bool)
    if values.type == pa.string():
        return values, not_utf8
    try:
        return pc.cast(values, pa.string()), not_utf8
    except pa.ArrowInvalid:  # binary holding bytes that are not UTF-8: find them one by one
        pass
    text: list[str | None] = []
    for i, raw in enumerate(values.to_pylist()):
        try:
            text.append(None if raw is None else raw.decode("utf-8"))
        except UnicodeDecodeError:
            text.append(None)
            not_utf8[i] = True
    return pa.array(text, type=pa.string()), not_utf8


def _row_json(table: pa.Table, index: int) -> str:
    return json.dumps(table.slice(index, 1).to_pylist()[0], default=str)[:MAX_RAW_CHARS]
