"""The encoded design the model is linear in: standardized numeric features, then one column per
kept level of each category feature (one-hot), in the published ``ColumnTransformer``'s order.

A partition's rows are held compactly as a :class:`Block` (standardized numbers and, per
category feature, the design column of each row's level, -1 for an unseen or infrequent level:
all zeros, the intercept's effect). From it: the dense or sparse design matrix, a linear
model's predictions, the normal-equations matrix, and the whitened rows SGD is fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from regpipe_train.adapters.scipy_sparse import csr_matmul_add

# Designs wider than this get no dense Gram matrix (a 4,000² float64 matrix is 128 MB per
# partition sum; its eigen-decomposition takes seconds): no exact optimum and no whitening,
# SGD then fits the sparse one-hot design directly.
MAX_GRAM_COLUMNS = 4_000


@dataclass(frozen=True)
class Layout:
    """Which features the design holds, in column order."""

    numeric: list[str]
    categories: dict[str, list[str]]  # category feature -> its kept levels, in column order

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(v) for v in self.categories.values())

    @property
    def offsets(self) -> list[int]:
        """The first design column of each category feature."""
        starts, start = [], len(self.numeric)
        for levels in self.categories.values():
            starts.append(start)
            start += len(levels)
        return starts


@dataclass(frozen=True)
class Block:
    """Rows of the design: standardized numbers, one-hot columns as indices, centered target."""

    numeric: np.ndarray  # (n, numeric features), standardized
    codes: np.ndarray  # (n, category features) design column of the level, -1: none
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray | slice) -> Block:
        return Block(self.numeric[rows], self.codes[rows], self.y[rows])

    @property
    def nbytes(self) -> int:
        return self.numeric.nbytes + self.codes.nbytes + self.y.nbytes

    @staticmethod
    def concat(blocks: list[Block]) -> Block:
        return Block(
            np.concatenate([b.numeric for b in blocks]),
            np.concatenate([b.codes for b in blocks]),
            np.concatenate([b.y for b in blocks]),
        )

    def one_hot(self, layout: Layout) -> scipy.sparse.csr_matrix:
        """The one-hot columns alone, ``(n, layout.width - numeric)``, sparse."""
        p = len(layout.numeric)
        hit = self.codes >= 0
        rows = np.nonzero(hit)[0]
        cols = self.codes[hit] - p
        return scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(self), layout.width - p)
        )

    def matrix(self, layout: Layout) -> np.ndarray | scipy.sparse.csr_matrix:
        """The design matrix: dense when numeric only, sparse CSR with category features."""
        if not layout.categories:
            return self.numeric
        numbers = scipy.sparse.csr_matrix(self.numeric)
        return scipy.sparse.hstack([numbers, self.one_hot(layout)], format="csr")

    def dense(self, layout: Layout) -> np.ndarray:
        """The design matrix, dense (what the published ``ColumnTransformer`` outputs)."""
        out = np.zeros((len(self), layout.width))
        out[:, : self.numeric.shape[1]] = self.numeric
        for j in range(self.codes.shape[1]):
            hit = np.flatnonzero(self.codes[:, j] >= 0)
            out[hit, self.codes[hit, j]] = 1.0
        return out

    def predict(self, coef: np.ndarray, intercept: float) -> np.ndarray:
        """``design @ coef + intercept`` without building the design."""
        out = self.numeric @ coef[: self.numeric.shape[1]] + intercept
        for j in range(self.codes.shape[1]):
            codes = self.codes[:, j]
            out += np.where(codes >= 0, coef[codes], 0.0)
        return out

    def gram(self, layout: Layout) -> np.ndarray:
        """``ZᵀZ`` for ``Z = [design, 1, y]``, the one-hot blocks from sparse products."""
        p = self.numeric.shape[1]
        dense = np.column_stack([self.numeric, np.ones(len(self)), self.y])
        onehot = self.one_hot(layout)
        order = np.r_[np.arange(p), layout.width + np.arange(2)]  # where dense columns go
        gram = np.zeros((layout.width + 2, layout.width + 2))
        gram[np.ix_(order, order)] = dense.T @ dense
        if onehot.shape[1]:
            cross = np.asarray(onehot.T @ dense)
            gram[p : layout.width, order] = cross
            gram[order, p : layout.width] = cross.T
            gram[p : layout.width, p : layout.width] = (onehot.T @ onehot).toarray()
        return gram


@dataclass(frozen=True)
class Whitening:
    """``z = (design - shift) @ transform`` has identity covariance on the train rows."""

    shift: np.ndarray  # (width,) the design's column means
    transform: np.ndarray  # (width, rank)

    def apply(self, block: Block, layout: Layout) -> np.ndarray:
        """The whitened rows, ``(n, rank)`` (a sparse product: one-hot rows pick rows of
        ``transform``)."""
        z = np.asarray(block.matrix(layout) @ self.transform)
        z -= self.shift @ self.transform
        return z

    def rows(self, layout: Layout) -> WhitenedRows:
        """:meth:`apply` for many batches of one layout, faster (see :class:`WhitenedRows`)."""
        return WhitenedRows.of(self, layout)

    def to_design(self, coef: np.ndarray, intercept: float) -> tuple[np.ndarray, float]:
        """A linear model on ``z`` as the same model on the design."""
        design_coef = self.transform @ coef
        return design_coef, float(intercept - self.shift @ design_coef)


@dataclass(frozen=True)
class WhitenedRows:
    """:meth:`Whitening.apply` for the SGD loop, written into an array the caller reuses.

    Each whitened row is ``numbers @ transform[:p]`` (a dense product), plus one row of
    ``transform`` per category feature (the level's one-hot column) and the row
    ``-(shift @ transform)``: a sparse product with exactly ``k + 1`` entries a row against
    ``table``, the transform with a zero row (where a -1 code points) and that row appended.
    scipy accumulates each output row in turn, so the ``(n, rank)`` output is written once
    (gathering rows of ``transform`` with ``np.take`` one category at a time streamed it
    through memory once per category and was 5-10x slower), and into ``out``: a fresh
    result per batch cost page faults that slowed SGD (:mod:`.adapters.scipy_sparse`).
    """

    numeric: int  # p
    width: int  # the design's columns
    table: np.ndarray  # (width + 2, rank)

    @staticmethod
    def of(whitening: Whitening, layout: Layout) -> WhitenedRows:
        transform = whitening.transform
        base = -(whitening.shift @ transform)
        table = np.vstack([transform, np.zeros((1, transform.shape[1])), base[None, :]])
        return WhitenedRows(len(layout.numeric), layout.width, np.ascontiguousarray(table))

    @property
    def rank(self) -> int:
        return self.table.shape[1]

    def __call__(self, block: Block, out: np.ndarray) -> np.ndarray:
        """The whitened rows of ``block``, written into the first ``len(block)`` rows of
        ``out`` (C-contiguous float64, ``(>= n, rank)``) and returned as that view."""
        p, n, k = self.numeric, len(block), block.codes.shape[1]
        z = out[:n]
        np.matmul(block.numeric, self.table[:p], out=z)
        m = k + 1  # sparse entries a row
        itype = np.int32 if n * m < 2**31 else np.int64
        index = np.empty((n, m), dtype=itype)
        index[:, :k] = np.where(block.codes >= 0, block.codes, self.width)
        index[:, k] = self.width + 1
        pointers = np.arange(0, n * m + 1, m, dtype=itype)
        csr_matmul_add(pointers, index.ravel(), np.ones(n * m), self.table, z)
        return z
