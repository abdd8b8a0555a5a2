"""Initial responsibilities: kmeans, k-means++, random and random_from_data.

Each method draws exactly what scikit-learn's `_initialize_parameters`
draws from the same RandomState, in the same order, so that a fit with a
given random_state starts where scikit-learn's starts. Where scikit-learn
builds an N x K responsibility matrix, we feed the same responsibilities to
the native pass block by block, so the initialisation never holds N x K.
"""

import inspect
import warnings

import numpy as np
import sklearn
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import row_norms

from fastgmm._kernels._columns import column_moments
from fastgmm._kernels._dispatch import em_pass
from fastgmm._parameters import KERNEL_COV_CODE, allocate_stats, n_slots_for

# Rows of responsibilities materialised at a time (about 8 MB at K = 64).
RESP_BLOCK_ELEMENTS = 2**20


def _block_rows(n_components):
    return max(256, RESP_BLOCK_ELEMENTS // n_components)


# KMeans.fit (scikit-learn 1.6 to 1.9: the same code) on dense data is a few
# private steps. Calling them directly skips what costs time and does not
# change the result: re-validating and copying X, numpy's slow column
# reductions on skinny arrays (the mean and the tolerance's variance; see
# _columns.h) and `len(set(labels))` over every label (40 ms at 1M rows).
# Outside that range of versions, or should the private functions move, we
# call KMeans itself. tests/test_initialization.py checks both give the same
# labels and centres bitwise, and that this path runs.
KMEANS_FAST_VERSIONS = ((1, 6), (1, 9))
KMEANS_MAX_ITER = 300   # KMeans' defaults, as GaussianMixture leaves them
KMEANS_TOL = 1e-4


def _private_kmeans_steps():
    """scikit-learn's private k-means steps, or None where they are not the known ones."""
    version = tuple(int(part) for part in sklearn.__version__.split(".")[:2]
                    if part.isdigit())
    if not KMEANS_FAST_VERSIONS[0] <= version <= KMEANS_FAST_VERSIONS[1]:
        return None
    try:
        from sklearn.cluster._kmeans import _kmeans_plusplus, _kmeans_single_lloyd
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    except ImportError:
        return None
    expected = {
        _kmeans_plusplus: ["X", "n_clusters", "x_squared_norms", "sample_weight",
                           "random_state", "n_local_trials"],
        _kmeans_single_lloyd: ["X", "sample_weight", "centers_init", "max_iter", "verbose",
                               "tol", "n_threads"],
    }
    for function, names in expected.items():
        if list(inspect.signature(function).parameters) != names:
            return None
    return _kmeans_plusplus, _kmeans_single_lloyd, _openmp_effective_n_threads


def _numpy_sums_row_by_row():
    """True when numpy's X.mean(axis=0) and X.var(axis=0) match column_moments here."""
    probe_rng = np.random.RandomState(0)
    for dtype in (np.float64, np.float32):
        probe = (probe_rng.standard_normal((999, 3)) * [1e-3, 1.0, 1e6]).astype(dtype)
        mean, var = column_moments(probe)
        if not (np.array_equal(mean, probe.mean(axis=0))
                and np.array_equal(var, probe.var(axis=0))):
            return False
    return True


_KMEANS_STEPS = _private_kmeans_steps()
_FAST_COLUMN_MOMENTS = _numpy_sums_row_by_row()


def _mean_and_variance(X):
    """(X.mean(axis=0), X.var(axis=0)), bitwise."""
    if X.shape[1] >= 2 and _FAST_COLUMN_MOMENTS:
        return column_moments(X)
    return X.mean(axis=0), np.var(X, axis=0)


def kmeans(X, n_clusters, random_state, sample_weight=None):
    """Labels and centres of KMeans(n_clusters, n_init=1, random_state).fit(X, sample_weight).

    `X` is validated (finite, C-contiguous float32/float64, at least
    n_clusters rows); `random_state` a RandomState, which advances as KMeans
    would advance it. Warns as KMeans does when fewer distinct clusters than
    n_clusters come out.
    """
    if _KMEANS_STEPS is None or not X.flags.c_contiguous:
        fitted = KMeans(n_clusters=n_clusters, n_init=1, random_state=random_state).fit(
            X, sample_weight=sample_weight)
        return fitted.labels_, fitted.cluster_centers_
    kmeans_plusplus_step, lloyd, effective_n_threads = _KMEANS_STEPS
    # KMeans.fit, step by step: tolerance from the data's variance, data
    # centred on its mean, k-means++ seeds, one Lloyd run, centres moved back.
    X_mean, variances = _mean_and_variance(X)
    tol = np.mean(variances) * KMEANS_TOL
    centred = np.subtract(X, X_mean)
    if sample_weight is None:
        weights = np.ones(X.shape[0], dtype=X.dtype)
    else:
        weights = np.ascontiguousarray(sample_weight, dtype=X.dtype)
    seeds, _ = kmeans_plusplus_step(
        centred, n_clusters, x_squared_norms=row_norms(centred, squared=True),
        sample_weight=weights, random_state=random_state,
    )
    labels, _, centers, _ = lloyd(
        centred, weights, seeds, max_iter=KMEANS_MAX_ITER, verbose=False, tol=tol,
        n_threads=effective_n_threads(),
    )
    centers += X_mean
    distinct_clusters = np.count_nonzero(np.bincount(labels, minlength=n_clusters))
    if distinct_clusters < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct_clusters}) found smaller than "
            f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return labels, centers


def _stats_of_given_resp(X, resp_blocks, covariance_type, centers, tied_center, n_threads,
                         sample_weight=None):
    """Sum the sufficient statistics of (rows, responsibilities) blocks.

    `resp_blocks` yields (start, stop, resp) with resp of shape
    (stop - start, K) in X's dtype; component k's statistics are shifted by
    centers[k], the tied second moment by `tied_center`. Rows are weighted
    by `sample_weight` (None: ones).
    """
    code = KERNEL_COV_CODE[covariance_type]
    dtype = X.dtype
    total = None
    empty_weights = np.empty(0, dtype=np.float64)
    for start, stop, resp in resp_blocks:
        n_components = resp.shape[1]
        rows = X[start:stop]
        tied_proj = centers if covariance_type == "tied" else np.empty((0, 0), dtype=dtype)
        stats = allocate_stats(
            n_slots_for(rows.shape[0], covariance_type, n_components, X.shape[1]),
            covariance_type, n_components, X.shape[1],
        )
        weights = empty_weights if sample_weight is None else sample_weight[start:stop]
        em_pass(
            rows, weights, centers, np.empty(1, dtype=dtype),
            tied_center if covariance_type == "tied" else np.empty(0, dtype=dtype),
            tied_proj, np.zeros(n_components), np.ascontiguousarray(resp, dtype=dtype),
            code, stats, n_threads,
        )
        block_total = stats.sum(axis=0)
        total = block_total if total is None else total + block_total
    return total


def initial_statistics(X, init_params, n_components, random_state, covariance_type, n_threads,
                       sample_weight=None):
    """Sufficient statistics of scikit-learn's initial responsibilities.

    Returns (stats_total, centers, tied_center): component k's statistics
    are shifted by centers[k] (K x D, X's dtype), chosen near that
    component's mean so that float32 chunk sums lose nothing to the shift;
    the tied second moment is taken about `tied_center`.

    With `sample_weight`, k-means and k-means++ are weighted, 'random_from_data'
    draws rows with probability proportional to their weight (when the
    weights are not all equal: equal weights draw exactly as without), and
    the statistics weight every row.
    """
    n_samples = X.shape[0]
    dtype = X.dtype
    center = np.mean(X, axis=0, dtype=np.float64).astype(dtype)
    spread = np.ascontiguousarray(np.broadcast_to(center, (n_components, X.shape[1])))
    block = _block_rows(n_components)

    if init_params == "kmeans":
        labels, _ = kmeans(X, n_components, random_state, sample_weight)
        # Shift each cluster by one of its own points: near its mean, and a
        # function of the labels alone (KMeans' centres may differ in the last
        # bit between thread counts; the labels do not).
        centers = spread.copy()
        present, first_row = np.unique(labels, return_index=True)
        centers[present] = X[first_row]
        blocks = _one_hot_blocks(labels, n_components, block, dtype)
        stats = _stats_of_given_resp(X, blocks, covariance_type, centers, center, n_threads,
                                     sample_weight)
        return stats, centers, center

    if init_params == "random":
        # RandomState.uniform fills row-major from one stream, so drawing it
        # block by block yields the same numbers as one (N, K) draw.
        def blocks():
            for start in range(0, n_samples, block):
                stop = min(start + block, n_samples)
                resp = np.asarray(
                    random_state.uniform(size=(stop - start, n_components)), dtype=dtype
                )
                resp /= resp.sum(axis=1)[:, np.newaxis]
                yield start, stop, resp

        # Random responsibilities put every component's mean near the data's.
        stats = _stats_of_given_resp(X, blocks(), covariance_type, spread, center, n_threads,
                                     sample_weight)
        return stats, spread, center

    if init_params == "random_from_data":
        p = None
        if sample_weight is not None and np.ptp(sample_weight) > 0:
            p = sample_weight / sample_weight.sum()
        indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
    else:  # "k-means++"
        _, indices = kmeans_plusplus(
            X, n_components, random_state=random_state, sample_weight=sample_weight
        )
    if covariance_type == "tied":
        # scikit-learn's tied covariance takes X^T X over every row, whatever
        # the responsibilities: pass all rows, one-hot on the chosen ones.
        # Rows with no responsibility make that formula depend on the
        # origin, so these statistics are taken about 0, as scikit-learn's.
        origin = np.zeros_like(center)
        labels = np.full(n_samples, -1, dtype=np.intp)
        labels[indices] = np.arange(n_components)
        blocks = _one_hot_blocks(labels, n_components, block, dtype)
        zeros = np.zeros_like(spread)
        stats = _stats_of_given_resp(X, blocks, covariance_type, zeros, origin, n_threads,
                                     sample_weight)
        return stats, zeros, origin
    # One-hot responsibilities on K rows: only those rows contribute, each
    # shifted by itself.
    rows = np.ascontiguousarray(X[indices])
    resp = np.eye(n_components, dtype=dtype)
    weights = None if sample_weight is None else np.ascontiguousarray(sample_weight[indices])
    stats = _stats_of_given_resp(rows, [(0, n_components, resp)], covariance_type, rows,
                                 center, n_threads, weights)
    return stats, rows, center


def _one_hot_blocks(labels, n_components, block, dtype):
    """(start, stop, resp) blocks with resp[i, labels[i]] = 1 (no 1 where the label is -1)."""
    n_samples = labels.shape[0]
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        resp = np.zeros((stop - start, n_components), dtype=dtype)
        part = labels[start:stop]
        rows = np.flatnonzero(part >= 0)
        resp[rows, part[rows]] = 1
        yield start, stop, resp
