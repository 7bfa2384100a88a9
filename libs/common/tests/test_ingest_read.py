"""regpipe_common.ingest.read: numbering a unit's rows in its file."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from regpipe_common.ingest.read import lines_before
from regpipe_common.ingest.sources import find_inputs, plan_units


def test_lines_before_a_parquet_row_group_counts_the_rows_of_the_earlier_groups(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": list(range(10))}), path, row_group_size=4)
    units = plan_units(find_inputs(str(path)), blocksize=1 << 20)
    assert [lines_before(u) for u in units] == [0, 4, 8]


def test_lines_before_a_csv_range_counts_the_lines_up_to_its_first_whole_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"x\n1\n22\n333\n")  # line ends at bytes 1, 3, 6, 10
    units = plan_units(find_inputs(str(path)), blocksize=4)
    # The range at offset 4 starts after the line end at byte 6: lines 1-3 come before it.
    assert [lines_before(u) for u in units] == [0, 3, 4]
