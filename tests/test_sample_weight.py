"""sample_weight: weighted EM, weighted initialisation, clear errors."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture
from conftest import make_mixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _fixed_init(X, K, covariance_type, seed=0):
    """Initial parameters given by the user: no random draws at all."""
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    precisions = {
        "full": np.stack([np.eye(D)] * K),
        "tied": np.eye(D),
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
    }[covariance_type]
    return dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=X[rng.choice(X.shape[0], K, replace=False)],
        precisions_init=precisions,
    )


def _fit(X, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(**params).fit(X, sample_weight=sample_weight)


def _assert_same_fit(a, b, rtol=1e-9):
    """Same trajectory; parameters to 1e-7 (float64) or 1e-4 (float32)."""
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    param_rtol = 1e-7 if a.means_.dtype == np.float64 else 1e-4
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=param_rtol,
                                   atol=1e-9, err_msg=name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_integer_weights_equal_repeated_rows(covariance_type, dtype):
    X, _ = make_mixture(n_samples=700, n_features=3, n_components=3, seed=11, dtype=dtype)
    counts = np.random.default_rng(1).integers(0, 4, size=X.shape[0])
    params = dict(n_components=3, covariance_type=covariance_type, max_iter=20, tol=0,
                  **_fixed_init(X, 3, covariance_type))
    weighted = _fit(X, counts.astype(float), **params)
    repeated = _fit(np.repeat(X, counts, axis=0), **params)
    _assert_same_fit(weighted, repeated, rtol=1e-9 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zero_weights_equal_dropping_rows(covariance_type):
    X, _ = make_mixture(n_samples=600, n_features=2, n_components=3, seed=12)
    keep = np.random.default_rng(2).random(X.shape[0]) < 0.6
    params = dict(n_components=3, covariance_type=covariance_type, max_iter=20, tol=0,
                  **_fixed_init(X[keep], 3, covariance_type))
    weighted = _fit(X, keep.astype(float), **params)
    dropped = _fit(X[keep], **params)
    _assert_same_fit(weighted, dropped)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_uniform_weights_change_nothing(covariance_type, init_params):
    X, _ = make_mixture(n_samples=500, n_features=3, n_components=3, seed=13)
    params = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
                  random_state=0, tol=1e-6)
    plain = _fit(X, **params)
    for value in (1.0, 2.0, 0.5):
        weighted = _fit(X, np.full(X.shape[0], value), **params)
        assert weighted.n_iter_ == plain.n_iter_
        _assert_same_fit(weighted, plain)


def test_weights_steer_the_fit():
    # Two blobs; weighting one of them 9:1 moves the mixture weights there.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 8])
    w = np.where(np.arange(1000) < 500, 9.0, 1.0)
    gmm = _fit(X, w, n_components=2, random_state=0)
    heavy = np.argmin(np.linalg.norm(gmm.means_, axis=1))
    np.testing.assert_allclose(gmm.weights_[heavy], 0.9, atol=1e-3)


def test_weighted_random_from_data_never_picks_zero_weight_rows():
    X, _ = make_mixture(n_samples=400, n_features=2, n_components=4, seed=14)
    w = np.zeros(X.shape[0])
    w[:8] = np.arange(1, 9)
    for seed in range(10):
        gmm = _fit(X, w, n_components=4, init_params="random_from_data", random_state=seed,
                   max_iter=0)
        # Each initial mean is its chosen row (to 10 eps): the nearest row.
        picked = [np.argmin(np.linalg.norm(X - m, axis=1)) for m in gmm.means_]
        assert len(set(picked)) == 4 and max(picked) < 8


def test_weighted_score_bic_aic():
    X, _ = make_mixture(n_samples=400, n_features=2, n_components=2, seed=15)
    w = np.random.default_rng(3).integers(1, 4, size=X.shape[0]).astype(float)
    gmm = _fit(X, n_components=2, random_state=0)
    Xr = np.repeat(X, w.astype(int), axis=0)
    np.testing.assert_allclose(gmm.score(X, sample_weight=w), gmm.score(Xr), rtol=1e-12)
    np.testing.assert_allclose(gmm.bic(X, sample_weight=w), gmm.bic(Xr), rtol=1e-12)
    np.testing.assert_allclose(gmm.aic(X, sample_weight=w), gmm.aic(Xr), rtol=1e-12)
    # Fitting with weights reaches the weighted mean log-likelihood it reports.
    fitted = _fit(X, w, n_components=2, random_state=0, tol=1e-10, max_iter=500)
    np.testing.assert_allclose(fitted.lower_bound_, fitted.score(X, sample_weight=w),
                               rtol=1e-8)


@pytest.mark.parametrize(
    "weights, message",
    [
        (lambda n: -np.ones(n), "Negative values in data passed to `sample_weight`"),
        (lambda n: np.r_[np.nan, np.ones(n - 1)], "Input sample_weight contains NaN"),
        (lambda n: np.r_[np.inf, np.ones(n - 1)], "Input sample_weight contains infinity"),
        (lambda n: np.zeros(n), "at least one non-zero"),
        (lambda n: np.r_[1.0, np.zeros(n - 1)], "fewer than n_components"),
        (lambda n: np.ones(n + 1), r"sample_weight.shape == \(\d+,\), expected \(\d+,\)"),
        (lambda n: np.ones((n, 2)), "Sample weights must be 1D array or scalar"),
    ],
)
def test_bad_weights_raise_clear_errors_and_leave_no_fit(weights, message):
    X, _ = make_mixture(n_samples=50, n_features=2, n_components=2, seed=16)
    gmm = GaussianMixture(2, random_state=0)
    with pytest.raises(ValueError, match=message):
        gmm.fit(X, sample_weight=weights(X.shape[0]))
    assert not [k for k in vars(gmm) if k.endswith("_")]


# ------------------------------------------- a common scale of the weights

SCALES = [1e-20, 1e-14, 1e-10, 1e-3, 1.0, 1e6, 1e20]


def _bitwise_same_fit(a, b):
    assert a.n_iter_ == b.n_iter_
    assert a.lower_bounds_ == b.lower_bounds_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_equal_weights_of_any_scale_give_the_unweighted_fit(covariance_type, dtype):
    # The review: np.full(n, 1e-20) moved the means by 5.9 (the M-step's
    # absolute 10 eps on N_k dominated N_k itself); 1e-10 did in float32.
    X, _ = make_mixture(n_samples=600, n_features=3, n_components=3, seed=21, dtype=dtype)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=1e-6)
    plain = _fit(X, **params)
    for scale in SCALES:
        _bitwise_same_fit(_fit(X, np.full(X.shape[0], scale), **params), plain)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_is_invariant_to_a_common_scale_of_unequal_weights(covariance_type, dtype,
                                                               init_params):
    X, _ = make_mixture(n_samples=600, n_features=3, n_components=3, seed=22, dtype=dtype)
    w = np.random.default_rng(4).uniform(0.2, 3.0, size=X.shape[0])
    params = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
                  random_state=0, tol=1e-6)
    reference = _fit(X, w, **params)
    for scale in SCALES:
        scaled = _fit(X, w * scale, **params)
        assert scaled.n_iter_ == reference.n_iter_, scale
        _assert_same_fit(scaled, reference, rtol=1e-9 if dtype == np.float64 else 1e-5)


def test_weighted_score_bic_aic_keep_the_scale_of_the_weights():
    X, _ = make_mixture(n_samples=400, n_features=2, n_components=2, seed=23)
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=X.shape[0])
    gmm = _fit(X, w * 1e-20, n_components=2, random_state=0)
    log_prob = gmm.score_samples(X)
    n_parameters = gmm._n_parameters()
    for scale in (1e-20, 1.0, 1e6):
        ws = w * scale
        np.testing.assert_allclose(gmm.score(X, sample_weight=ws),
                                   np.dot(ws, log_prob) / ws.sum(), rtol=1e-12)
        np.testing.assert_allclose(
            gmm.bic(X, sample_weight=ws),
            -2 * np.dot(ws, log_prob) + n_parameters * np.log(ws.sum()), rtol=1e-12)
        np.testing.assert_allclose(gmm.aic(X, sample_weight=ws),
                                   -2 * np.dot(ws, log_prob) + 2 * n_parameters, rtol=1e-12)


def test_weighted_score_with_weights_near_the_float64_limit():
    # an outside audit: weights of 1e308 made score NaN (their sum overflowed)
    X, _ = make_mixture(n_samples=400, n_features=2, n_components=2, seed=23)
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=X.shape[0])
    gmm = _fit(X, w, n_components=2, random_state=0)
    reference = gmm.score(X, sample_weight=w)
    for scale in (1e305, 1e308 / 2.0):
        np.testing.assert_allclose(gmm.score(X, sample_weight=w * scale), reference,
                                   rtol=1e-12)
    np.testing.assert_allclose(gmm.score(X, sample_weight=np.full(400, 1e308)),
                               gmm.score(X), rtol=1e-12)


def test_weighted_score_with_subnormal_weights():
    # an outside audit: weights of 5e-324 averaged to -2.0 where the one
    # weighted row scores -2.4366 (their sum kept a few bits)
    X, _ = make_mixture(n_samples=400, n_features=2, n_components=2, seed=23)
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=X.shape[0])
    gmm = _fit(X, w, n_components=2, random_state=0)
    log_prob = gmm.score_samples(X)
    for scale in (1e-300, 1e-310, 1e-320):
        tiny = w * scale           # subnormal below 2.2e-308: fewer bits than w
        exact = tiny * 2.0**600 * 2.0**474    # the same ratios, exactly, in range
        np.testing.assert_allclose(gmm.score(X, sample_weight=tiny),
                                   np.average(log_prob, weights=exact), rtol=1e-12)
    one = np.zeros(400)
    one[7] = 5e-324
    np.testing.assert_allclose(gmm.score(X, sample_weight=one), gmm.score(X[7:8]),
                               rtol=1e-12)
    np.testing.assert_allclose(gmm.score(X, sample_weight=np.full(400, 5e-324)),
                               gmm.score(X), rtol=1e-12)


def test_fit_leaves_the_callers_weights_alone():
    X, _ = make_mixture(n_samples=300, n_features=2, n_components=2, seed=24)
    w = np.random.default_rng(6).uniform(0.5, 2.0, size=X.shape[0]) * 1e-20
    before = w.copy()
    _fit(X, w, n_components=2, random_state=0)
    np.testing.assert_array_equal(w, before)


@pytest.mark.parametrize("sampled", [False, True], ids=["fetched", "sampled"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_dask_fit_is_invariant_to_a_common_scale_of_the_weights(covariance_type, sampled,
                                                                 monkeypatch):
    dask = pytest.importorskip("dask")
    import dask.array as da

    from fastgmm import _dask

    if sampled:   # the data counts as large: the weights stay on the blocks
        monkeypatch.setattr(_dask, "SAMPLE_ROWS", 200)

    X, _ = make_mixture(n_samples=3000, n_features=3, n_components=3, seed=25)
    w = np.random.default_rng(7).uniform(0.2, 3.0, size=X.shape[0])
    params = dict(n_components=3, covariance_type=covariance_type, tol=1e-6,
                  **_fixed_init(X, 3, covariance_type))
    with dask.config.set(scheduler="synchronous"):
        dX = da.from_array(X, chunks=(700, 3))
        reference = _fit(dX, w, **params)
        plain = _fit(dX, **params)
        for scale in (1e-20, 1e6, 1e20):
            _assert_same_fit(_fit(dX, w * scale, **params), reference)
            _assert_same_fit(_fit(dX, np.full(X.shape[0], scale), **params), plain)
