"""Initial responsibilities: kmeans, k-means++, random and random_from_data.

Each method draws exactly what scikit-learn's `_initialize_parameters`
draws from the same RandomState, in the same order, so that a fit with a
given random_state starts where scikit-learn's starts. Where scikit-learn
builds an N x K responsibility matrix, we feed the same responsibilities to
the native pass block by block, so the initialisation never holds N x K.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastgmm import _kmeans
from fastgmm._kernels._dispatch import em_pass, label_statistics
from fastgmm._parameters import KERNEL_COV_CODE, allocate_stats, n_slots_for

# Rows of responsibilities materialised at a time (about 8 MB at K = 64).
RESP_BLOCK_ELEMENTS = 2**20


def _block_rows(n_components):
    return max(256, RESP_BLOCK_ELEMENTS // n_components)


def _as_rows(X, sample_weight=None):
    """A row source for fastgmm._kmeans: an array (read in place) or a source already."""
    if isinstance(X, np.ndarray):
        return _kmeans.ArrayRows(X if X.flags.c_contiguous else np.ascontiguousarray(X),
                                 sample_weight)
    return X


def warn_if_fewer_clusters(counts, n_clusters, stacklevel=3):
    """KMeans' warning when fewer distinct clusters than asked for come out."""
    distinct_clusters = int(np.count_nonzero(counts))
    if distinct_clusters < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct_clusters}) found smaller than "
            f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


def kmeans(X, n_clusters, random_state, sample_weight=None, n_threads=None):
    """Labels and centres of KMeans(n_clusters, n_init=1, random_state).fit(X, sample_weight).

    `X` is a validated array (finite, C-contiguous float32/float64, at least
    n_clusters rows; a memmap is read in place) or a row source of
    fastgmm._kmeans; `random_state` a RandomState, which advances as KMeans
    would advance it. Runs in the native core (fastgmm._kmeans). Warns as
    KMeans does when fewer distinct clusters than n_clusters come out.
    Labels are int32, as KMeans'.
    """
    labels, centres, counts = _kmeans.kmeans(_as_rows(X, sample_weight), n_clusters,
                                             random_state, n_threads=n_threads)
    warn_if_fewer_clusters(counts, n_clusters)
    return labels, centres


def kmeans_plusplus(X, n_clusters, random_state, sample_weight=None, n_threads=None):
    """(centres, indices) of sklearn.cluster.kmeans_plusplus(X, n_clusters,
    random_state=random_state, sample_weight=sample_weight), in the native core."""
    return _kmeans.kmeans_plusplus(_as_rows(X, sample_weight), n_clusters, random_state,
                                   n_threads=n_threads)


def first_rows(labels, n_clusters):
    """The first row of every cluster (labels >= 0; -1 for a cluster without
    rows), NUMPY_BLOCK_ROWS labels at a time (np.unique sorts a copy of its input)."""
    first = np.full(n_clusters, -1, dtype=np.intp)
    for start in range(0, labels.shape[0], _kmeans.NUMPY_BLOCK_ROWS):
        present, index = np.unique(labels[start:start + _kmeans.NUMPY_BLOCK_ROWS],
                                   return_index=True)
        new = first[present] < 0
        first[present[new]] = index[new] + start
        if np.all(first >= 0):
            break
    return first


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


def stats_of_labels(X, labels, covariance_type, centers, tied_center, n_threads,
                    sample_weight=None):
    """The sufficient statistics of one-hot responsibilities, row i on
    cluster labels[i] (int32; -1: none, which counts for the tied second
    moment only), as `_stats_of_given_resp` would sum them, without the
    responsibilities: O(D) a row for diag, where those cost O(K D)."""
    code = KERNEL_COV_CODE[covariance_type]
    n_components, n_features = centers.shape
    # em_pass's layout, so its checked allocation
    stats = allocate_stats(n_slots_for(X.shape[0], covariance_type, n_components, n_features),
                           covariance_type, n_components, n_features)
    label_statistics(
        X, np.empty(0) if sample_weight is None else sample_weight, labels, centers, code,
        tied_center if covariance_type == "tied" else np.empty(0, dtype=X.dtype), stats,
        n_threads,
    )
    return stats.sum(axis=0)


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
    block = _block_rows(n_components)

    if init_params == "kmeans":
        labels, _ = kmeans(X, n_components, random_state, sample_weight, n_threads)
        # Shift each cluster by one of its own points: near its mean, and a
        # function of the labels alone. A cluster without rows has no
        # statistics, so its shift changes nothing (0 here); the data's mean
        # (a pass over X) is needed only as the tied second moment's centre.
        if covariance_type == "tied":
            center = np.mean(X, axis=0, dtype=np.float64).astype(dtype)
        else:
            center = np.zeros(X.shape[1], dtype=dtype)
        centers = np.zeros((n_components, X.shape[1]), dtype=dtype)
        first = first_rows(labels, n_components)
        present = np.flatnonzero(first >= 0)
        centers[present] = X[first[present]]
        stats = stats_of_labels(X, labels, covariance_type, centers, center, n_threads,
                                sample_weight)
        return stats, centers, center

    center = np.mean(X, axis=0, dtype=np.float64).astype(dtype)
    spread = np.ascontiguousarray(np.broadcast_to(center, (n_components, X.shape[1])))

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
        _, indices = kmeans_plusplus(X, n_components, random_state, sample_weight, n_threads)
    if covariance_type == "tied":
        # scikit-learn's tied covariance takes X^T X over every row, whatever
        # the responsibilities: pass all rows, one-hot on the chosen ones.
        # Rows with no responsibility make that formula depend on the
        # origin, so these statistics are taken about 0, as scikit-learn's.
        origin = np.zeros_like(center)
        labels = np.full(n_samples, -1, dtype=np.int32)
        labels[indices] = np.arange(n_components)
        zeros = np.zeros_like(spread)
        stats = stats_of_labels(X, labels, covariance_type, zeros, origin, n_threads,
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

