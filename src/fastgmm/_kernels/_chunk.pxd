# Per-chunk building blocks shared by the E-step kernels (_estep.pyx) and
# the fused EM pass (_suffstats.pyx): the weighted log-density of a chunk of
# rows under every component, and the max-subtracted log-sum-exp that turns
# it into responsibilities. Everything here is `inline` so that each kernel
# module compiles its own copy and no cross-module call sits in a hot loop.

from cython cimport floating
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.limits cimport INT_MAX
from libc.math cimport exp, log, INFINITY
from libc.stdlib cimport malloc
from libc.string cimport memcpy

from fastgmm._kernels._blas cimport gemm_nn, trmm_right_upper

cdef extern from "_fastexp.h":
    double fastgmm_exp(double x) noexcept nogil
    double fastgmm_log_ge1(double x) noexcept nogil
    float fastgmm_expf(float x) noexcept nogil

cdef extern from "_loops.h":
    # Fewer components than this: log_normalize_rows works on the transposed
    # chunk.
    enum: SMALL_K "FASTGMM_SMALL_K"
    void fastgmm_log_normalize_small_d(int n, int K, double *wlp, double *lse, double *s, int transposed_in) noexcept nogil
    void fastgmm_log_normalize_small_f(int n, int K, float *wlp, double *lse, float *s, int transposed_in) noexcept nogil
    void fastgmm_centred_sums_d(int n, int K, int D, const double *X, const double *r, const double *mu, double *s1) noexcept nogil
    void fastgmm_centred_sums_f(int n, int K, int D, const float *X, const float *r, const float *mu, double *s1) noexcept nogil
    void fastgmm_sq_dist_rows_d(int n, int K, int D, const double *X, const double *c, const double *p, double *out) noexcept nogil
    void fastgmm_sq_dist_rows_f(int n, int K, int D, const float *X, const float *c, const float *p, float *out) noexcept nogil
    void fastgmm_diag_moments_d(int n, int K, int D, const double *X, const double *r, const double *c, double *s1, double *s2) noexcept nogil
    void fastgmm_diag_moments_f(int n, int K, int D, const float *X, const float *r, const float *c, float *s1, float *s2) noexcept nogil
    void fastgmm_maha_rows_d(int n, int D, const double *xt, const double *mu, const double *U, double *y, double *maha) noexcept nogil
    void fastgmm_maha_rows_f(int n, int D, const float *xt, const float *mu, const float *U, float *y, float *maha) noexcept nogil
    void fastgmm_moments_rows_d(int n, int D, const double *xt, const double *mu, const double *r, double *d, double *s1, double *s2) noexcept nogil
    void fastgmm_moments_rows_f(int n, int D, const float *xt, const float *mu, const float *r, float *d, double *s1, double *s2) noexcept nogil
    void fastgmm_transpose_d(int n, int D, const double *X, double *xt) noexcept nogil
    void fastgmm_transpose_f(int n, int D, const float *X, float *xt) noexcept nogil
    void fastgmm_column_sums_d(int n, int K, const double *resp, double *out) noexcept nogil
    void fastgmm_column_sums_f(int n, int K, const float *resp, double *out) noexcept nogil
    void fastgmm_centre_d(int n, int D, const double *X, const double *mu, double *out) noexcept nogil
    void fastgmm_centre_f(int n, int D, const float *X, const float *mu, float *out) noexcept nogil
    void fastgmm_log_density_col_d(int n, int D, const double *Y, double c, int K, double *wlp_col) noexcept nogil
    void fastgmm_log_density_col_f(int n, int D, const float *Y, double c, int K, float *wlp_col) noexcept nogil
    void fastgmm_log_density_rows_d(int n, int K, const double *c, double *wlp) noexcept nogil
    void fastgmm_row_max_d(int n, int K, const double *x, double *out) noexcept nogil
    void fastgmm_row_max_f(int n, int K, const float *x, double *out) noexcept nogil
    void fastgmm_row_totals_d(int n, int K, const double *x, double *out) noexcept nogil
    void fastgmm_row_totals_f(int n, int K, const float *x, double *out) noexcept nogil
    void fastgmm_log_density_rows_f(int n, int K, const double *c, float *wlp) noexcept nogil
    int fastgmm_weighted_centre_d(int n, int D, int K, const double *X, const double *mu, const double *resp, double *out, double *s1_chunk) noexcept nogil
    int fastgmm_weighted_centre_f(int n, int D, int K, const float *X, const float *mu, const float *resp, float *out, float *s1_chunk) noexcept nogil
    void fastgmm_diag_rows_d(int n, int K, int D, const double *X, const double *c, const double *p, double *out) noexcept nogil
    void fastgmm_diag_rows_f(int n, int K, int D, const float *X, const float *c, const float *p, float *out) noexcept nogil
    void fastgmm_resp_column_d(int n, int stride, const double *resp, double *out) noexcept nogil
    void fastgmm_resp_column_f(int n, int stride, const float *resp, float *out) noexcept nogil
    int fastgmm_pack_rows_d(int n, int D, int stride, const double *resp, const double *X, const double *mu, int max_m, size_t room, double *r_out, double *d_out) noexcept nogil
    int fastgmm_pack_rows_f(int n, int D, int stride, const float *resp, const float *X, const float *mu, int max_m, size_t room, float *r_out, float *d_out) noexcept nogil
    void fastgmm_moments_packed_d(int m, int D, const double *d, const double *r, double *s1, double *s2) noexcept nogil
    void fastgmm_moments_packed_f(int m, int D, const float *d, const float *r, double *s1, double *s2) noexcept nogil
    void fastgmm_tri_maha_d(int n, int D, const double *xt, const double *mu, const double *U, double *d, double *maha) noexcept nogil
    void fastgmm_tri_maha_f(int n, int D, const float *xt, const float *mu, const float *U, float *d, float *maha) noexcept nogil
    void fastgmm_tri_moments_d(int n, int D, const double *xt, const double *mu, const double *r, double *d, double *e, double *s1, double *s2) noexcept nogil
    void fastgmm_tri_moments_f(int n, int D, const float *xt, const float *mu, const float *r, float *d, float *e, double *s1, double *s2) noexcept nogil
    # Full covariance, D <= FUSED_MAX_D and K < SMALL_K: a chunk's whole EM
    # pass in one kernel; buf is scratch of (K + D) FUSED_MAX_ROWS entries.
    enum: FUSED_MAX_ROWS "FASTGMM_FUSED_MAX_ROWS"
    enum: FUSED_MAX_D "FASTGMM_FUSED_MAX_D"
    void fastgmm_small_full_chunk_d(int n, int D, int K, const double *X, const double *w, const double *mu, const double *U, const double *log_const, double *buf, double *stat) noexcept nogil
    void fastgmm_small_full_chunk_f(int n, int D, int K, const float *X, const double *w, const float *mu, const float *U, const double *log_const, float *buf, double *stat) noexcept nogil


cdef inline void resp_column(
    int n,                      # IN
    int stride,                 # IN
    const floating *resp,       # IN  n entries, `stride` apart
    floating *out,              # OUT n, contiguous
) noexcept nogil:
    if floating is double:
        fastgmm_resp_column_d(n, stride, resp, out)
    else:
        fastgmm_resp_column_f(n, stride, resp, out)


cdef inline int pack_rows(
    int n,                      # IN
    int D,                      # IN
    int stride,                 # IN
    const floating *resp,       # IN  n entries, `stride` apart
    const floating *X,          # IN  n x D, the chunk's rows
    const floating *mu,         # IN  D, the component's shift
    int max_m,                  # IN  pack at most this many rows
    size_t room,                # IN  entries d_out can hold
    floating *r_out,            # OUT m (when the result m > 0)
    floating *d_out,            # OUT m x D padded to whole vectors (same)
) noexcept nogil:
    """m > 0 rows packed, 0 (no row has a responsibility), or -1 (not packed)."""
    if floating is double:
        return fastgmm_pack_rows_d(n, D, stride, resp, X, mu, max_m, room, r_out, d_out)
    else:
        return fastgmm_pack_rows_f(n, D, stride, resp, X, mu, max_m, room, r_out, d_out)


cdef inline void moments_packed(
    int m,                      # IN
    int D,                      # IN
    const floating *d,          # IN  m packed centred rows (from pack_rows)
    const floating *r,          # IN  m
    double *s1,                 # INOUT D
    double *s2,                 # INOUT D (D + 1) / 2, packed lower triangle
) noexcept nogil:
    if floating is double:
        fastgmm_moments_packed_d(m, D, d, r, s1, s2)
    else:
        fastgmm_moments_packed_f(m, D, d, r, s1, s2)


cdef inline void column_sums(
    int n,                      # IN
    int K,                      # IN
    const floating *resp,       # IN  n x K
    double *out,                # INOUT K: += the column sums, in double
) noexcept nogil:
    if floating is double:
        fastgmm_column_sums_d(n, K, resp, out)
    else:
        fastgmm_column_sums_f(n, K, resp, out)


cdef inline void transpose_chunk(
    const floating *X,          # IN  n_rows x D
    int n_rows,
    int D,
    floating *xt,               # OUT D x n_rows
) noexcept nogil:
    if floating is double:
        fastgmm_transpose_d(n_rows, D, X, xt)
    else:
        fastgmm_transpose_f(n_rows, D, X, xt)

cdef enum:
    # Rows per chunk: a chunk of X, its centred copy and the K log-densities
    # stay in L2 for D and K in the tens. Fixed, so that the partition of the
    # data (and therefore every rounding) is the same for any thread count.
    CHUNK_SIZE = 256
    # Up to this many features the full kernel works feature-major on the
    # chunk (its rows innermost, vectorised): for tiny D a per-component
    # BLAS call on a 256 x D block is nearly all overhead.
    ROWWISE_FULL_D = 4
    # From this many features the triangular product (trmm, D^2 flops a
    # row) beats gemm on the factor's full square (2 D^2); below, gemm's
    # better kernels win (one thread, 100k x {32, 48} x 16: trmm 15% faster;
    # 50k x 128 x 32: E-step 1083 -> 739 ms; equal at D = 16).
    TRMM_MIN_D = 24
    # Full covariance up to this many features runs feature-major in
    # register tiles (_loops.h: tri_maha, tri_moments) instead of BLAS. One
    # thread, K = 16, ms per pass float64 / float32, tiles vs BLAS:
    # D = 16: 116 / 56 vs 200 / 244 (200k rows); D = 32: 118 / 65 vs
    # 160 / 121; D = 64: 145 / 63 vs 162 / 127; D = 96: 467 / 247 vs
    # 567 / 348 (20k rows); D = 128: 615 / 447 vs 623 / 194 (20k rows).
    TILED_FULL_MAX_D = 96
    # A chunk's per-thread scratch is rows x (K + 2) (responsibilities) and,
    # for full and tied, rows x (D + 2) (centred and projected rows). Above
    # this many entries in one such buffer (256 MB in float64: K or D past
    # 131,070) a chunk takes fewer rows, down to one, instead of CHUNK_SIZE,
    # so that a huge K or D does not need CHUNK_SIZE x K entries a thread
    # (17 GB for K = 2^23). Below it (every normal size) chunks, and so
    # every rounding, are as they always were.
    SCRATCH_MAX_ENTRIES = 1 << 25

cdef enum:
    COV_FULL = 0
    COV_TIED = 1
    COV_DIAG = 2        # 'spherical' runs as 'diag' with repeated precisions


# Sizes, offsets and allocations. K, D and a chunk's row count fit in an
# int (checked at every entry point: BLAS takes int dimensions), but any
# product of two of them may not: every such product is taken in
# Py_ssize_t (64-bit), and every allocation goes through alloc_entries.

cdef inline Py_ssize_t chunk_rows_for(int cov_type, Py_ssize_t K, Py_ssize_t D) noexcept nogil:
    """Rows per chunk: CHUNK_SIZE, or fewer (at least 1) where a chunk's
    widest scratch buffer would pass SCRATCH_MAX_ENTRIES. A function of
    (cov_type, K, D) alone, never of the thread count."""
    cdef Py_ssize_t width = K + 2
    if cov_type != COV_DIAG and D + 2 > width:
        width = D + 2
    if width * CHUNK_SIZE <= SCRATCH_MAX_ENTRIES:
        return CHUNK_SIZE
    if width >= SCRATCH_MAX_ENTRIES:
        return 1
    return SCRATCH_MAX_ENTRIES // width


cdef inline void *alloc_entries(Py_ssize_t n, size_t itemsize) noexcept nogil:
    """malloc of n entries of itemsize bytes (at least one entry), or NULL
    when it fails or n x itemsize does not fit in a Py_ssize_t (never a
    wrapped, too-small size)."""
    if n < 1:
        n = 1
    if <size_t> n > <size_t> PY_SSIZE_T_MAX / itemsize:
        return NULL
    return malloc(<size_t> n * itemsize)


cdef inline int check_int_dims(Py_ssize_t n_components, Py_ssize_t n_features) except -1:
    """The kernels and BLAS take K and D as C ints: refuse larger ones
    before any is cast."""
    if n_components > INT_MAX or n_features > INT_MAX:
        raise ValueError(
            f"{n_components} components of {n_features} features: the native kernels "
            f"(and the BLAS they call, which takes int dimensions) handle at most "
            f"{INT_MAX} (2^31 - 1) of each."
        )
    return 0


cdef inline void rows_times_upper(
    int n_rows,                 # IN
    int D,                      # IN
    const floating *src,        # IN  n_rows x D
    const floating *upper,      # IN  D x D upper-triangular, row-major
    floating *dst,              # OUT n_rows x D: src @ upper
) noexcept nogil:
    # OpenBLAS on a 256-row chunk beat direct loops at every D measured
    # (one thread, 1M x 2 x 3 and 400k x {4, 6, 8} x 16 full); the full
    # kernel avoids this call only for D <= ROWWISE_FULL_D.
    if D < TRMM_MIN_D:
        gemm_nn(n_rows, D, D, src, upper, 0.0, dst)
    else:
        memcpy(dst, src, <size_t> n_rows * D * sizeof(floating))
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
    const double *log_const,    # IN  K: log weight + log det factor - D/2 log(2 pi)
    const floating *means_t,    # IN  D x K (diag only): means, transposed
    const floating *aux_t,      # IN  D x K: diag precisions, or (tied) the projected
                                #     centred means (means - tied_center) @ factor, transposed
    floating *buf1,             # SCRATCH n_rows x (D + 2)
    floating *buf2,             # SCRATCH n_rows x (D + 2)
    floating *wlp,              # OUT n_rows x K: log w_k + log N(x_i | k), in the data's dtype
    floating *wlp_t,            # OUT K x n_rows instead of wlp (full, D <= TILED_FULL_MAX_D
                                #     only), or NULL
) noexcept nogil:
    """log w_k + log N(x_i | mu_k, Sigma_k) for every row of the chunk.

    Rows are centred before any product (x - mu, not x @ U - mu @ U as
    scikit-learn does), so data far from the origin loses no precision.
    Diag and tied loop over components innermost, on transposed (D x K)
    parameters: contiguous and free of reductions, so the compiler
    vectorises them across components.
    """
    cdef Py_ssize_t i, k
    cdef Py_ssize_t DD = <Py_ssize_t> D * D
    cdef const floating *mu
    cdef floating *mh
    if cov_type == COV_FULL and D <= TILED_FULL_MAX_D:
        # Feature-major: the chunk transposed once into buf1, every loop
        # then runs over rows in vector registers (see _loops.h).
        transpose_chunk(X, n_rows, D, buf1)
        for k in range(K):
            if D <= ROWWISE_FULL_D:
                mh = buf2 + n_rows if wlp_t == NULL else wlp_t + k * n_rows
                if floating is double:
                    fastgmm_maha_rows_d(n_rows, D, buf1, means + k * D, prec + k * DD,
                                        buf2, mh)
                else:
                    fastgmm_maha_rows_f(n_rows, D, buf1, means + k * D, prec + k * DD,
                                        buf2, mh)
            else:
                mh = buf2 + <Py_ssize_t> D * n_rows if wlp_t == NULL else wlp_t + k * n_rows
                if floating is double:
                    fastgmm_tri_maha_d(n_rows, D, buf1, means + k * D, prec + k * DD,
                                       buf2, mh)
                else:
                    fastgmm_tri_maha_f(n_rows, D, buf1, means + k * D, prec + k * DD,
                                       buf2, mh)
            if wlp_t == NULL:
                for i in range(n_rows):
                    wlp[i * K + k] = log_const[k] - 0.5 * mh[i]
            else:
                # component-major, contiguous: no strided store
                for i in range(n_rows):
                    mh[i] = log_const[k] - 0.5 * mh[i]
    elif cov_type == COV_FULL:
        # D > TILED_FULL_MAX_D >= TRMM_MIN_D: the centred chunk goes straight
        # into buf2 and trmm works on it in place (rows_times_upper would
        # copy it there first: 2-3% of a pass at D = 128).
        for k in range(K):
            mu = means + k * D
            if floating is double:
                fastgmm_centre_d(n_rows, D, X, mu, buf2)
            else:
                fastgmm_centre_f(n_rows, D, X, mu, buf2)
            trmm_right_upper(n_rows, D, prec + k * DD, buf2)
            if floating is double:
                fastgmm_log_density_col_d(n_rows, D, buf2, log_const[k], K, wlp + k)
            else:
                fastgmm_log_density_col_f(n_rows, D, buf2, log_const[k], K, wlp + k)
    else:
        # Tied and diag: the (weighted) squared distances into wlp, then
        # the log-densities in place.
        if cov_type == COV_TIED:
            # One shared factor: project the centred chunk once, then every
            # component is a difference of projections.
            if floating is double:
                fastgmm_centre_d(n_rows, D, X, tied_center, buf1)
            else:
                fastgmm_centre_f(n_rows, D, X, tied_center, buf1)
            rows_times_upper(n_rows, D, buf1, prec, buf2)
            if floating is double:
                fastgmm_sq_dist_rows_d(n_rows, K, D, buf2, aux_t, NULL, wlp)
            else:
                fastgmm_sq_dist_rows_f(n_rows, K, D, buf2, aux_t, NULL, wlp)
        else:
            if floating is double:
                fastgmm_diag_rows_d(n_rows, K, D, X, means_t, aux_t, wlp)
            else:
                fastgmm_diag_rows_f(n_rows, K, D, X, means_t, aux_t, wlp)
        if floating is double:
            fastgmm_log_density_rows_d(n_rows, K, log_const, wlp)
        else:
            fastgmm_log_density_rows_f(n_rows, K, log_const, wlp)


cdef inline floating *transposed_copy(
    const floating *a,          # IN  rows x cols, row-major
    Py_ssize_t rows,
    Py_ssize_t cols,
) except? NULL:
    """A malloc'd cols x rows copy of `a` (the caller frees it); MemoryError
    when it cannot be allocated."""
    cdef floating *out = <floating *> alloc_entries(rows * cols, sizeof(floating))
    cdef Py_ssize_t r, c
    if out == NULL:
        raise MemoryError(
            f"cannot allocate a transposed copy of the {rows} x {cols} parameters "
            f"({rows * cols * sizeof(floating) / 2.0**30:.2f} GiB)")
    for r in range(rows):
        for c in range(cols):
            out[c * rows + r] = a[r * cols + c]
    return out


cdef inline void log_normalize_rows(
    int n_rows,                 # IN
    int K,                      # IN
    floating *wlp,              # INOUT n_rows x K: weighted log-probs in, responsibilities out
    double *lse,                # OUT n_rows: log sum_k exp(wlp[i, k])
    double *totals,             # SCRATCH n_rows
    floating *small_k,          # SCRATCH (K + 2) n_rows when K < SMALL_K, else unused
    bint transposed_in,         # IN  K < SMALL_K only: the log-probs are in small_k,
                                #     K x n_rows (weighted_log_prob's wlp_t), not in wlp
) noexcept nogil:
    """Max-subtracted log-sum-exp per row; wlp becomes exp(wlp - lse).

    In the data's dtype: float32 data gets float32 exponentials (twice the
    vector lanes; entries under 1e-30 are 0, see _fastexp.h), but lse, the
    per-row log-likelihood, is always double. Fewer than SMALL_K components:
    the same arithmetic on the transposed chunk, in C (see _loops.h).
    """
    cdef Py_ssize_t i, k
    cdef floating row_max, total, inv_total
    cdef floating *row
    if K < SMALL_K:
        if floating is double:
            fastgmm_log_normalize_small_d(n_rows, K, wlp, lse, small_k, transposed_in)
        else:
            fastgmm_log_normalize_small_f(n_rows, K, wlp, lse, small_k, transposed_in)
        return
    # Three sweeps, so that the exponentials run as one flat loop over the
    # chunk's n_rows x K entries: it vectorises whatever K is (K = 3 would
    # leave a per-row loop over components scalar).
    # The rows' maxima and totals in C, eight rows at a time (each row's
    # chain in order, the same bits as row by row; _loops.h).
    if floating is double:
        fastgmm_row_max_d(n_rows, K, wlp, lse)
    else:
        fastgmm_row_max_f(n_rows, K, wlp, lse)
    for i in range(n_rows):
        row = wlp + i * K
        row_max = <floating> lse[i]
        if row_max == -INFINITY:
            continue        # every entry is -inf: exp gives 0
        for k in range(K):
            row[k] = row[k] - row_max
    if floating is double:
        for i in range(<Py_ssize_t> n_rows * K):
            wlp[i] = fastgmm_exp(wlp[i])
    else:
        for i in range(<Py_ssize_t> n_rows * K):
            wlp[i] = fastgmm_expf(wlp[i])
    if floating is double:
        fastgmm_row_totals_d(n_rows, K, wlp, totals)
    else:
        fastgmm_row_totals_f(n_rows, K, wlp, totals)
    for i in range(n_rows):
        row = wlp + i * K
        total = <floating> totals[i]
        if total == 0.0:
            # No component gives this row a finite density (it lies beyond
            # double range of every one): it carries no responsibility.
            lse[i] = -INFINITY
            continue
        inv_total = 1.0 / total
        for k in range(K):
            row[k] = row[k] * inv_total
    # total >= 1 (the maximum contributes exp(0) = 1), or 0 where lse is
    # already -inf: one vectorised log over the chunk.
    for i in range(n_rows):
        lse[i] = lse[i] + fastgmm_log_ge1(totals[i])


cdef inline int check_model(
    int cov_type, Py_ssize_t n_features, Py_ssize_t n_components,
    Py_ssize_t means_rows, Py_ssize_t means_cols, Py_ssize_t prec_size,
    Py_ssize_t tied_center_size, Py_ssize_t tied_proj_rows, Py_ssize_t tied_proj_cols,
    Py_ssize_t log_const_size, bint need_prec,
) except -1:
    """The kernels index raw memory by K and D: refuse inconsistent shapes."""
    cdef Py_ssize_t K = n_components, D = n_features
    if cov_type != COV_FULL and cov_type != COV_TIED and cov_type != COV_DIAG:
        raise ValueError(f"unknown covariance code {cov_type}")
    if K < 1 or means_rows != K or means_cols != D:
        raise ValueError(
            f"means have shape ({means_rows}, {means_cols}); expected ({K}, {D}) "
            "for data with {D} features".format(D=D))
    if log_const_size != K:
        raise ValueError(f"log_const has {log_const_size} entries; expected {K}")
    if cov_type == COV_TIED and (tied_center_size != D or (
            need_prec and (tied_proj_rows != K or tied_proj_cols != D))):
        raise ValueError("tied covariance needs a centre of D entries and K x D projections")
    # expected sizes in Python integers: K D^2 may pass even 2^63
    cdef object k_py = K, d_py = D
    if need_prec:
        if cov_type == COV_FULL and prec_size != k_py * d_py * d_py:
            raise ValueError(f"full precision factors have {prec_size} entries; "
                             f"expected {k_py * d_py * d_py}")
        if cov_type == COV_TIED and prec_size != d_py * d_py:
            raise ValueError(f"tied precision factor has {prec_size} entries; "
                             f"expected {d_py * d_py}")
        if cov_type == COV_DIAG and prec_size != k_py * d_py:
            raise ValueError(f"diagonal precisions have {prec_size} entries; "
                             f"expected {k_py * d_py}")
    return 0
