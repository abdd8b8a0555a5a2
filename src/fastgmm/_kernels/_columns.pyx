"""numpy's summation orders, reproduced without numpy's overhead or temporaries.

- Column means and variances: scikit-learn's KMeans centres the data on
  X.mean(axis=0) and derives its tolerance from np.var(X, axis=0);
  fastgmm's k-means repeats those steps and must get the same bits. numpy
  takes 50 ms for both on 1M x 2 (an inner loop of length D per row); this
  takes a few, and streams (column_sums / column_sq_devs, block by block).
- The k-means++ draws: RandomState.choice(n, p=w / w.sum()) for the first
  centre and np.searchsorted(np.cumsum(w * closest), r) for the candidates,
  as sequential sweeps over the N-long arrays, without their N-long
  temporaries.

Built for the compiler's baseline and without floating-point contraction
(see _columns.h).
"""

from cython cimport floating

import numpy as np

cdef extern from "_columns.h":
    void fastgmm_column_moments_d(const double *x, Py_ssize_t n, Py_ssize_t d,
                                  double *mean, double *var) noexcept nogil
    void fastgmm_column_moments_f(const float *x, Py_ssize_t n, Py_ssize_t d,
                                  float *mean, float *var) noexcept nogil
    void fastgmm_column_sums_d(const double *x, Py_ssize_t n, Py_ssize_t d,
                               double *acc) noexcept nogil
    void fastgmm_column_sums_f(const float *x, Py_ssize_t n, Py_ssize_t d,
                               float *acc) noexcept nogil
    void fastgmm_column_sq_devs_d(const double *x, Py_ssize_t n, Py_ssize_t d,
                                  const double *mean, double *acc) noexcept nogil
    void fastgmm_column_sq_devs_f(const float *x, Py_ssize_t n, Py_ssize_t d,
                                  const float *mean, float *acc) noexcept nogil
    Py_ssize_t fastgmm_first_draw_d(const double *w, Py_ssize_t n, double total,
                                    double u) noexcept nogil
    Py_ssize_t fastgmm_first_draw_f(const float *w, Py_ssize_t n, float total,
                                    double u) noexcept nogil
    enum: CUMSUM_BLOCK "FASTGMM_CUMSUM_BLOCK"
    int fastgmm_cumsum_search_blocked_d(const double *w, const double *d, Py_ssize_t n,
                                        const double *r, Py_ssize_t m, Py_ssize_t *out,
                                        double *block) noexcept nogil
    void fastgmm_cumsum_search_d(const double *w, const double *d, Py_ssize_t n,
                                 const double *r, Py_ssize_t m, Py_ssize_t *out) noexcept nogil
    void fastgmm_cumsum_search_f(const float *w, const float *d, Py_ssize_t n,
                                 const double *r, Py_ssize_t m, Py_ssize_t *out) noexcept nogil


cdef void _fill(const floating[:, ::1] X, floating[::1] mean, floating[::1] var) noexcept:
    with nogil:
        if floating is double:
            fastgmm_column_moments_d(&X[0, 0], X.shape[0], X.shape[1], &mean[0], &var[0])
        else:
            fastgmm_column_moments_f(&X[0, 0], X.shape[0], X.shape[1], &mean[0], &var[0])


def column_moments(X):
    """(mean, var) of a C-contiguous float32/float64 (N, D) array, N >= 1, D >= 2.

    Bitwise equal to (X.mean(axis=0), X.var(axis=0)) as long as numpy sums
    over axis 0 row by row; `fastgmm._initialization` checks that once.
    """
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"column_moments needs an (N >= 1, D >= 2) array, got shape {X.shape}")
    if X.dtype != np.float64 and X.dtype != np.float32:
        raise TypeError(f"column_moments needs float32 or float64, got {X.dtype}")
    mean = np.empty(X.shape[1], dtype=X.dtype)
    var = np.empty(X.shape[1], dtype=X.dtype)
    if X.dtype == np.float64:
        _fill[double](X, mean, var)
    else:
        _fill[float](X, mean, var)
    return mean, var


def column_sums(const floating[:, ::1] X, floating[::1] acc):
    """acc[j] += X[i, j] for every row i in order, in X's dtype (numpy's axis-0 order)."""
    if acc.shape[0] != X.shape[1]:
        raise ValueError(f"acc must have {X.shape[1]} entries")
    if X.shape[0] == 0 or X.shape[1] == 0:
        return
    with nogil:
        if floating is double:
            fastgmm_column_sums_d(&X[0, 0], X.shape[0], X.shape[1], &acc[0])
        else:
            fastgmm_column_sums_f(&X[0, 0], X.shape[0], X.shape[1], &acc[0])


def column_sq_devs(const floating[:, ::1] X, const floating[::1] mean, floating[::1] acc):
    """acc[j] += (X[i, j] - mean[j])**2 for every row i in order, each square in X's dtype."""
    if acc.shape[0] != X.shape[1] or mean.shape[0] != X.shape[1]:
        raise ValueError(f"mean and acc must have {X.shape[1]} entries")
    if X.shape[0] == 0 or X.shape[1] == 0:
        return
    with nogil:
        if floating is double:
            fastgmm_column_sq_devs_d(&X[0, 0], X.shape[0], X.shape[1], &mean[0], &acc[0])
        else:
            fastgmm_column_sq_devs_f(&X[0, 0], X.shape[0], X.shape[1], &mean[0], &acc[0])


def first_draw(const floating[::1] weights, Py_ssize_t n_samples, floating total, double u):
    """The index RandomState.choice(n_samples, p=weights / total) returns when its
    uniform draw is u; empty weights stand for np.ones(n_samples) (total: their
    sum as numpy computes it, in the weights' dtype)."""
    cdef Py_ssize_t index
    cdef const floating *w = NULL
    if weights.shape[0] != 0 and weights.shape[0] != n_samples:
        raise ValueError(f"weights must have {n_samples} entries or none")
    if n_samples < 1:
        raise ValueError("no rows to draw from")
    if weights.shape[0] != 0:
        w = &weights[0]
    with nogil:
        if floating is double:
            index = fastgmm_first_draw_d(w, n_samples, total, u)
        else:
            index = fastgmm_first_draw_f(w, n_samples, total, u)
    return index


# Rows up to which cumsum_search first tries the blocked search: its margin
# grows with n, and with it how often a threshold falls too near a sum.
BLOCKED_SEARCH_MAX_ROWS = 2**23


cdef bint _blocked_search(const double *w, const double *values, Py_ssize_t n,
                          const double[::1] thresholds, Py_ssize_t[::1] out) except -1:
    cdef double[::1] block = np.empty((n + CUMSUM_BLOCK - 1) // CUMSUM_BLOCK + 1)
    cdef int done
    with nogil:
        done = fastgmm_cumsum_search_blocked_d(w, values, n, &thresholds[0],
                                               thresholds.shape[0], &out[0], &block[0])
    return done != 0


def cumsum_search_blocked(const double[::1] weights, const double[::1] values,
                          const double[::1] thresholds):
    """cumsum_search's blocked search alone (float64, n >= 1, thresholds
    ascending): its answer, or None where it leaves the search to the
    sequential sweep (a threshold too near a sum, a term < 0 or not finite)."""
    cdef Py_ssize_t n = values.shape[0]
    out = np.empty(thresholds.shape[0], dtype=np.intp)
    if n == 0 or thresholds.shape[0] == 0 or (weights.shape[0] not in (0, n)):
        raise ValueError("values must be non-empty, thresholds too, weights n or none")
    if _blocked_search(&weights[0] if weights.shape[0] else NULL, &values[0], n, thresholds,
                       out):
        return out
    return None


def cumsum_search(const floating[::1] weights, const floating[::1] values,
                  const double[::1] thresholds, bint nonnegative=False):
    """np.searchsorted(np.cumsum(weights * values), thresholds) for ascending
    thresholds (side='left'; len(values) where a threshold exceeds every sum),
    with the products and the running sum in the values' dtype; empty weights:
    np.cumsum(values).

    `nonnegative`: the caller promises weights and values >= 0 (or NaN);
    float64 sums then first try the blocked search (_columns.h), the same
    answer without the running sum's chain of n dependent adds."""
    cdef Py_ssize_t n = values.shape[0], m = thresholds.shape[0], k
    cdef const floating *w = NULL
    out = np.empty(m, dtype=np.intp)
    cdef Py_ssize_t[::1] out_view = out
    if weights.shape[0] != 0 and weights.shape[0] != n:
        raise ValueError(f"weights must have {n} entries or none")
    for k in range(1, m):
        if not thresholds[k - 1] <= thresholds[k]:
            raise ValueError("thresholds must be sorted ascending")
    if m == 0:
        return out
    if n == 0:
        out[:] = 0
        return out
    if weights.shape[0] != 0:
        w = &weights[0]
    if floating is double and nonnegative and n <= BLOCKED_SEARCH_MAX_ROWS:
        if _blocked_search(w, &values[0], n, thresholds, out_view):
            return out
    with nogil:
        if floating is double:
            fastgmm_cumsum_search_d(w, &values[0], n, &thresholds[0], m, &out_view[0])
        else:
            fastgmm_cumsum_search_f(w, &values[0], n, &thresholds[0], m, &out_view[0])
    return out
