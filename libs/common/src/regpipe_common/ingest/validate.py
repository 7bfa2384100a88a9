"""Checks that stop the job before any output: every file has exactly the spec's columns, and
no column holds values of another type (judged on a sample at the head of each file)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from regpipe_common import storage
from regpipe_common.errors import DataError
from regpipe_common.spec import DatasetSpec

from .parse import NULL_VALUES, screen_lines, to_number
from .sources import InputFile, csv_header, open_text_head

SAMPLE_BYTES = 1 << 20
# A numeric column whose sample is mostly unparseable holds the wrong type (fatal); a few bad
# values are malformed rows (rejected later, row by row).
WRONG_TYPE_FRACTION = 0.5


def check_columns(url: str, found: list[str], spec: DatasetSpec) -> None:
    expected = spec.column_names
    missing = [c for c in expected if c not in found]
    if missing:
        raise DataError(f"{url}: missing column {missing[0]!r} (the spec declares {expected})")
    unexpected = [c for c in found if c not in expected]
    if unexpected:
        raise DataError(f"{url}: unexpected column {unexpected[0]!r} (not in the spec)")
    dupes = sorted({c for c in found if found.count(c) > 1})
    if dupes:
        raise DataError(f"{url}: column {dupes[0]!r} appears twice in the header")


def validate_file(f: InputFile, spec: DatasetSpec) -> list[str]:
    """Check one file's columns and types; return its column names in file order."""
    if f.kind == "parquet":
        return _validate_parquet(f, spec)
    return _validate_csv(f, spec)


def _validate_csv(f: InputFile, spec: DatasetSpec) -> list[str]:
    head = open_text_head(f, SAMPLE_BYTES)
    header = csv_header(head, spec.delimiter, f.url)
    check_columns(f.url, header, spec)
    head, _ = screen_lines(head, header, spec.delimiter, skip_header=True)  # rejected later
    sample = pacsv.read_csv(
        io.BytesIO(head),
        read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=False),
        parse_options=pacsv.ParseOptions(
            delimiter=spec.delimiter, invalid_row_handler=lambda _row: "skip"
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            null_values=NULL_VALUES,
            strings_can_be_null=True,
        ),
    )
    for column in spec.columns:
        if not column.numeric:
            continue
        text = sample.column(column.name)
        present = text.drop_null()
        if len(present) == 0:
            continue
        numbers = to_number(present)
        bad = numbers.null_count
        if bad / len(present) > WRONG_TYPE_FRACTION:
            example = present.filter(numbers.is_null())[0].as_py()
            raise DataError(
                f"{f.url}: column {column.name!r} holds text such as {example!r}; "
                f"the spec says {column.type}"
            )
    return header


def _validate_parquet(f: InputFile, spec: DatasetSpec) -> list[str]:
    fs, path = storage.filesystem(f.url)
    try:
        with fs.open(path, "rb") as handle:
            schema = pq.read_schema(handle)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{f.url}: not a readable Parquet file ({exc})") from None
    check_columns(f.url, schema.names, spec)
    for column in spec.columns:
        arrow_type = schema.field(column.name).type
        if column.numeric and not (
            pa.types.is_integer(arrow_type)
            or pa.types.is_floating(arrow_type)
            or pa.types.is_decimal(arrow_type)
            or pa.types.is_null(arrow_type)
        ):
            raise DataError(
                f"{f.url}: column {column.name!r} has Parquet type {arrow_type}; "
                f"the spec says {column.type}"
            )
        if column.category and not _holds_levels(arrow_type):
            raise DataError(
                f"{f.url}: column {column.name!r} has Parquet type {arrow_type}; a category "
                "column holds strings, dictionary-encoded strings or integers"
            )
    return schema.names


def _holds_levels(arrow_type: pa.DataType) -> bool:
    """Parquet types a category column may have: text, or integers (their decimal text)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_integer(arrow_type)
        or pa.types.is_null(arrow_type)
    )
