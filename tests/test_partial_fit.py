"""partial_fit: online (stepwise) EM over a stream of batches."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _stream(n_batches, batch_size, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 4.0]])
    scales = np.array([1.0, 0.7, 1.5])
    for _ in range(n_batches):
        labels = rng.choice(3, size=batch_size, p=[0.5, 0.3, 0.2])
        yield (centers[labels] + scales[labels, None] * rng.normal(size=(batch_size, 3))).astype(dtype)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stream_of_100_batches_reaches_the_batch_fit(covariance_type):
    batches = list(_stream(100, 200, seed=1))
    X = np.concatenate(batches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
        online.partial_fit(batches[0])
        first_n_iter = online.n_iter_
        for batch in batches[1:]:
            online.partial_fit(batch)
        full = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    online_ll, full_ll = online.score(X), full.score(X)
    # The issue asks for 1%; the stream gets within 0.05% here (0.2% checked),
    # where the first batch alone is about 1% off: the updates do the work.
    assert abs(online_ll - full_ll) <= 0.002 * abs(full_ll), (online_ll, full_ll)
    first_only = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    first_only.fit(batches[0])
    assert online_ll - first_only.score(X) > 2 * (full_ll - online_ll)
    assert online.n_iter_ == first_n_iter + 99           # one per update
    assert len(online.lower_bounds_) == first_n_iter + 99
    np.testing.assert_allclose(online.weights_.sum(), 1.0, rtol=1e-12)


def test_first_call_fits_the_batch_like_fit():
    batch = next(_stream(1, 500, seed=2))
    a = GaussianMixture(3, random_state=0).partial_fit(batch)
    b = GaussianMixture(3, random_state=0).fit(batch)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bound_ == b.lower_bound_


def test_batches_of_different_sizes_and_dtypes():
    gmm = GaussianMixture(3, covariance_type="diag", random_state=0)
    sizes = [300, 1, 57, 1000, 2]
    for i, (size, dtype) in enumerate(zip(sizes, [np.float32, np.float64] * 3)):
        batch = next(_stream(1, size, seed=10 + i, dtype=dtype))
        gmm.partial_fit(batch)
        assert gmm.means_.dtype == np.float32          # the first batch's dtype
        assert np.all(np.isfinite(gmm.covariances_)) and np.all(gmm.covariances_ > 0)
    assert gmm.n_iter_ >= len(sizes) - 1


def test_a_batch_with_other_features_is_refused_and_changes_nothing():
    gmm = GaussianMixture(3, random_state=0).partial_fit(next(_stream(1, 300, seed=3)))
    before = gmm.means_.copy()
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        gmm.partial_fit(np.ones((10, 2)))
    np.testing.assert_array_equal(gmm.means_, before)


def test_weighted_batches():
    batch = next(_stream(1, 400, seed=4))
    gmm = GaussianMixture(3, random_state=0).partial_fit(batch)
    w = np.ones(batch.shape[0])
    w[: batch.shape[0] // 2] = 0.0
    gmm.partial_fit(batch, sample_weight=w)
    assert np.all(np.isfinite(gmm.means_))
    with pytest.raises(ValueError, match="Negative values"):
        gmm.partial_fit(batch, sample_weight=-w)


@pytest.mark.parametrize("estimator", ["gmm", "bayesian"])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e300), (np.float64, 1e160),
                                          (np.float32, 1e20)])
def test_a_batch_whose_squares_overflow_is_refused_and_changes_nothing(
        estimator, covariance_type, dtype, scale):
    # an outside audit: such rows dropped out of the update unnoticed, and
    # lower_bounds_ recorded -inf (fit on the same rows raises)
    from fastgmm import BayesianGaussianMixture

    X = np.random.default_rng(0).standard_normal((300, 3)).astype(dtype)
    cls = GaussianMixture if estimator == "gmm" else BayesianGaussianMixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = cls(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    before = {name: np.copy(getattr(model, name)) for name in ("weights_", "means_",
                                                                "precisions_cholesky_")}
    n_bounds, n_iter = len(model.lower_bounds_), model.n_iter_
    batch = np.vstack([X[:20], X[:1] * dtype(scale)])
    with pytest.raises(ValueError, match=f"overflow {np.dtype(dtype).name}; the model is "
                                         "unchanged") as info:
        model.partial_fit(batch)
    assert "log-likelihood" not in str(info.value)    # it printed a meaningless 677.76
    for name, value in before.items():
        assert np.array_equal(getattr(model, name), value), name
    assert len(model.lower_bounds_) == n_bounds and model.n_iter_ == n_iter
    model.partial_fit(X[:20])       # and the stream goes on
    assert np.isfinite(model.lower_bounds_[-1])


@pytest.mark.parametrize("integer", [np.int8, np.uint8, np.int16, np.uint16])
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_small_numpy_integer_n_components_fits_as_the_int(integer, init_params):
    # scikit-learn fits these; RESP_BLOCK_ELEMENTS // np.int8(3) overflowed int8
    from fastgmm import BayesianGaussianMixture

    X = np.random.default_rng(0).standard_normal((300, 3))
    for cls in (GaussianMixture, BayesianGaussianMixture):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            small = cls(n_components=integer(3), init_params=init_params, random_state=0).fit(X)
            plain = cls(n_components=3, init_params=init_params, random_state=0).fit(X)
        assert np.array_equal(small.means_, plain.means_)
        assert np.array_equal(small.predict(X), plain.predict(X))
        small.partial_fit(X[:50])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weighted_update_depends_on_the_weights_ratios_only(covariance_type):
    # an outside audit: the update took the weights raw, so weights of 1e-100
    # let the M-step's 10 eps floor on N_k pull a component away (tied with
    # 1e-200 raised), and the bound was sum w log p / rows
    first, batch = list(_stream(2, 400, seed=8))
    w = np.random.default_rng(9).uniform(1.0, 2.0, size=batch.shape[0])
    models = []
    for scale in (1.0, 1e-12, 1e-100, 1e-200, 1e200):
        gmm = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
        gmm.partial_fit(first)
        gmm.partial_fit(batch, sample_weight=w * scale)
        models.append(gmm)
    for gmm in models[1:]:
        for name in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(gmm, name), getattr(models[0], name),
                                       rtol=1e-9, atol=1e-12, err_msg=name)
    # the bound of the update: the batch's weighted mean log-likelihood under
    # the parameters the update started from
    start = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    start.partial_fit(first)
    np.testing.assert_allclose(models[0].lower_bounds_[-1],
                               start.score(batch, sample_weight=w), rtol=1e-9)
    # equal weights of any size: the unweighted update, bitwise
    plain = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    plain.partial_fit(first).partial_fit(batch)
    tiny = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    tiny.partial_fit(first).partial_fit(batch, sample_weight=np.full(batch.shape[0], 1e-100))
    assert tiny.means_.tobytes() == plain.means_.tobytes()


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
def test_fit_restarts_the_partial_fit_stream(estimator):
    # an outside audit: fit kept GaussianMixture's update count, so the next
    # partial_fit took the step of update 31 instead of the first one's
    import fastgmm

    batches = list(_stream(31, 100, seed=10))
    X = np.concatenate(batches[:30])
    cls = getattr(fastgmm, estimator)
    streamed = cls(n_components=3, random_state=0)
    for batch in batches[:30]:
        streamed.partial_fit(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed.fit(X)
        fresh = cls(n_components=3, random_state=0).fit(X)
    assert streamed.means_.tobytes() == fresh.means_.tobytes()
    streamed.partial_fit(batches[30])
    fresh.partial_fit(batches[30])
    for name in ("weights_", "means_", "covariances_"):
        assert getattr(streamed, name).tobytes() == getattr(fresh, name).tobytes(), name
