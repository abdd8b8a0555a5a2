"""Column means and variances in numpy's summation order, without its overhead.

scikit-learn's KMeans centres the data on X.mean(axis=0) and derives its
tolerance from np.var(X, axis=0); fastgmm's default initialisation repeats
those steps and must get the same bits. numpy takes 50 ms for both on
1M x 2 (an inner loop of length D per row); this takes a few. Built for the
compiler's baseline and without floating-point contraction (see _columns.h).
"""

from cython cimport floating

import numpy as np

cdef extern from "_columns.h":
    void fastgmm_column_moments_d(const double *x, Py_ssize_t n, Py_ssize_t d,
                                  double *mean, double *var) noexcept nogil
    void fastgmm_column_moments_f(const float *x, Py_ssize_t n, Py_ssize_t d,
                                  float *mean, float *var) noexcept nogil


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
