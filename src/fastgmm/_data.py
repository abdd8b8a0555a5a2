"""Where a fit's rows come from, and the passes of the native core over them.

Every data source offers the same small interface to the fit loop in
`_base`: `n_samples`, `n_features`, `dtype`, `total_weight`,
`max_block_rows`, `passes()` (the (rows, weights) blocks of one pass),
`statistics(workspace, kernel, n_threads)` (the summed sufficient
statistics of one EM pass), `initial_statistics(...)` and
`prior_moments(full)` (the weighted mean and covariance of the rows, the
Bayesian mixture's default priors). The sources are:

- `InMemoryData` here: a validated array, or a numpy.memmap streamed
  through without a copy;
- `fastgmm._batches.BatchData`: a re-iterable source of row batches;
- `fastgmm._dask.DaskData`: a Dask array, summed block by block on the
  workers (imported only when a Dask array arrives).

None of them imports an estimator.
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.utils.validation import _check_sample_weight

from fastgmm import _parameters as P
from fastgmm._initialization import initial_statistics
from fastgmm._kernels._dispatch import em_pass, estimate
from fastgmm._reliability import far_row_responsibilities
from fastgmm._threads import blas_single_threaded

# Rows per block when a source's moments are summed (a D x D product a block).
MOMENT_BLOCK_ROWS = 65536


class Workspace:
    """The statistics buffer, allocated once per fit (sized for the largest
    block of rows) and reused by every pass."""

    def __init__(self, data, covariance_type, n_components):
        n_slots = P.n_slots_for(data.max_block_rows, covariance_type, n_components,
                                data.n_features)
        self.covariance_type = covariance_type
        # MemoryError naming the size and the way out (fewer components,
        # 'diag') rather than numpy's bare one, or none at all
        self.stats = P.allocate_stats(n_slots, covariance_type, n_components,
                                      data.n_features)
        self.no_weights = np.empty(0, dtype=np.float64)
        self.no_resp = np.empty((0, n_components), dtype=data.dtype)

    def accumulate(self, X, sample_weight, kernel, n_threads):
        """Summed sufficient statistics of one block of rows."""
        n_slots = P.n_slots_for(X.shape[0], self.covariance_type, self.no_resp.shape[1],
                                X.shape[1])
        stats = self.stats[:n_slots]
        stats.fill(0.0)
        em_pass(
            X, self.no_weights if sample_weight is None else sample_weight, *kernel.args(),
            self.no_resp, kernel.code, stats, n_threads,
        )
        return stats.sum(axis=0)


def fit_weights(sample_weight):
    """The weights a fit runs on: None when they are all equal, else the
    weights rescaled to a mean of 1.

    A fit must not depend on a common scale of the weights. Equal weights
    change nothing, so the unweighted path runs (bitwise the unweighted fit).
    Other weights are brought to a mean of one row's weight: scikit-learn's
    M-step adds 10 eps (absolute, in rows) to every N_k, which is no longer
    negligible when the weights are tiny (1e-20), and float32 k-means would
    round weights below 1e-45 to 0; the Bayesian mixture's priors count in
    rows too. `score`, `bic` and `aic` keep the weights as given.
    """
    if sample_weight is None:
        return None
    largest = sample_weight.max()
    if sample_weight.min() == largest:
        return None
    weights = sample_weight / largest          # in [0, 1]: the sum cannot overflow
    weights *= weights.shape[0] / weights.sum()
    return weights


def blocked_moments(passes, n_features, full):
    """(weighted mean, weighted covariance with one degree of freedom taken)
    of the rows of `passes()`, float64, in two passes of MOMENT_BLOCK_ROWS
    rows at a time (no copy of X). The covariance is D x D when `full`, else
    its diagonal. With weights w (of mean 1, as `fit_weights` leaves them)
    the divisor is sum w - 1, numpy's for frequency weights.
    """
    total = np.zeros(n_features)
    weight_sum = 0.0
    for X, w in passes():
        for start in range(0, X.shape[0], MOMENT_BLOCK_ROWS):
            block = X[start : start + MOMENT_BLOCK_ROWS]
            if w is None:
                total += block.sum(axis=0, dtype=np.float64)
                weight_sum += block.shape[0]
            else:
                part = w[start : start + MOMENT_BLOCK_ROWS]
                total += part @ block.astype(np.float64)
                weight_sum += float(part.sum())
    mean = total / weight_sum
    scatter = np.zeros((n_features, n_features) if full else n_features)
    for X, w in passes():
        for start in range(0, X.shape[0], MOMENT_BLOCK_ROWS):
            centred = X[start : start + MOMENT_BLOCK_ROWS].astype(np.float64) - mean
            weighted = (centred if w is None
                        else centred * w[start : start + MOMENT_BLOCK_ROWS, None])
            if full:
                scatter += weighted.T @ centred
            else:
                scatter += np.einsum("nd,nd->d", weighted, centred)
    return mean, scatter / (weight_sum - 1.0)


class InMemoryData:
    """X (validated, C-ordered) and its sample weights, as one block.
    The weights are those of `fit_weights` (None when all equal, else of
    mean 1)."""

    def __init__(self, X, sample_weight):
        sample_weight = fit_weights(sample_weight)
        self.X = X
        self.sample_weight = sample_weight
        self.n_samples, self.n_features = X.shape
        self.max_block_rows = self.n_samples
        self.dtype = X.dtype
        self.total_weight = (
            float(self.n_samples) if sample_weight is None else float(sample_weight.sum())
        )

    def passes(self):
        yield self.X, self.sample_weight

    def statistics(self, workspace, kernel, n_threads):
        """Summed sufficient statistics of one EM pass under `kernel`."""
        return workspace.accumulate(self.X, self.sample_weight, kernel, n_threads)

    def initial_statistics(self, init_params, n_components, random_state, covariance_type,
                           n_threads):
        return initial_statistics(
            self.X, init_params, n_components, random_state, covariance_type, n_threads,
            self.sample_weight,
        )

    def prior_moments(self, full):
        return blocked_moments(self.passes, self.n_features, full)


def is_dask_array(X):
    """Whether X is a dask.array.Array, without importing dask: if dask.array
    was never imported, X cannot be one."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(X, dask_array.Array)


def validate_sample_weight(sample_weight, X, n_components) -> np.ndarray | None:
    """None, or a C-contiguous float64 array of finite non-negative weights,
    one per row of X, with at least n_components of them positive."""
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    n_positive = int(np.count_nonzero(sample_weight))
    if n_positive < n_components:
        raise ValueError(
            f"sample_weight has only {n_positive} positive weights, fewer than "
            f"n_components = {n_components}: each component needs a sample of its own. "
            "Lower n_components or give more samples a positive weight."
        )
    return np.ascontiguousarray(sample_weight)


def cast_params(params, dtype):
    return tuple(np.asarray(p, dtype=dtype) for p in params)


def estimate_rows(X, params, covariance_type, n_threads, labels=None, log_prob=None,
                  resp=None):
    """Run the chunked E-step kernel on X, filling whichever outputs are given.

    `params` is a `KernelParams` (any estimator's E-step) or a Gaussian
    mixture's (weights, means, covariances, precisions_cholesky).

    Rows so far from every component that their log-densities overflow the
    dtype's range (log p(x) = -inf), or are rounded by more than one nat,
    get their labels and probabilities from `far_row_responsibilities` (the
    nearest component wins; float32 rows are first redone in float64);
    log p(x) is the kernel's (-inf: the value rounded to the dtype).
    """
    dtype = X.dtype
    kernel = P.as_kernel(params, covariance_type, dtype)
    n_components = kernel.means.shape[0]
    if log_prob is None and (labels is not None or resp is not None):
        # To find the rows beyond the float range: N more numbers than asked for.
        row_log_prob = np.empty(X.shape[0], dtype=dtype)
    else:
        row_log_prob = log_prob
    with blas_single_threaded():
        estimate(
            X, *kernel.args(), kernel.code,
            labels if labels is not None else np.empty(0, dtype=np.int64),
            row_log_prob if row_log_prob is not None else np.empty(0, dtype=dtype),
            resp if resp is not None else np.empty((0, n_components), dtype=dtype),
            n_threads,
        )
    if labels is None and resp is None:
        return
    # Also the rows whose log-density is so large that its rounding passes one
    # nat (|log p| eps > 1): there the components' differences are lost in it
    # (tied components at 1e50 .. 1e150 gave 0.5 / 0.5, where the far-row
    # comparison, exact for tied, gives the nearest), and that comparison is
    # at least as good as the kernel's for every type.
    with np.errstate(over="ignore"):
        far = np.flatnonzero(np.isneginf(row_log_prob)
                             | (row_log_prob * np.finfo(dtype).eps < -1))
    if far.size == 0:
        return
    n_far = far.size
    far_labels = np.empty(n_far, dtype=np.int64)
    far_resp = np.empty((n_far, n_components))
    if dtype != np.float64:
        # Beyond float32's range, perhaps not float64's: the same kernel in float64.
        far_log_prob = np.empty(n_far)
        estimate_rows(X[far].astype(np.float64), kernel.astype(np.float64), covariance_type,
                      1, labels=far_labels, log_prob=far_log_prob, resp=far_resp)
        if log_prob is not None:
            with np.errstate(over="ignore"):     # rounds to -inf in float32
                log_prob[far] = far_log_prob
    else:
        far_resp = far_row_responsibilities(X[far], kernel.log_weights, kernel.means64,
                                            kernel.chol64, covariance_type)
        far_labels = far_resp.argmax(axis=1)
    if resp is not None:
        resp[far] = far_resp
    if labels is not None:
        labels[far] = far_labels
