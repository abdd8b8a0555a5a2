"""Column means and variances in numpy's summation order, without its overhead.

scikit-learn's KMeans centres the data on X.mean(axis=0) and derives its
tolerance from np.var(X, axis=0); fastgmm's default initialisation repeats
those steps and must get the same bits. numpy takes 50 ms for both on
1M x 2 (an inner loop of length D per row); this takes a few. Built for the
compiler's baseline and without floating-point contraction (see _columns.h).
"""

import numpy as np

cdef extern from "_columns.h":
    void fastgmm_column_moments_d(const double *x, Py_ssize_t n, Py_ssize_t d,
                                  double *mean, double *var) noexcept nogil
    void fastgmm_column_moments_f(const float *x, Py_ssize_t n, Py_ssize_t d,
                                  float *mean, float *var) noexcept nogil


def column_moments(X):
    """(mean, var) of a C-contiguous float32/float64 (N, D) array, N >= 1, D >= 2.

    Bitwise equal to (X.mean(axis=0), X.var(axis=0)) as long as numpy sums
    over axis 0 row by row; `fastgmm._initialization` checks that once.
    """
    cdef const double[:, ::1] xd
    cdef const float[:, ::1] xf
    cdef double[::1] md, vd
    cdef float[::1] mf, vf
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"column_moments needs an (N >= 1, D >= 2) array, got shape {X.shape}")
    mean = np.empty(X.shape[1], dtype=X.dtype)
    var = np.empty(X.shape[1], dtype=X.dtype)
    if X.dtype == np.float64:
        xd = X
        md = mean
        vd = var
        with nogil:
            fastgmm_column_moments_d(&xd[0, 0], xd.shape[0], xd.shape[1], &md[0], &vd[0])
    elif X.dtype == np.float32:
        xf = X
        mf = mean
        vf = var
        with nogil:
            fastgmm_column_moments_f(&xf[0, 0], xf.shape[0], xf.shape[1], &mf[0], &vf[0])
    else:
        raise TypeError(f"column_moments needs float32 or float64, got {X.dtype}")
    return mean, var
