"""The exact least-squares optimum of the encoded problem, and the whitening SGD trains in.

Each train partition contributes ``ZᵀZ`` with ``Z = [design, 1, y - ȳ]`` (:meth:`Block.gram`);
the sum over partitions holds ``XᵀX``, ``Xᵀy`` and ``yᵀy`` of the whole split. Standardized
features and a centered target keep the system well conditioned; it is solved by Cholesky, or
by an SVD-based least squares (minimum norm) when the matrix is singular (one-hot columns that
sum to one, a constant feature).

The same matrix gives the design's covariance ``C``; with ``C = V Λ Vᵀ``, the rows
``(x - mean) @ V Λ^-1/2`` have identity covariance. SGD on them converges at the same rate in
every direction, however correlated the original columns (directions with no variance, as in
a one-hot block that sums to one, are dropped: no data can tell their coefficient; directions
with very little are only partly rescaled, see :data:`VARIANCE_FLOOR`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .design import Whitening

# Eigenvalues of the covariance below this share of the largest are treated as zero.
RANK_TOLERANCE = 1e-9
# Directions with less variance than this (the design is standardized; a one-hot column of a
# level with share s has variance s(1 - s)) are scaled as if they had this variance. Full
# whitening would give a row of a rare level a squared norm near 1/s, and SGD at the default
# step would overshoot on it and diverge; floored, no direction adds more than 1/floor. Such
# directions converge more slowly, but they carry little of the variance.
VARIANCE_FLOOR = 1e-2


@dataclass(frozen=True)
class Optimum:
    """The solution in the scaled space: ``y ≈ X_scaled @ coef + intercept``."""

    coef: np.ndarray
    intercept: float
    method: str
    condition_number: float
    rows: int


def solve(gram: np.ndarray, target_mean: float) -> Optimum:
    """Solve the normal equations held in the partitions' summed :meth:`Block.gram`."""
    p = gram.shape[0] - 2
    a = gram[: p + 1, : p + 1]
    b = gram[: p + 1, p + 1]
    condition = float(np.linalg.cond(a))
    try:
        if not np.isfinite(condition) or condition > 1e12:
            raise np.linalg.LinAlgError("ill-conditioned")
        beta = scipy.linalg.cho_solve(scipy.linalg.cho_factor(a), b)
        method = "cholesky"
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        beta = scipy.linalg.lstsq(a, b, cond=1e-12)[0]
        method = "lstsq"
    return Optimum(
        coef=beta[:p],
        intercept=float(beta[p] + target_mean),
        method=method,
        condition_number=condition,
        rows=round(float(gram[p, p])),
    )


def whitening(gram: np.ndarray) -> Whitening:
    """The whitening of the design whose :meth:`Block.gram` sum is ``gram``."""
    p = gram.shape[0] - 2
    mean = gram[:p, p] / gram[p, p]
    covariance = gram[:p, :p] / gram[p, p] - np.outer(mean, mean)
    values, vectors = np.linalg.eigh(covariance)
    keep = values > RANK_TOLERANCE * max(float(values.max()), np.finfo(np.float64).tiny)
    scale = np.sqrt(np.maximum(values[keep], VARIANCE_FLOOR))
    return Whitening(shift=mean, transform=vectors[:, keep] / scale)
