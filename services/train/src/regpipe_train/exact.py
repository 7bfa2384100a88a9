"""The exact least-squares optimum of the scaled problem, from the normal equations.

Each train partition contributes ``ZᵀZ`` with ``Z = [X_scaled, 1, y - ȳ]``; the sum over
partitions holds ``XᵀX``, ``Xᵀy`` and ``yᵀy`` of the whole split. Standardized features and a
centered target keep the system well conditioned; it is solved by Cholesky, or by an SVD-based
least squares (minimum norm) when the matrix is singular (a constant feature, say).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass(frozen=True)
class Optimum:
    """The solution in the scaled space: ``y ≈ X_scaled @ coef + intercept``."""

    coef: np.ndarray
    intercept: float
    method: str
    condition_number: float
    rows: int


def partial_gram(x: np.ndarray, y_centered: np.ndarray) -> np.ndarray:
    """``ZᵀZ`` for ``Z = [x, 1, y_centered]`` without building ``Z``."""
    p = x.shape[1]
    gram = np.empty((p + 2, p + 2))
    gram[:p, :p] = x.T @ x
    gram[:p, p] = gram[p, :p] = x.sum(axis=0)
    gram[:p, p + 1] = gram[p + 1, :p] = x.T @ y_centered
    gram[p, p] = x.shape[0]
    gram[p, p + 1] = gram[p + 1, p] = y_centered.sum()
    gram[p + 1, p + 1] = y_centered @ y_centered
    return gram


def solve(gram: np.ndarray, target_mean: float) -> Optimum:
    """Solve the normal equations held in a summed :func:`partial_gram`."""
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
