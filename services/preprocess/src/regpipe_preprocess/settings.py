"""The preprocess job's settings, each declared once: flag, environment variable, default, help.

A flag wins over the environment variable, which wins over the default. The README's
preprocess settings table is :data:`SCHEMA`'s ``markdown_table()``.
"""

from __future__ import annotations

from dask.utils import parse_bytes

from regpipe_common.settings import SEED_RANGE, Schema, Setting


def byte_size(raw: str) -> int:
    """``16MiB``, ``64MB``, ``1048576``: a number of bytes."""
    return int(parse_bytes(raw))


SCHEMA = Schema(
    Setting(
        "input",
        str,
        None,
        "CSV (plain or .gz) or Parquet input: a file, a glob or a folder; any fsspec URL",
        "PREPROCESS_INPUT",
        required=True,
    ),
    Setting("spec", str, None, "dataset spec (YAML)", "PREPROCESS_SPEC", required=True),
    Setting(
        "output",
        str,
        None,
        "output folder or URL prefix for the prepared dataset",
        "PREPROCESS_OUTPUT",
        required=True,
    ),
    Setting(
        "test_fraction",
        float,
        0.2,
        "fraction of rows in the test split",
        "PREPROCESS_TEST_FRACTION",
        minimum=0,
        maximum=1,
        exclusive=True,
    ),
    Setting("seed", int, 0, "seed of the split's row hash", "PREPROCESS_SEED", **SEED_RANGE),
    Setting(
        "max_rejected_fraction",
        float,
        0.01,
        "fail when more than this fraction of rows is malformed",
        "PREPROCESS_MAX_REJECTED_FRACTION",
        minimum=0,
        maximum=1,
    ),
    Setting(
        "blocksize",
        byte_size,
        16 * 2**20,
        "bytes of CSV per Dask task",
        "PREPROCESS_BLOCKSIZE",
        shown="16MiB",
        expected="a byte size",
        minimum=1,
    ),
    Setting(
        "progress_interval",
        float,
        5.0,
        "seconds between progress lines",
        "PREPROCESS_PROGRESS_INTERVAL",
        minimum=0,
    ),
)

Settings = SCHEMA.dataclass("Settings")
