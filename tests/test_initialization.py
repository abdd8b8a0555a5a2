"""The default initialisation's k-means: scikit-learn's KMeans, bit for bit, faster."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from fastgmm import _initialization
from fastgmm._initialization import kmeans
from fastgmm._kernels._columns import column_moments

from conftest import make_mixture

DTYPES = [np.float64, np.float32]


# ------------------------------------------------------------ column moments

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2), (2, 2), (3, 100), (1000, 2), (4097, 3),
                                   (2000, 39), (257, 128)])
def test_column_moments_equal_numpy_bitwise(dtype, shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    scales = 10.0 ** rng.uniform(-6, 6, size=shape[1])
    X = (rng.normal(size=shape) * scales + rng.normal(size=shape[1]) * 3 * scales).astype(dtype)
    mean, var = column_moments(X)
    assert mean.dtype == var.dtype == dtype
    np.testing.assert_array_equal(mean, X.mean(axis=0))
    np.testing.assert_array_equal(var, X.var(axis=0))


def test_column_moments_signed_zero_and_overflow_as_numpy():
    X = np.array([[-0.0, 1e300], [-0.0, -1e300], [-0.0, 1e300]])
    mean, var = column_moments(X)
    with np.errstate(over="ignore"):
        expected_mean, expected_var = X.mean(axis=0), X.var(axis=0)
    np.testing.assert_array_equal(np.signbit(mean), np.signbit(expected_mean))
    np.testing.assert_array_equal(mean, expected_mean)
    np.testing.assert_array_equal(var, expected_var)   # inf for the second column


@pytest.mark.parametrize("bad, error", [
    (np.zeros((5, 1)), ValueError),
    (np.zeros((0, 3)), ValueError),
    (np.zeros(4), ValueError),
    (np.zeros((4, 3), dtype=np.int64), TypeError),
])
def test_column_moments_rejects_what_it_cannot_reproduce(bad, error):
    with pytest.raises(error):
        column_moments(bad)


# ------------------------------------------------------------ k-means

def test_fast_kmeans_path_is_active():
    # If this fails after a scikit-learn release, check that KMeans.fit is
    # still the steps `_initialization.kmeans` takes, then widen
    # KMEANS_FAST_VERSIONS (the comparisons below must pass).
    assert _initialization._KMEANS_STEPS is not None, (
        f"scikit-learn {sklearn.__version__} is outside KMEANS_FAST_VERSIONS "
        f"{_initialization.KMEANS_FAST_VERSIONS} or its private k-means steps moved")
    assert _initialization._FAST_COLUMN_MOMENTS, "numpy no longer sums axis 0 row by row"


def _sklearn_kmeans(X, n_clusters, seed, sample_weight):
    random_state = np.random.RandomState(seed)
    fitted = KMeans(n_clusters=n_clusters, n_init=1, random_state=random_state).fit(
        X, sample_weight=sample_weight)
    return fitted.labels_, fitted.cluster_centers_, random_state.random_sample()


def _our_kmeans(X, n_clusters, seed, sample_weight):
    random_state = np.random.RandomState(seed)
    labels, centers = kmeans(X, n_clusters, random_state, sample_weight)
    return labels, centers, random_state.random_sample()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_features, n_clusters", [(1, 3), (2, 3), (5, 1), (5, 8), (16, 4)])
@pytest.mark.parametrize("weighting", ["none", "positive", "with zeros"])
def test_kmeans_equals_sklearn_bitwise(dtype, n_features, n_clusters, weighting):
    X, _ = make_mixture(3000, n_features, max(n_clusters, 2), dtype=dtype, seed=n_features,
                        scale=2.0)
    rng = np.random.default_rng(1)
    sample_weight = {
        "none": None,
        "positive": rng.uniform(0.1, 3.0, size=X.shape[0]),
        "with zeros": rng.uniform(0.1, 3.0, size=X.shape[0]) * (rng.random(X.shape[0]) > 0.3),
    }[weighting]
    for seed in range(4):
        ours = _our_kmeans(X, n_clusters, seed, sample_weight)
        theirs = _sklearn_kmeans(X, n_clusters, seed, sample_weight)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
        assert ours[1].dtype == theirs[1].dtype
        assert ours[2] == theirs[2]     # the random state advanced alike


def test_kmeans_warns_as_sklearn_on_duplicate_points():
    X = np.repeat(np.array([[0.0, 1.0], [2.0, 3.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning) as ours:
        labels, _ = kmeans(X, 3, np.random.RandomState(0))
    with pytest.warns(ConvergenceWarning) as theirs:
        expected = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X).labels_
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    np.testing.assert_array_equal(labels, expected)


def test_kmeans_without_the_fast_path_calls_kmeans(monkeypatch):
    X, _ = make_mixture(500, 3, 3)
    expected = _sklearn_kmeans(X, 3, 7, None)
    monkeypatch.setattr(_initialization, "_KMEANS_STEPS", None)
    ours = _our_kmeans(X, 3, 7, None)
    np.testing.assert_array_equal(ours[0], expected[0])
    np.testing.assert_array_equal(ours[1], expected[1])
    # A column view (not C-contiguous) takes KMeans too.
    monkeypatch.undo()
    view = np.asfortranarray(X)
    ours = _our_kmeans(view, 3, 7, None)
    np.testing.assert_array_equal(ours[0], expected[0])


def test_kmeans_leaves_the_input_alone():
    X, _ = make_mixture(500, 3, 3)
    before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kmeans(X, 3, np.random.RandomState(0))
    np.testing.assert_array_equal(X, before)
