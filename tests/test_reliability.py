"""Reliability: degenerate components, interruption, the edge cases of
issue 7 one by one (each beside what scikit-learn does on the same data),
and the memory warning of large fits.

Elsewhere: random shapes and settings in test_properties.py; bitwise
identity across thread counts in test_kernels.py; a fitted model used from
8 threads in test_concurrency.py; nothing half-fitted after a failure in
test_api.py.
"""

import gc
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn.mixture
from sklearn.exceptions import ConvergenceWarning

import fastgmm
from fastgmm import ComponentRecoveryWarning, GaussianMixture, LargeMemoryWarning
from fastgmm import _reliability as R
from fastgmm._gaussian_mixture import _estimate, _InMemoryData, _Workspace

SkGM = sklearn.mixture.GaussianMixture
COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = [np.float64, np.float32]
COLLAPSE_MSG = "ill-defined empirical covariance"
FASTGMM_PARENT = str(Path(fastgmm.__file__).resolve().parents[1])


def dtype_id(dtype):
    return np.dtype(dtype).name


def assert_sane(gmm, dtype):
    """Finite parameters in the data's dtype, weights summing to one,
    positive-definite covariances, a finite lower bound."""
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        value = getattr(gmm, name)
        assert value.dtype == dtype, name
        assert np.all(np.isfinite(value)), name
    assert np.all(gmm.weights_ >= 0)
    np.testing.assert_allclose(gmm.weights_.sum(), 1.0, rtol=1e-6)
    cov = np.asarray(gmm.covariances_, dtype=np.float64)
    if gmm.covariance_type in ("full", "tied"):
        stack = cov if gmm.covariance_type == "full" else cov[None]
        for c in stack:
            assert np.linalg.eigvalsh((c + c.T) / 2).min() > 0
    else:
        assert np.all(cov > 0)
    assert np.isfinite(gmm.lower_bound_)


def unit_precisions(covariance_type, n_components, n_features):
    return {
        "full": np.broadcast_to(np.eye(n_features), (n_components, n_features, n_features)).copy(),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones(n_components),
    }[covariance_type]


def two_blobs(seed=0, n=200):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + [6.0, 0.0]])


# ----------------------------------------------------- degenerate components


def collapsing_problem(covariance_type, dtype):
    """Two unit blobs and six identical rows at the origin; component 2
    starts on the identical rows and, with reg_covar=0, shrinks onto them
    until its covariance is exactly zero (at iteration 3, or 4 for
    'spherical'). The origin keeps the mean exact in float32 too
    (scikit-learn's 10 eps added to N_k would move it off a non-zero point
    and leave a tiny positive variance)."""
    X = np.vstack([two_blobs() - [3.0, 5.0], np.zeros((6, 2))]).astype(dtype)
    params = dict(
        n_components=3, covariance_type=covariance_type, reg_covar=0.0,
        means_init=np.array([[-3.0, -5.0], [3.0, -5.0], [0.0, 0.0]]),
        weights_init=np.full(3, 1 / 3),
        precisions_init=unit_precisions(covariance_type, 3, 2),
    )
    return X, params


def empty_problem(covariance_type, dtype):
    """Component 2 starts so far from every row that its responsibilities
    are exactly zero: it is empty after the first E-step."""
    X = (two_blobs(seed=1) + [20.0, 20.0]).astype(dtype)
    params = dict(
        n_components=3, covariance_type=covariance_type,
        means_init=np.array([[20.0, 20.0], [26.0, 20.0], [-500.0, -500.0]]),
        weights_init=np.full(3, 1 / 3),
        precisions_init=unit_precisions(covariance_type, 3, 2),
    )
    return X, params


COLLAPSING_TYPES = ["full", "diag", "spherical"]  # 'tied' shares one covariance


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COLLAPSING_TYPES)
def test_collapse_after_the_first_iteration_raises_by_default_like_sklearn(covariance_type,
                                                                           dtype):
    X, params = collapsing_problem(covariance_type, dtype)
    iterations = []
    gmm = GaussianMixture(**params)
    with pytest.raises(ValueError, match=COLLAPSE_MSG) as error:
        gmm.fit(X, callback=lambda info: iterations.append(info.n_iter))
    assert "increase reg_covar" in str(error.value)
    assert len(iterations) >= 2, "the collapse must come after the first iterations"
    assert not [k for k in vars(gmm) if k.endswith("_")], "a failed fit left attributes"
    with pytest.raises(ValueError, match=COLLAPSE_MSG):
        SkGM(**params).fit(X)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COLLAPSING_TYPES)
def test_collapse_is_reseeded_with_a_warning_naming_component_and_iteration(covariance_type,
                                                                            dtype):
    X, params = collapsing_problem(covariance_type, dtype)
    iterations = []
    with pytest.raises(ValueError):
        GaussianMixture(**params).fit(X, callback=lambda info: iterations.append(info.n_iter))
    collapse_iteration = len(iterations) + 1

    gmm = GaussianMixture(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gmm.fit(X, on_degenerate="reseed")
    recovery = [w for w in caught if issubclass(w.category, ComponentRecoveryWarning)]
    assert recovery, "no ComponentRecoveryWarning"
    message = str(recovery[0].message)
    assert f"Component 2 degenerated at iteration {collapse_iteration} " in message
    assert "not positive definite" in message and "reg_covar" in message
    assert issubclass(ComponentRecoveryWarning, UserWarning)
    assert gmm.converged_
    assert_sane(gmm, dtype)
    # The re-seeded component was moved off the identical rows.
    assert np.abs(gmm.means_[2]).max() > 0.1
    assert np.all(np.isfinite(gmm.score_samples(X)))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_empty_component_is_kept_by_default_like_sklearn_and_reseeded_on_request(
        covariance_type, dtype):
    X, params = empty_problem(covariance_type, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComponentRecoveryWarning)
        default = GaussianMixture(**params).fit(X)
    reference = SkGM(**params).fit(X)
    # scikit-learn keeps the empty component (weight ~1e-16, mean at the
    # origin) and so does the default.
    assert default.weights_[2] < 1e-6 and reference.weights_[2] < 1e-6
    np.testing.assert_allclose(default.means_[2], reference.means_[2], atol=1e-6)

    gmm = GaussianMixture(**params)
    with pytest.warns(ComponentRecoveryWarning,
                      match=r"Component 2 degenerated at iteration 1 of initialisation 0: "
                            r"it holds almost no samples"):
        gmm.fit(X, on_degenerate="reseed")
    assert_sane(gmm, dtype)
    # It sits among the worst-explained rows now: at least one row's worth of them.
    assert gmm.weights_[2] * X.shape[0] > 1.0


def test_reseed_leaves_a_healthy_fit_bitwise_unchanged():
    X = two_blobs(seed=2)
    for covariance_type in COVARIANCE_TYPES:
        a = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ComponentRecoveryWarning)
            b = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(
                X, on_degenerate="reseed")
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.lower_bounds_ == b.lower_bounds_


def test_reseed_in_fit_predict_fit_batches_and_on_a_memmap(tmp_path):
    X, params = collapsing_problem("full", np.float64)
    with pytest.warns(ComponentRecoveryWarning):
        expected = GaussianMixture(**params).fit(X, on_degenerate="reseed")
    with pytest.warns(ComponentRecoveryWarning):
        labels = GaussianMixture(**params).fit_predict(X, on_degenerate="reseed")
    np.testing.assert_array_equal(labels, expected.predict(X))

    # The collapse is detected when the covariance is exactly zero, which
    # needs the shifted mean to cancel to the last bit: the batches' sums,
    # rounded differently, can miss that by one ulp (seen with the x86-64-v3
    # kernels: covariance 1e-23 at iteration 3, collapse at iteration 4). The
    # two fits then reach the same optimum by different paths, so they agree
    # to the convergence tolerance, not to rounding.
    with pytest.warns(ComponentRecoveryWarning, match="Component 2 degenerated at iteration"):
        batches = GaussianMixture(**params).fit_batches(
            [X[:150], X[150:300], X[300:]], on_degenerate="reseed")
    assert batches.converged_
    assert batches.lower_bound_ == pytest.approx(expected.lower_bound_, rel=1e-6)
    np.testing.assert_allclose(batches.means_, expected.means_, rtol=0, atol=1e-3)
    np.testing.assert_allclose(batches.covariances_, expected.covariances_, rtol=0,
                               atol=1e-3)
    with pytest.raises(ValueError, match=COLLAPSE_MSG):
        GaussianMixture(**params).fit_batches([X[:150], X[150:]])

    path = tmp_path / "x.npy"
    np.save(path, X)
    with pytest.warns(ComponentRecoveryWarning):
        mapped = GaussianMixture(**params).fit(np.load(path, mmap_mode="r"),
                                               on_degenerate="reseed")
    np.testing.assert_array_equal(mapped.means_, expected.means_)


def test_reseed_never_picks_a_row_of_zero_weight():
    X, params = collapsing_problem("full", np.float64)
    X = np.vstack([X, [[1e3, 1e3]]])          # the worst-explained row by far...
    sample_weight = np.ones(X.shape[0])
    sample_weight[-1] = 0.0                   # ...but it does not count
    with pytest.warns(ComponentRecoveryWarning) as caught:
        gmm = GaussianMixture(**params).fit(X, sample_weight=sample_weight,
                                            on_degenerate="reseed")
    rows = [int(m) for w in caught for m in re.findall(r"\(row (\d+)\)", str(w.message))]
    assert rows and X.shape[0] - 1 not in rows
    assert_sane(gmm, np.float64)


def test_reseed_cannot_recover_when_every_component_collapses():
    X = np.ones((20, 2))
    params = dict(n_components=1, reg_covar=0.0, means_init=[[1.0, 1.0]], weights_init=[1.0],
                  precisions_init=[np.eye(2)])
    gmm = GaussianMixture(**params)
    with pytest.raises(ValueError, match="cannot recover: all 1 components are degenerate at "
                                         "iteration 1"):
        gmm.fit(X, on_degenerate="reseed")
    assert not [k for k in vars(gmm) if k.endswith("_")]


def test_on_degenerate_must_be_raise_or_reseed():
    with pytest.raises(ValueError, match="on_degenerate must be 'raise'.*'reseed'"):
        GaussianMixture(2).fit(two_blobs(), on_degenerate="ignore")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("weighted", [False, True])
def test_worst_explained_rows_scans_in_blocks_and_equals_a_full_sort(monkeypatch, dtype,
                                                                     weighted):
    monkeypatch.setattr(R, "SCAN_ROWS", 7)    # many blocks, one partial
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 3)).astype(dtype)
    gmm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    sample_weight = rng.integers(0, 2, size=100).astype(np.float64) if weighted else None
    data = _InMemoryData(X, sample_weight)
    params = (gmm.weights_, gmm.means_, gmm.covariances_, gmm.precisions_cholesky_)
    index, rows = R.worst_explained_rows(data, params, "diag", 5, 1, _estimate)
    log_prob = gmm.score_samples(X).astype(np.float64)
    if weighted:
        log_prob[sample_weight == 0] = np.inf
    expected = np.lexsort((np.arange(100), log_prob))[:5]
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_array_equal(rows, X[expected].astype(np.float64))


# -------------------------------------------------------------- edge cases
#
# Each case runs fastgmm and scikit-learn on the same data and settings;
# docs/reliability.md lists what each does.


def blobs3(seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + 6.0])


def fit_both(X, **params):
    """(fastgmm's fit, scikit-learn's fit or None where it raised ValueError)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # KMeans on duplicate rows
        ours = GaussianMixture(random_state=0, **params).fit(X)
        try:
            theirs = SkGM(random_state=0, **params).fit(X)
        except ValueError as error:
            assert COLLAPSE_MSG in str(error)
            theirs = None
    return ours, theirs


def assert_same_fit(ours, theirs, rtol):
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=rtol,
                               atol=rtol * np.abs(theirs.means_).max())
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=rtol,
                               atol=rtol * np.abs(theirs.covariances_).max())
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=rtol)


EDGE_DATA = {
    "duplicate_points": lambda: np.repeat(blobs3()[:50], 4, axis=0),
    "constant_feature": lambda: np.column_stack([blobs3()[:, :2], np.full(200, 3.0)]),
    "huge_1e8": lambda: blobs3() * 1e8,
    "tiny_1e-8": lambda: blobs3() * 1e-8,
    "one_feature": lambda: blobs3()[:, :1],
}


# Where scikit-learn raises and fastgmm fits: its diag variance of the
# constant column is E[x^2] - mu^2 = 9 - 9 in float32, rounding below -reg_covar.
SKLEARN_RAISES = {("constant_feature", "diag", np.float32)}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("case", sorted(EDGE_DATA))
def test_edge_case_data_fits_like_sklearn(case, covariance_type, dtype):
    X = EDGE_DATA[case]().astype(dtype)
    ours, theirs = fit_both(X, n_components=2, covariance_type=covariance_type)
    assert_sane(ours, dtype)
    assert (theirs is None) == ((case, covariance_type, dtype) in SKLEARN_RAISES)
    if theirs is not None:
        assert_same_fit(ours, theirs, rtol=1e-4 if dtype == np.float32 else 1e-7)
    assert np.all(np.isfinite(ours.score_samples(X)))
    if case == "constant_feature" and covariance_type != "spherical":
        # The constant column's variance is reg_covar, exactly as scikit-learn's.
        variances = (np.diagonal(ours.covariances_, axis1=-2, axis2=-1)
                     if covariance_type in ("full", "tied") else ours.covariances_)
        np.testing.assert_allclose(variances[..., 2], 1e-6, rtol=1e-3)
    if case == "tiny_1e-8":
        # reg_covar (1e-6) dwarfs a 1e-16 variance: documented, as in scikit-learn.
        assert np.asarray(ours.covariances_).max() < 2e-6


@pytest.mark.parametrize("n_components", [1, 2])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_all_points_identical(covariance_type, n_components):
    X = np.ones((50, 3))
    ours, theirs = fit_both(X, n_components=n_components, covariance_type=covariance_type)
    assert_sane(ours, np.float64)
    assert_same_fit(ours, theirs, rtol=1e-7)
    np.testing.assert_allclose(ours.means_[ours.weights_.argmax()], 1.0)
    np.testing.assert_allclose(ours.weights_.max(), 1.0)
    # reg_covar=0: no covariance at all, an error naming the remedies in both.
    for cls in (GaussianMixture, SkGM):
        with pytest.raises(ValueError, match="increase reg_covar"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                cls(n_components, covariance_type=covariance_type, reg_covar=0.0,
                    random_state=0).fit(X)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_as_many_samples_as_components(covariance_type, dtype):
    X = blobs3()[:5].astype(dtype)
    ours, theirs = fit_both(X, n_components=5, covariance_type=covariance_type)
    assert_sane(ours, dtype)
    if dtype == np.float64 or covariance_type == "full":
        assert_same_fit(ours, theirs, rtol=1e-4 if dtype == np.float32 else 1e-7)
    else:
        # One sample per component: the variance is reg_covar exactly in
        # fastgmm; scikit-learn's E[x^2] - mu^2 in float32 adds up to 3e-6 of
        # rounding to it.
        np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-6)
        np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-6)
    if dtype == np.float64 or covariance_type in ("diag", "spherical"):
        variances = (np.diagonal(ours.covariances_, axis1=-2, axis2=-1)
                     if covariance_type in ("full", "tied") else ours.covariances_)
        np.testing.assert_allclose(variances, 1e-6, rtol=1e-5)
    # every sample its own component
    assert sorted(ours.predict(X)) == list(range(5))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_single_component(covariance_type, dtype):
    X = blobs3().astype(dtype)
    ours, theirs = fit_both(X, n_components=1, covariance_type=covariance_type)
    assert_sane(ours, dtype)
    assert_same_fit(ours, theirs, rtol=1e-4 if dtype == np.float32 else 1e-7)
    np.testing.assert_allclose(ours.means_[0], X.mean(axis=0, dtype=np.float64),
                               rtol=1e-5)
    np.testing.assert_array_equal(ours.predict_proba(X), 1.0)


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical", "full"])
def test_large_offset_float32_stays_positive_where_sklearn_cancels(covariance_type):
    # Spread 1e-2 around 1e4: E[x^2] - mu^2 loses every digit of the
    # variance in float32 (1e8 +- 6 ulp of 8 against a variance of 1e-4).
    rng = np.random.default_rng(0)
    X64 = np.vstack([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6.0]) * 1e-2 + 1e4
    X = X64.astype(np.float32)
    gmm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert_sane(gmm, np.float32)
    exact = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(
        X.astype(np.float64))
    # the float64 fit of the same (rounded) data, to float32 accuracy of the sums
    ours_error = relative_error(gmm.covariances_, exact.covariances_)
    assert ours_error < 5e-3
    reference = SkGM(2, covariance_type=covariance_type, random_state=0)
    if covariance_type == "full":
        # scikit-learn's full covariance is centred and survives, 4% off
        # (off-diagonal terms of the wrong sign).
        reference.fit(X)
        assert ours_error < relative_error(reference.covariances_, exact.covariances_) < 0.1
    else:
        # scikit-learn's 'diag'/'spherical' use E[x^2] - mu^2 and its 'tied'
        # E[xx^T] - sum N_k mu mu^T: negative variances, a ValueError.
        with pytest.raises(ValueError, match=COLLAPSE_MSG):
            reference.fit(X)


def relative_error(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    return np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_query_points_far_from_every_component_saturate_cleanly(covariance_type, dtype):
    X = blobs3().astype(dtype)
    gmm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    big = 1e30 if dtype == np.float32 else 1e200      # log p(x) beyond the dtype's range
    far = np.array([[1e6, 1e6, 1e6], [-1e6, 0, 0], [0, 0, 1e12],
                    [big, -big, big], [-big, 0, 0], [0, big, 0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no overflow or invalid-value warnings
        proba = gmm.predict_proba(far)
        log_prob = gmm.score_samples(far)
        labels = gmm.predict(far)
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=10 * np.finfo(dtype).eps)
    # finite while representable, then -inf (the value rounded to the dtype)
    assert np.all(np.isfinite(log_prob[:3])) and np.all(log_prob[:3] < -1e6)
    assert np.all(np.isneginf(log_prob[3:]))
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    if covariance_type != "tied":
        # components of different shapes: one of them wins outright
        np.testing.assert_array_equal(np.sort(proba, axis=1)[:, 1], 1.0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rows_beyond_float64_go_to_the_asymptotically_nearest_component(covariance_type):
    # Two components of one shape (tied-like for every type), means at 0 and
    # 10 along the first axis: far along +x the second is nearer, along -x
    # the first, and far along y the first coordinate still decides (4 is
    # nearer 0, 6 nearer 10), exactly as at moderate distances.
    params = dict(n_components=2, covariance_type=covariance_type,
                  weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [10.0, 0.0]],
                  precisions_init=unit_precisions(covariance_type, 2, 2), max_iter=0)
    X = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 1.0], [10.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = GaussianMixture(**params).fit(X)
    for scale in (1e3, 1e200, 1e300):
        query = np.array([[scale, 0.0], [-scale, 0.0], [scale, scale], [4.0, scale],
                          [6.0, -scale]])
        proba = gmm.predict_proba(query)
        # same shapes: the odds at (4, s) are exp((6^2 - 4^2) / 2), whatever s
        odds = 1 / (1 + np.exp(-10.0))
        np.testing.assert_allclose(
            proba, [[0, 1], [1, 0], [0, 1], [odds, 1 - odds], [1 - odds, odds]], rtol=1e-9)
        np.testing.assert_array_equal(gmm.predict(query), [1, 0, 1, 0, 1])


def test_far_query_tied_gives_a_distribution_where_sklearn_does_not():
    # At 1e150 the two tied components' distances (~1e300) are equal to
    # rounding: fastgmm splits the row evenly, scikit-learn returns [1, 1].
    X = blobs3()
    far = np.array([[1e150, 0.0, 0.0]])
    ours = GaussianMixture(2, covariance_type="tied", random_state=0).fit(X).predict_proba(far)
    theirs = SkGM(2, covariance_type="tied", random_state=0).fit(X).predict_proba(far)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)
    assert theirs.sum() != pytest.approx(1.0)  # recorded in docs/reliability.md


@pytest.mark.parametrize("estimator", ["gmm", "bayesian"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_far_queries_keep_their_labels_at_every_scale(covariance_type, dtype, estimator):
    # an outside audit: tied components at 1e50 .. 1e150 (float64; float32 from
    # 1e19) gave 0.5 / 0.5 and label 0, between right answers nearer and
    # farther: the log-densities' differences were lost in their rounding
    from fastgmm import BayesianGaussianMixture

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(5, 1, (100, 2))]).astype(dtype)
    cls = GaussianMixture if estimator == "gmm" else BayesianGaussianMixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = cls(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    directions = X[:40] - X.mean(axis=0)
    scales = [1e5, 1e10, 1e18, 1e30] + ([1e50, 1e100, 1e150, 1e155, 1e160]
                                         if dtype == np.float64 else [])
    expected = None
    for scale in scales:
        query = (directions.astype(np.float64) * scale).astype(dtype)
        labels, proba = model.predict(query), model.predict_proba(query)
        assert np.all(np.isfinite(proba)), scale
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert np.all(proba.max(axis=1) > 0.99), (scale, proba.max(axis=1).min())
        if expected is None:
            expected = labels
        np.testing.assert_array_equal(labels, expected, err_msg=f"scale {scale:g}")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_more_features_than_samples(covariance_type, dtype):
    X = np.random.default_rng(0).normal(size=(10, 20)).astype(dtype)
    with warnings.catch_warnings():
        # float32 'full': the lower bound jitters by ~1e-3 on covariances of
        # condition 1e6 and never meets tol (docs/reliability.md)
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = fit_both(X, n_components=2, covariance_type=covariance_type)
    assert_sane(ours, dtype)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    if dtype == np.float64:
        assert_same_fit(ours, theirs, rtol=1e-6)
    else:
        np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-5)
        np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-4, atol=1e-4)
    if covariance_type == "full":
        # rank <= 9 scatter plus reg_covar: the smallest eigenvalue is reg_covar,
        # to within the rounding of the covariances' dtype (float32 entries
        # of a matrix with eigenvalues ~5 carry ~eps32 x 5 = 6e-7 of error:
        # 7.95e-7 with the baseline kernels, 8.5e-7 with x86-64-v3).
        eigenvalues = np.linalg.eigvalsh(ours.covariances_.astype(np.float64))
        smallest, largest = eigenvalues.min(axis=1), eigenvalues.max(axis=1)
        atol = np.maximum(0.2e-6, np.finfo(dtype).eps * largest)
        assert (np.abs(smallest - 1e-6) <= atol).all(), (smallest, atol)


# -------------------------------------------------------- memory of a fit


def test_memory_figure_counts_the_statistics_buffer_the_fit_allocates():
    for covariance_type in COVARIANCE_TYPES:
        for n_samples, K, D in [(300, 2, 3), (100_000, 8, 20), (5000, 32, 64)]:
            data = _InMemoryData(np.empty((n_samples, D)), None)
            workspace = _Workspace(data, covariance_type, K)
            stats_bytes, param_bytes = R.compute_fit_memory(n_samples, covariance_type, K, D)
            assert stats_bytes == workspace.stats.nbytes
            per_component = {"full": D * D, "tied": D * D / K, "diag": D, "spherical": 1}
            assert param_bytes == int(8 * R.PARAMETER_COPIES
                                      * (K * per_component[covariance_type] + K * D))


def test_d512_full_figure_is_the_k_d2_memory():
    # The stress case: 16 slots of K lower triangles of 512 x 512 float64
    # (packed) plus the parameters.
    stats_bytes, param_bytes = R.compute_fit_memory(20_000, "full", 32, 512)
    assert stats_bytes >= 16 * 32 * (512 * 513 // 2) * 8    # 0.5 GiB of statistics
    assert param_bytes >= 32 * 512 * 512 * 8
    with pytest.warns(LargeMemoryWarning, match=r"needs about 1\.\d\d GiB of memory besides X"):
        R.warn_if_large(20_000, "full", 32, 512)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeMemoryWarning)
        R.warn_if_large(20_000, "diag", 32, 512)           # diag: a few MB


def test_fit_warns_before_allocating_more_than_the_threshold(monkeypatch):
    X = two_blobs()
    stats_bytes, param_bytes = R.compute_fit_memory(X.shape[0], "full", 2, 2)
    monkeypatch.setattr(R, "FIT_MEMORY_WARNING_BYTES", stats_bytes + param_bytes - 1)
    with pytest.warns(LargeMemoryWarning) as caught:
        GaussianMixture(2, random_state=0).fit(X)
    message = str(caught[0].message)
    assert f"{(stats_bytes + param_bytes) / 2**30:.2f} GiB" in message
    assert "'full', K=2, D=2" in message and "covariance_type='diag'" in message
    monkeypatch.setattr(R, "FIT_MEMORY_WARNING_BYTES", stats_bytes + param_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeMemoryWarning)
        GaussianMixture(2, random_state=0).fit(X)


# ------------------------------------------------------------ interruption

INTERRUPTED_FIT_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time, warnings
    import numpy as np
    from fastgmm import GaussianMixture

    # The C-level handler writes every signal to this pipe the moment it is
    # delivered, even while the main thread is inside a native pass without
    # the GIL; the watcher notes how many iterations had completed then.
    # A process started in the background by a non-interactive shell inherits
    # SIGINT ignored (the test then hung until its timeout): take Python's
    # own handler, whatever the parent left.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    completed = [0]
    arrivals = []

    def watch():
        while os.read(read_end, 1):
            arrivals.append(completed[0])

    threading.Thread(target=watch, daemon=True).start()

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400_000, 8)) + 4 * rng.integers(0, 4, size=(400_000, 1))

    def long_fit(gmm, n_signal):
        completed[0] = 0

        def callback(info):
            completed[0] += 1
            if completed[0] == 1:
                print("RUNNING", flush=True)   # the parent sends SIGINT now

        try:
            gmm.fit(X, callback=callback)
        except KeyboardInterrupt:
            at_exit = completed[0]
            for _ in range(10_000):            # the watcher needs the GIL once
                if len(arrivals) >= n_signal:
                    break
                time.sleep(0.001)
            return {"at_signal": arrivals[n_signal - 1], "at_exit": at_exit}
        return {"at_signal": None, "at_exit": completed[0]}

    def state(gmm):
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in vars(gmm).items() if k.endswith("_")}

    threads_before = threading.active_count()
    report = {}
    fresh = GaussianMixture(8, init_params="random_from_data", tol=0, max_iter=10**6,
                            random_state=0)
    report["unfitted"] = long_fit(fresh, 1)
    report["unfitted"]["attributes"] = sorted(state(fresh))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = GaussianMixture(8, init_params="random_from_data", max_iter=2,
                               warm_start=True, random_state=0).fit(X)
    previous = state(warm)
    warm.set_params(tol=0, max_iter=10**6)
    report["warm"] = long_fit(warm, 2)
    report["warm"]["kept_previous"] = state(warm) == previous
    report["threads_before"] = threads_before
    report["threads_after"] = threading.active_count()
    print(json.dumps(report), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_sigint_stops_a_fit_within_one_iteration_and_keeps_the_previous_state(tmp_path):
    script = tmp_path / "interrupted_fit.py"
    script.write_text(INTERRUPTED_FIT_SCRIPT)
    env = dict(os.environ, PYTHONPATH=FASTGMM_PARENT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(2):                  # the fresh fit, then the warm refit
            line = proc.stdout.readline()
            assert line.strip() == "RUNNING", line + proc.stderr.read()
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=600)   # a guard against a hang only
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    print(report["unfitted"]["at_signal"], report["unfitted"]["at_exit"],
          report["warm"]["at_signal"], report["warm"]["at_exit"])
    for case in ("unfitted", "warm"):
        at_signal, at_exit = report[case]["at_signal"], report[case]["at_exit"]
        assert at_signal is not None, f"{case}: the fit was not interrupted"
        # The pass running when the signal came finishes (it holds no GIL and
        # cannot be interrupted); no further iteration starts.
        assert at_exit - at_signal <= 1, report
    assert report["unfitted"]["attributes"] == []
    assert report["warm"]["kept_previous"]
    assert report["threads_after"] == report["threads_before"]


def _rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def test_repeated_interrupted_fits_leak_no_memory_or_threads():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5_000, 4)) + 4 * rng.integers(0, 3, size=(5_000, 1))

    def stop(info):
        if info.n_iter == 2:
            raise KeyboardInterrupt

    def interrupted_fit(covariance_type):
        gmm = GaussianMixture(3, covariance_type=covariance_type, tol=0,
                              init_params="random_from_data", random_state=0)
        try:
            gmm.fit(X, callback=stop)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("not interrupted")
        assert not [k for k in vars(gmm) if k.endswith("_")]

    for covariance_type in COVARIANCE_TYPES:      # warm the caches first
        interrupted_fit(covariance_type)
    gc.collect()
    threads_before = threading.active_count()
    rss_before = _rss_bytes() if sys.platform.startswith("linux") else None
    tracemalloc.start()
    try:
        traced_before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            for covariance_type in COVARIANCE_TYPES:
                interrupted_fit(covariance_type)
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - traced_before
    finally:
        tracemalloc.stop()
    # One leaked copy of X per fit would be 160 KB x 40.
    assert traced_growth < 128 * 1024, traced_growth
    assert threading.active_count() == threads_before
    if rss_before is not None:
        assert _rss_bytes() - rss_before < 32 * 2**20


# ---------------------------------------- collapse at initialisation

def _blobs_and_a_point_mass():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6,
                      np.tile([[20.0, 20.0]], (50, 1))])


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_collapse_at_initialisation_is_reseeded_on_request(covariance_type):
    # The review: k-means puts a cluster on 50 identical rows; at reg_covar=0
    # its covariance is 0 before EM starts, and on_degenerate='reseed' let the
    # private CollapsedComponentError escape from the initialisation.
    X = _blobs_and_a_point_mass()
    params = dict(n_components=3, covariance_type=covariance_type, reg_covar=0.0,
                  random_state=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(**params).fit(X)     # the default: scikit-learn's error
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gmm = GaussianMixture(**params).fit(X, on_degenerate="reseed")
    messages = [str(w.message) for w in caught
                if issubclass(w.category, ComponentRecoveryWarning)]
    # Re-seeded before the first iteration (and, reg_covar being 0 on a point
    # mass, possibly again later: docs/reliability.md, "Limits").
    assert re.match(r"Component \d degenerated at the start of initialisation 0", messages[0])
    assert np.all(np.isfinite(gmm.means_)) and np.all(np.isfinite(gmm.precisions_cholesky_))
    assert np.isfinite(gmm.lower_bound_)


# ----------------------------------------------- memmaps and the inits

@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_no_init_loads_a_memmap_so_none_warns(tmp_path, init_params):
    # Every initialisation reads a memory-mapped X in place (k-means too,
    # since issue 17: the kernels centre rows as they read them), so no fit
    # warns about loading it; tests/test_out_of_core.py measures the memory.
    X = two_blobs()
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeMemoryWarning)
        gmm = GaussianMixture(2, init_params=init_params, random_state=0).fit(mapped)
    reference = GaussianMixture(2, init_params=init_params, random_state=0).fit(X)
    np.testing.assert_array_equal(gmm.means_, reference.means_)

@pytest.mark.parametrize("estimator", [fastgmm.GaussianMixture, fastgmm.BayesianGaussianMixture])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e20), (np.float64, 1e160)])
def test_overflowing_squares_say_so_and_leave_nothing_fitted(estimator, covariance_type,
                                                              dtype, scale):
    """Data whose squared deviations overflow their dtype (float32 near 1e20,
    the top of the scales the project promises): a ValueError that says the
    squares overflow and what to do (scikit-learn says only "array must not
    contain infs or NaNs"), no crash (the k-means labels of such rows once
    went past the centres: test_kernels.py), and nothing half-fitted."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(2000, 3)) * scale).astype(dtype)
    model = estimator(n_components=4, covariance_type=covariance_type, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="overflow") as info:
            model.fit(X)
    if dtype == np.float32:
        assert "X.astype(np.float64)" in str(info.value)
    assert not hasattr(model, "means_")


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype, scale, hint", [
    (np.float64, 1e300, "the squared deviations overflow float64; rescale X"),
    (np.float64, 1e160, "the squared deviations overflow float64; rescale X"),
    (np.float32, 1e20, "overflow float32 (above 3.4e38"),
])
def test_data_whose_squares_overflow_is_refused_with_the_cause_first(
        estimator, covariance_type, dtype, scale, hint):
    # an outside audit: the error began with scikit-learn's words (singleton
    # samples, fewer components) and the cause came last
    import fastgmm

    X = (np.random.default_rng(0).standard_normal((200, 2)) * scale).astype(dtype)
    model = getattr(fastgmm, estimator)(n_components=2, covariance_type=covariance_type,
                                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as info:
            model.fit(X)
    message = str(info.value)
    assert message.startswith("Some covariances are not finite: ") and hint in message
    assert "ill-defined empirical covariance" in message       # scikit-learn's words follow
    assert not hasattr(model, "means_")


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_duplicates_with_no_reg_covar_are_a_collapsed_component(covariance_type, dtype):
    # an outside audit: diag and spherical fits put a component on 30 equal
    # rows with a variance of 1e-31 (the mean's rounding, squared) and an
    # inflated lower bound, where scikit-learn raises; all-equal data fitted
    # or raised depending on the value
    from fastgmm import ComponentRecoveryWarning, GaussianMixture
    from fastgmm._parameters import CollapsedComponentError

    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(200, 2), np.repeat([[5.3, -2.1]], 30, 0)]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CollapsedComponentError):
            GaussianMixture(2, covariance_type=covariance_type, reg_covar=0,
                            random_state=0).fit(X)
        for value in (1.0, 0.3, 3.7, 5.3, 1e4):
            with pytest.raises(CollapsedComponentError):
                GaussianMixture(1, covariance_type=covariance_type, reg_covar=0).fit(
                    np.full((10, 3), value, dtype=dtype))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0,
                                random_state=0).fit(X, on_degenerate="reseed")
    assert any(issubclass(w.category, ComponentRecoveryWarning) for w in caught)
    assert np.all(model.covariances_ > 1e-3)
    # with the default reg_covar the duplicates fit, their variance reg_covar
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert np.all(np.isfinite(model.means_))
