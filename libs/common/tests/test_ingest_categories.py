"""The shared raw-input rules for category columns (what preprocess and score both read)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regpipe_common.errors import DataError
from regpipe_common.ingest.parse import ENCODING, parse_csv_block, typed_parquet_table
from regpipe_common.ingest.sources import find_inputs
from regpipe_common.ingest.validate import validate_file
from regpipe_common.spec import parse_spec

SPEC = parse_spec(
    {
        "columns": [
            {"name": "id", "type": "int"},
            {"name": "c", "type": "category"},
            {"name": "y", "type": "float"},
        ],
        "target": "y",
        "features": ["c"],
        "key": "id",
    }
)
HEADER = ["id", "c", "y"]


def test_csv_levels_are_kept_exactly_and_an_empty_field_is_missing():
    data = "id,c,y\n1, a ,1\n2,,2\n3,Zürich,3\n4,7,4\n5,NA,5\n".encode()
    parsed = parse_csv_block(data, HEADER, SPEC, skip_header=True)
    assert parsed.rejects == []
    # The null markers of every column (NA, null, ...) are missing here too.
    assert parsed.table.column("c").to_pylist() == [" a ", None, "Zürich", "7", None]


def test_a_csv_category_field_that_is_not_utf8_rejects_its_line_naming_the_column():
    data = b"id,c,y\n1,a,1\n2,b\xe9,2\n3,c,3\n"
    parsed = parse_csv_block(data, HEADER, SPEC, skip_header=True)
    (reject,) = parsed.rejects
    assert (reject.line, reject.column, reject.reason) == (3, "c", ENCODING)
    assert parsed.table.column("c").to_pylist() == ["a", "c"]
    assert parsed.lines.tolist() == [2, 4]


def test_parquet_text_columns_of_any_storage_become_strings():
    for values, expected in (
        (pa.array(["a", None, "b"]).dictionary_encode(), ["a", None, "b"]),
        (pa.array([b"a", None, b"\xc3\xa9"], pa.binary()), ["a", None, "é"]),
        (pa.array([7, None, -1]), ["7", None, "-1"]),
        (pa.array(["a", "b", "c"], pa.large_string()), ["a", "b", "c"]),
    ):
        table = pa.table({"id": [1, 2, 3], "c": values, "y": [1.0, 2.0, 3.0]})
        parsed = typed_parquet_table(table, 0, SPEC)
        assert parsed.rejects == []
        assert parsed.table.column("c").type == pa.string()
        assert parsed.table.column("c").to_pylist() == expected


def test_a_parquet_binary_value_that_is_not_utf8_rejects_its_row():
    table = pa.table(
        {
            "id": [1, 2, 3, 4],
            "c": pa.array([b"a", b"\xff", b"b", None], pa.binary()),
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    parsed = typed_parquet_table(table, 100, SPEC)  # a row group after 100 rows
    (reject,) = parsed.rejects
    assert (reject.line, reject.column, reject.reason) == (102, "c", ENCODING)
    assert '"id": 2' in reject.raw
    assert parsed.table.column("c").to_pylist() == ["a", "b", None]
    assert parsed.lines.tolist() == [101, 103, 104] and parsed.rows_read == 4


def test_an_int_key_beyond_int64_is_rejected_not_a_crash():
    data = b"id,c,y\n1,a,1\n1e19,b,2\n-9e18,c,3\n"
    parsed = parse_csv_block(data, HEADER, SPEC, skip_header=True)
    (reject,) = parsed.rejects
    assert (reject.line, reject.column) == (3, "id") and "int64" in reject.reason
    assert parsed.table.num_rows == 2


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        (pa.array(["a", "b"]), True),
        (pa.array(["a", "b"]).dictionary_encode(), True),
        (pa.array([1, 2], pa.int32()), True),
        (pa.array([1.5, 2.0]), False),
        (pa.array([True, False]), False),
    ],
)
def test_parquet_types_a_category_column_may_have(tmp_path, values, ok):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 2], "c": values, "y": [1.0, 2.0]}), path)
    (f,) = find_inputs(str(path))
    if ok:
        assert validate_file(f, SPEC) == HEADER
    else:
        with pytest.raises(DataError, match=r"column 'c' has Parquet type .*category"):
            validate_file(f, SPEC)
