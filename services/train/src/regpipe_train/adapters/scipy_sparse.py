"""scipy's sparse-times-dense kernel, accumulating into an array the caller owns.

``csr @ dense`` allocates its result with ``np.zeros`` on every call. For the whitened SGD
batches (20,000 × 210 float64, 34 MB, above glibc's largest mmap threshold) that is a fresh
mapping whose pages the kernel faults in and zeroes on first write, every batch (about 290
minor page faults a batch; none with two reused arrays): the training loop ran at 1.07-1.13M
rows/s with fresh arrays against 1.36-1.58M with reused ones (categorical benchmark data).
scipy has no public ``out=``; its kernel ``_sparsetools.csr_matvecs`` (``Y += A @ X``, stable
since scipy 0.x) has. Test: ``services/train/tests/test_adapters.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import _sparsetools


def csr_matmul_add(
    pointers: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    dense: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out += A @ dense`` for the CSR matrix ``A = (data, indices, pointers)`` of
    ``len(out)`` rows and ``len(dense)`` columns. ``dense`` and ``out`` C-contiguous float64;
    ``indices`` and ``pointers`` one integer dtype; ``data`` float64."""
    rows, columns = out.shape
    if len(pointers) != rows + 1 or dense.shape[1] != columns:
        raise ValueError(
            f"shapes do not match: {len(pointers) - 1} rows, {dense.shape} @ {out.shape}"
        )
    if not (dense.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("dense and out must be C-contiguous")
    _sparsetools.csr_matvecs(
        rows, len(dense), columns, pointers, indices, data, dense.ravel(), out.ravel()
    )
