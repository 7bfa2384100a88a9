"""The encoded design's algebra against dense numpy: Gram matrix, predictions, whitening."""

from __future__ import annotations

import numpy as np

from regpipe_train.design import Block, Layout
from regpipe_train.exact import whitening


def _block(rows: int = 5_000) -> tuple[Block, Layout]:
    rng = np.random.default_rng(3)
    layout = Layout(numeric=["a", "b"], categories={"c": ["x", "y", "z"], "d": ["u", "v"]})
    codes = np.column_stack([rng.integers(-1, 3, rows) + 2, rng.integers(0, 2, rows) + 5])
    codes[codes[:, 0] == 1, 0] = -1  # some rows have an unseen level of "c"
    numeric = rng.normal(size=(rows, 2))
    numeric[:, 1] += 0.5 * (codes[:, 0] == 2)  # correlated with a level
    return Block(numeric, codes, rng.normal(size=rows)), layout


def test_gram_predict_and_matrix_agree_with_the_dense_design():
    block, layout = _block()
    dense = block.dense(layout)
    assert dense.shape == (len(block), 7)
    np.testing.assert_array_equal(block.matrix(layout).toarray(), dense)
    z = np.column_stack([dense, np.ones(len(block)), block.y])
    np.testing.assert_allclose(block.gram(layout), z.T @ z, rtol=1e-12, atol=1e-9)
    coef = np.arange(7.0)
    np.testing.assert_allclose(block.predict(coef, 0.5), dense @ coef + 0.5, rtol=1e-12)


def test_whitened_rows_are_decorrelated_and_map_back():
    block, layout = _block()
    w = whitening(block.gram(layout))
    z = w.apply(block, layout)
    covariance = np.cov(z, rowvar=False, bias=True)
    # Identity, except directions with less variance than the floor (scaled less).
    assert np.all(np.abs(covariance - np.diag(np.diag(covariance))) < 1e-9)
    variances = np.diag(covariance)
    assert np.all(variances <= 1 + 1e-9) and np.all(variances > 0)
    np.testing.assert_allclose(variances[variances > 0.999], 1.0, rtol=1e-9)
    assert z.shape[1] == 7 - 1  # "d" sums to one: one direction without variance is dropped
    coef_z = np.random.default_rng(4).normal(size=z.shape[1])
    coef, intercept = w.to_design(coef_z, 0.25)
    np.testing.assert_allclose(block.predict(coef, intercept), z @ coef_z + 0.25, atol=1e-9)


def test_whitened_rows_equal_whitening_apply_written_into_the_buffer():
    block, layout = _block()
    w = whitening(block.gram(layout))
    rows_of = w.rows(layout)
    out = np.full((len(block), rows_of.rank), np.nan)  # a used buffer: nothing of it may remain
    for rows in (block, block.take(slice(17, 1_234)), block.take(slice(0, 0))):
        z = rows_of(rows, out)
        assert z.dtype == np.float64 and z.flags.c_contiguous
        assert z.base is out or z.base is out.base
        np.testing.assert_allclose(z, w.apply(rows, layout), rtol=1e-12, atol=1e-12)
    # Numbers only, and categories only.
    for numeric, categories in ((["a", "b"], {}), ([], layout.categories)):
        only_layout = Layout(numeric=numeric, categories=categories)
        codes = block.codes[:, : len(categories)]
        codes = np.where(codes >= 0, codes - 2 + len(numeric), -1)  # design columns move
        only = Block(block.numeric[:, : len(numeric)], codes, block.y)
        wo = whitening(only.gram(only_layout))
        out = np.full((len(only), wo.transform.shape[1]), np.nan)
        np.testing.assert_allclose(
            wo.rows(only_layout)(only, out), wo.apply(only, only_layout), atol=1e-12
        )
