"""A fitted model used from many Python threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info

from fastgmm import GaussianMixture
from conftest import make_mixture


def _blas_threads():
    return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_predict_proba_from_eight_threads_equals_one_thread():
    # D > 4 with full covariance: the kernels call BLAS, under the shared limit.
    X, _ = make_mixture(n_samples=20000, n_features=10, n_components=4, seed=41)
    gmm = GaussianMixture(4, random_state=0).fit(X)
    blas_before = _blas_threads()
    expected = gmm.predict_proba(X)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: gmm.predict_proba(X), range(32)))
    for result in results:
        np.testing.assert_array_equal(result, expected)
    # Every thread entered and left the BLAS limit: the original counts are back.
    assert _blas_threads() == blas_before
