"""The published ``SGDRegressor`` is built from public fitted attributes only (issue 9 item 3:
the reach into ``_standard_intercept`` is gone). If a scikit-learn upgrade needs more than
``coef_``, ``intercept_`` and ``n_features_in_`` to predict, this fails first."""

from __future__ import annotations

import io

import joblib
import numpy as np
import scipy.sparse
from sklearn.linear_model import SGDRegressor

from regpipe_common.safe_pickle import safe_joblib_loads
from regpipe_train.model import published_sgd


def test_published_sgd_predicts_its_linear_model_and_survives_the_allowlist():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    trained = SGDRegressor(average=True, random_state=0).partial_fit(x, x @ [1, 2, 3, 4])
    coef, intercept = np.array([0.5, -1.0, 2.0, 0.0]), 3.25
    sgd = published_sgd(trained, coef, intercept)
    assert sgd.get_params() == trained.get_params()
    np.testing.assert_array_equal(sgd.predict(x), x @ coef + intercept)
    sparse = scipy.sparse.csr_matrix(x)
    np.testing.assert_allclose(sgd.predict(sparse), x @ coef + intercept, rtol=1e-12)
    buffer = io.BytesIO()
    joblib.dump(sgd, buffer)
    again = safe_joblib_loads(buffer.getvalue())
    np.testing.assert_array_equal(again.predict(x), x @ coef + intercept)
    # Nothing private was copied from the trained estimator.
    assert not [name for name in vars(sgd) if name.startswith("_") and name.endswith("_coef")]
