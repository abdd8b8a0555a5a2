# Per-chunk building blocks shared by the E-step kernels (_estep.pyx) and
# the fused EM pass (_suffstats.pyx): the weighted log-density of a chunk of
# rows under every component, and the max-subtracted log-sum-exp that turns
# it into responsibilities. Everything here is `inline` so that each kernel
# module compiles its own copy and no cross-module call sits in a hot loop.

from cython cimport floating
from libc.math cimport exp, log, INFINITY
from libc.string cimport memcpy

from fastgmm._kernels._blas cimport trmm_right_upper

cdef enum:
    # Rows per chunk: a chunk of X, its centred copy and the K log-densities
    # stay in L2 for D and K in the tens. Fixed, so that the partition of the
    # data (and therefore every rounding) is the same for any thread count.
    CHUNK_SIZE = 256
    # Up to this many features, products with the triangular factors are
    # direct loops: a BLAS call costs more than the D^2 / 2 flops it would do.
    SMALL_D = 8

cdef enum:
    COV_FULL = 0
    COV_TIED = 1
    COV_DIAG = 2        # 'spherical' runs as 'diag' with repeated precisions


cdef inline void rows_times_upper(
    int n_rows,                 # IN
    int D,                      # IN
    const floating *src,        # IN  n_rows x D
    const floating *upper,      # IN  D x D upper-triangular, row-major
    floating *dst,              # OUT n_rows x D: src @ upper
) noexcept nogil:
    cdef int i, j, l
    cdef floating acc
    if D <= SMALL_D:
        for i in range(n_rows):
            for j in range(D):
                acc = 0
                for l in range(j + 1):
                    acc = acc + src[i * D + l] * upper[l * D + j]
                dst[i * D + j] = acc
    else:
        memcpy(dst, src, n_rows * D * sizeof(floating))
        trmm_right_upper(n_rows, D, upper, dst)


cdef inline void weighted_log_prob(
    int cov_type,               # IN
    const floating *X,          # IN  n_rows x D, the chunk
    int n_rows,                 # IN
    int D,                      # IN
    int K,                      # IN
    const floating *means,      # IN  K x D
    const floating *prec,       # IN  full: K x D x D precision Cholesky factors (upper);
                                #     tied: D x D factor; diag: K x D precisions
    const floating *tied_center,  # IN  D (tied only): rows are centred on it
    const floating *tied_proj,    # IN  K x D (tied only): (means - tied_center) @ factor
    const double *log_const,    # IN  K: log weight + log det factor - D/2 log(2 pi)
    floating *buf1,             # SCRATCH n_rows x D
    floating *buf2,             # SCRATCH n_rows x D
    double *wlp,                # OUT n_rows x K: log w_k + log N(x_i | k)
) noexcept nogil:
    """log w_k + log N(x_i | mu_k, Sigma_k) for every row of the chunk.

    Rows are centred before any product (x - mu, not x @ U - mu @ U as
    scikit-learn does), so data far from the origin loses no precision.
    """
    cdef int i, j, k
    cdef double maha, diff
    cdef const floating *mu
    if cov_type == COV_FULL:
        for k in range(K):
            mu = means + k * D
            for i in range(n_rows):
                for j in range(D):
                    buf1[i * D + j] = X[i * D + j] - mu[j]
            rows_times_upper(n_rows, D, buf1, prec + k * D * D, buf2)
            for i in range(n_rows):
                maha = 0.0
                for j in range(D):
                    maha = maha + <double> buf2[i * D + j] * buf2[i * D + j]
                wlp[i * K + k] = log_const[k] - 0.5 * maha
    elif cov_type == COV_TIED:
        # One shared factor: project the centred chunk once, then every
        # component is a difference of projections.
        for i in range(n_rows):
            for j in range(D):
                buf1[i * D + j] = X[i * D + j] - tied_center[j]
        rows_times_upper(n_rows, D, buf1, prec, buf2)
        for i in range(n_rows):
            for k in range(K):
                maha = 0.0
                for j in range(D):
                    diff = <double> buf2[i * D + j] - tied_proj[k * D + j]
                    maha = maha + diff * diff
                wlp[i * K + k] = log_const[k] - 0.5 * maha
    else:
        for i in range(n_rows):
            for k in range(K):
                maha = 0.0
                for j in range(D):
                    diff = <double> X[i * D + j] - means[k * D + j]
                    maha = maha + diff * diff * prec[k * D + j]
                wlp[i * K + k] = log_const[k] - 0.5 * maha


cdef inline void log_normalize_rows(
    int n_rows,                 # IN
    int K,                      # IN
    double *wlp,                # INOUT n_rows x K: weighted log-probs in, responsibilities out
    double *lse,                # OUT n_rows: log sum_k exp(wlp[i, k])
) noexcept nogil:
    """Max-subtracted log-sum-exp per row; wlp becomes exp(wlp - lse)."""
    cdef int i, k
    cdef double row_max, total, norm
    cdef double *row
    for i in range(n_rows):
        row = wlp + i * K
        row_max = -INFINITY
        for k in range(K):
            if row[k] > row_max:
                row_max = row[k]
        if row_max == -INFINITY:
            # No component gives this row a finite density (it lies beyond
            # double range of every one): it carries no responsibility.
            lse[i] = -INFINITY
            for k in range(K):
                row[k] = 0.0
            continue
        total = 0.0
        for k in range(K):
            total = total + exp(row[k] - row_max)
        norm = row_max + log(total)
        lse[i] = norm
        for k in range(K):
            row[k] = exp(row[k] - norm)
