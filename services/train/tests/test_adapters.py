"""The private scipy kernel behind train's whitening (``regpipe_train.adapters``): fails loudly
when a scipy upgrade renames or changes it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from regpipe_train.adapters.scipy_sparse import csr_matmul_add


@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_csr_matmul_add_accumulates_the_public_product_into_out(itype):
    rng = np.random.default_rng(0)
    a = scipy.sparse.random(300, 40, density=0.1, format="csr", random_state=1)
    dense = rng.normal(size=(40, 7))
    out = rng.normal(size=(300, 7))
    expected = out + a @ dense
    csr_matmul_add(a.indptr.astype(itype), a.indices.astype(itype), a.data, dense, out)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_csr_matmul_add_refuses_what_it_would_silently_get_wrong():
    a = scipy.sparse.identity(4, format="csr")
    with pytest.raises(ValueError, match="C-contiguous"):
        csr_matmul_add(a.indptr, a.indices, a.data, np.ones((4, 3)), np.ones((3, 4)).T)
    with pytest.raises(ValueError, match="shapes"):
        csr_matmul_add(a.indptr, a.indices, a.data, np.ones((4, 3)), np.ones((5, 3)))
