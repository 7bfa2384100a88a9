"""Deterministic train/test assignment from a stable 64-bit hash of each row.

The hash covers the spec's key columns (all columns when there is no key) and the seed, and
depends only on the row's values: the same row lands in the same split on every run, whatever
the number of workers or blocks, and appending data never moves an existing row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_NULL = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fast, well-distributed 64-bit mixer."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def column_hash(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable uint64 hash per value; nulls hash to a constant. Numbers hash by float64 value."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        encoded = pc.dictionary_encode(column)
        dictionary = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        # pandas' hash_array is SipHash with a fixed key: stable across runs and processes.
        dict_hash = pd.util.hash_array(dictionary) if len(dictionary) else np.zeros(0, np.uint64)
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        hashed = dict_hash[indices] if len(dict_hash) else np.zeros(len(column), np.uint64)
    else:
        values = pc.cast(column, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        values = values + 0.0  # -0.0 -> +0.0
        hashed = _mix(values.view(np.uint64))
    return np.where(valid, hashed, _NULL)


def row_hash(table: pa.Table, columns: list[str], seed: int) -> np.ndarray:
    """Combine the column hashes of ``columns`` with the seed into one uint64 per row."""
    h = np.full(table.num_rows, _mix(np.array([seed], dtype=np.uint64))[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in columns:
            h = _mix(h * _PRIME + column_hash(table.column(name)))
    return h


def is_test(hashes: np.ndarray, test_fraction: float) -> np.ndarray:
    """Map each hash to [0, 1) and put it in the test split when below ``test_fraction``."""
    unit = (hashes >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return unit < test_fraction


def content_sum(table: pa.Table, columns: list[str], hashes: np.ndarray) -> int:
    """An order-independent digest of rows: the wrapping sum of per-row hashes of ``columns``."""
    h = hashes
    with np.errstate(over="ignore"):
        for name in columns:
            h = _mix(h * _PRIME + column_hash(table.column(name)))
        return int(h.sum(dtype=np.uint64)) if h.size else 0
