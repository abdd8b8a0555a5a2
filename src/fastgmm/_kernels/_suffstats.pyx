"""The fused EM pass: one sweep over X per iteration.

For every fixed-size chunk of rows: weighted log-densities under the current
parameters, log-sum-exp, responsibilities (times the sample weights), then,
still on the chunk, the sufficient statistics of the M-step:

    ll      = sum_i w_i log p(x_i)
    N_k     = sum_i r_ik
    S1_k    = sum_i r_ik (x_i - c_k)
    S2_k    = sum_i r_ik (x_i - c_k)(x_i - c_k)^T     (full: lower triangle, packed
                                                       row by row; diag: the diagonal)
    S2      = sum_i w_i (x_i - g)(x_i - g)^T           (tied: one matrix)

c_k are the means the responsibilities were computed with, and g the tied
centre. The shifted sums keep the covariance free of the E[xx^T] - mu mu^T
cancellation. No N x K or N x D array is ever formed.

Determinism: the chunks are split into `n_slots` contiguous runs, a number
fixed by the problem size and never by the thread count; each run is summed
in order by one thread into its own row of `stats`, and the caller adds the
rows in order. The result is bitwise the same on 1, 2 or 64 threads.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport sqrt
from libc.stdlib cimport calloc, free

import operator

from fastgmm._kernels._blas cimport syrk_lower_tn
from fastgmm._kernels._chunk cimport (
    CHUNK_SIZE, SMALL_K, COV_FULL, COV_TIED, COV_DIAG, SCRATCH_MAX_ENTRIES,
    chunk_rows_for, alloc_entries, check_int_dims,
    weighted_log_prob, log_normalize_rows, resp_column, pack_rows, moments_packed, transposed_copy, check_model,
    fastgmm_diag_moments_d, fastgmm_diag_moments_f, fastgmm_centred_sums_d, fastgmm_centred_sums_f,
    ROWWISE_FULL_D, TRMM_MIN_D, TILED_FULL_MAX_D, transpose_chunk, fastgmm_moments_rows_d, fastgmm_moments_rows_f,
    fastgmm_tri_moments_d, fastgmm_tri_moments_f,
    column_sums, fastgmm_weighted_centre_d, fastgmm_weighted_centre_f,
    FUSED_MAX_ROWS, FUSED_MAX_D, fastgmm_small_full_chunk_d, fastgmm_small_full_chunk_f,
)

CHUNK_ROWS = CHUNK_SIZE
ROWWISE_FULL_FEATURES = ROWWISE_FULL_D
TRMM_MIN_FEATURES = TRMM_MIN_D
TILED_FULL_MAX_FEATURES = TILED_FULL_MAX_D
SCRATCH_ENTRIES = SCRATCH_MAX_ENTRIES


cdef inline void _add_gram(
    int n_rows,
    int D,
    const floating *A,          # IN  n_rows x D
    floating *partial,          # SCRATCH D x D
    double *target,             # INOUT D x D, lower triangle += A^T A
) noexcept nogil:
    """Lower triangle of A^T A added to a float64 accumulator (syrk; float32
    data goes through a float32 partial, added once per chunk)."""
    cdef Py_ssize_t a, b
    if floating is double:
        syrk_lower_tn(n_rows, D, A, 1.0, target)
    else:
        syrk_lower_tn(n_rows, D, A, 0.0, partial)
        for a in range(D):
            for b in range(a + 1):
                target[a * D + b] += partial[a * D + b]


cdef inline void _add_gram_packed(
    int n_rows,
    int D,
    const floating *A,          # IN  n_rows x D
    floating *partial,          # SCRATCH D x D
    double *target,             # INOUT lower triangle packed row by row += A^T A
) noexcept nogil:
    """As _add_gram, into a packed lower triangle (D (D + 1) / 2 entries)."""
    cdef Py_ssize_t a, b
    cdef Py_ssize_t p = 0
    syrk_lower_tn(n_rows, D, A, 0.0, partial)
    for a in range(D):
        for b in range(a + 1):
            target[p] += partial[a * D + b]
            p += 1


cdef void _accumulate_chunk(
    int cov_type,
    const floating *X,          # IN  n_rows x D
    int n_rows,
    int D,
    int K,
    const double *weights,      # IN  n_rows sample weights, or NULL for ones
    const floating *means,      # IN  K x D: the shift centres c_k
    const floating *means_t,    # IN  D x K (diag only): the same, transposed
    const floating *tied_center,  # IN D (tied only)
    floating *resp,             # INOUT n_rows x K: responsibilities (scaled by weights here)
    floating *buf1,             # SCRATCH rows x (D + 2) (full and tied)
    floating *buf2,             # SCRATCH rows x (D + 2) (full and tied)
    floating *buf3,             # SCRATCH buf3_room entries (full, D <= TILED_FULL_MAX_D)
    size_t buf3_room,
    floating *s2_partial,       # SCRATCH D x D (float32 partial products)
    floating *chunk_sums,       # SCRATCH 2 x D x K (diag only)
    double *stat,               # INOUT this slot's row: [ll, N(K), S1(K*D), S2(...)]
) noexcept nogil:
    cdef Py_ssize_t i, j, k
    cdef int m
    cdef bint transposed
    cdef double r, w
    cdef floating *s1_t
    cdef floating *s2_t
    cdef double *n_k = stat + 1
    cdef double *s1 = n_k + K
    cdef double *s2 = s1 + <Py_ssize_t> K * D
    cdef double *s2_k
    # full: each component's S2 is its lower triangle, packed row by row
    cdef Py_ssize_t packed = <Py_ssize_t> D * (D + 1) // 2
    cdef const floating *mu

    if weights != NULL:
        for i in range(n_rows):
            for k in range(K):
                r = resp[i * K + k] * weights[i]
                if floating is float:
                    if r < 1e-30:
                        r = 0.0     # not a float32 denormal (see _fastexp.h)
                resp[i * K + k] = <floating> r

    column_sums(n_rows, K, resp, n_k)

    if cov_type == COV_FULL and D <= TILED_FULL_MAX_D:
        # Feature-major chunk in buf1; per component, its responsibilities
        # gathered contiguous at the head of buf2, the centred chunk after
        # (and, for the tiled kernel, the weighted one in buf3).
        #
        # Rows whose responsibility is exactly 0 add nothing. When at most
        # half the chunk is left for a component (and fits in buf3), its
        # rows are packed there, centred and padded to whole vectors, their
        # responsibilities at the head of buf2, and summed by moments_packed;
        # with none left, the component is skipped. The sums keep a fixed
        # order either way. The chunk is transposed only once a component
        # needs it (with far-apart components, often none does).
        transposed = False
        for k in range(K):
            m = pack_rows(n_rows, D, K, resp + k, X, means + k * D, n_rows // 2,
                          buf3_room, buf2, buf3)
            if m == 0:
                continue
            if m > 0:
                moments_packed(m, D, buf3, buf2, s1 + k * D, s2 + k * packed)
                continue
            if not transposed:
                transpose_chunk(X, n_rows, D, buf1)
                transposed = True
            resp_column(n_rows, K, resp + k, buf2)
            if D <= ROWWISE_FULL_D:
                if floating is double:
                    fastgmm_moments_rows_d(n_rows, D, buf1, means + k * D, buf2,
                                           buf2 + n_rows, s1 + k * D, s2 + k * packed)
                else:
                    fastgmm_moments_rows_f(n_rows, D, buf1, means + k * D, buf2,
                                           buf2 + n_rows, s1 + k * D, s2 + k * packed)
            else:
                if floating is double:
                    fastgmm_tri_moments_d(n_rows, D, buf1, means + k * D, buf2,
                                          buf2 + n_rows, buf3, s1 + k * D, s2 + k * packed)
                else:
                    fastgmm_tri_moments_f(n_rows, D, buf1, means + k * D, buf2,
                                          buf2 + n_rows, buf3, s1 + k * D, s2 + k * packed)
    elif cov_type == COV_FULL:
        for k in range(K):
            mu = means + k * D
            s2_k = s2 + k * packed
            # buf1: the sqrt(r)-scaled centred chunk for syrk; the chunk's
            # S1 in the data's dtype in buf2, added to the slot once.
            # Only the rows with a nonzero responsibility are kept (packed).
            if floating is double:
                m = fastgmm_weighted_centre_d(n_rows, D, K, X, mu, resp + k, buf1, buf2)
            else:
                m = fastgmm_weighted_centre_f(n_rows, D, K, X, mu, resp + k, buf1, buf2)
            if m == 0:
                continue
            for j in range(D):
                s1[k * D + j] += buf2[j]
            _add_gram_packed(m, D, buf1, s2_partial, s2_k)
    elif cov_type == COV_TIED:
        if floating is double:
            fastgmm_centred_sums_d(n_rows, K, D, X, resp, means, s1)
        else:
            fastgmm_centred_sums_f(n_rows, K, D, X, resp, means, s1)
        for i in range(n_rows):
            w = 1.0 if weights == NULL else sqrt(weights[i])
            for j in range(D):
                buf1[i * D + j] = <floating> (w * (<double> X[i * D + j] - tied_center[j]))
        _add_gram(n_rows, D, buf1, s2_partial, s2)
    else:
        # Per-chunk sums in the data's dtype on a D x K layout, components
        # innermost so the loop vectorises; added to the float64 slot once
        # per chunk.
        s1_t = chunk_sums
        s2_t = chunk_sums + <Py_ssize_t> D * K
        for j in range(2 * <Py_ssize_t> D * K):
            chunk_sums[j] = 0
        if floating is double:
            fastgmm_diag_moments_d(n_rows, K, D, X, resp, means_t, s1_t, s2_t)
        else:
            fastgmm_diag_moments_f(n_rows, K, D, X, resp, means_t, s1_t, s2_t)
        for k in range(K):
            for j in range(D):
                s1[k * D + j] += s1_t[j * K + k]
                s2[k * D + j] += s2_t[j * K + k]


def stat_size(int cov_type, n_components, n_features):
    """Length of one slot's row of sufficient statistics: 1 + K + K D + the
    second moments (full: K D (D + 1) / 2, tied: D^2, diag: K D), as an
    exact Python integer (full passes 2^31 at K = 955, D = 3000)."""
    K = operator.index(n_components)
    D = operator.index(n_features)
    if cov_type == COV_FULL:
        return 1 + K + K * D + K * (D * (D + 1) // 2)
    if cov_type == COV_TIED:
        return 1 + K + K * D + D * D
    return 1 + K + 2 * K * D


cdef struct PassScratch:
    # What one em_pass thread allocates, in entries of the data's dtype
    # (lse: doubles); 0 where that buffer is not used (1 entry is allocated).
    Py_ssize_t rows             # rows per chunk (chunk_rows_for)
    Py_ssize_t buf              # buf1 and buf2 each: rows x (D + 2), full and tied
    Py_ssize_t buf3             # rows x (D + 2), full with D <= TILED_FULL_MAX_D
    Py_ssize_t s2_partial       # D x D: full with D > TILED_FULL_MAX_D, tied float32
    Py_ssize_t resp             # rows x K
    Py_ssize_t lse              # 2 rows (doubles)
    Py_ssize_t small_k          # rows x (K + 2) when K < SMALL_K
    Py_ssize_t chunk_sums       # 2 x D x K, diag
    Py_ssize_t fused            # (K + D) x FUSED_MAX_ROWS, the fused kernel


cdef PassScratch _pass_scratch(int cov_type, Py_ssize_t K, Py_ssize_t D, bint is_float,
                               bint fused) noexcept nogil:
    """Per-thread scratch of em_pass; K and D below 2^31, so that every
    product here fits in a Py_ssize_t."""
    cdef PassScratch sc
    sc.rows = chunk_rows_for(cov_type, K, D)
    sc.buf = sc.rows * (D + 2) if cov_type != COV_DIAG else 0
    sc.buf3 = sc.buf if cov_type == COV_FULL and D <= TILED_FULL_MAX_D else 0
    sc.s2_partial = D * D if ((cov_type == COV_FULL and D > TILED_FULL_MAX_D)
                              or (cov_type == COV_TIED and is_float)) else 0
    sc.resp = sc.rows * K
    sc.lse = 2 * sc.rows
    sc.small_k = sc.rows * (K + 2) if K < SMALL_K else 0
    sc.chunk_sums = 2 * D * K if cov_type == COV_DIAG else 0
    sc.fused = (K + D) * FUSED_MAX_ROWS if fused else 0
    return sc


cdef inline bint _uses_fused(int cov_type, Py_ssize_t K, Py_ssize_t D, bint has_resp) noexcept nogil:
    # Few features and components, full covariance: one fused kernel per
    # chunk (_loops.h, small_full_chunk).
    return cov_type == COV_FULL and D <= FUSED_MAX_D and K < SMALL_K and not has_resp


def chunk_rows(int cov_type, n_components, n_features):
    """Rows per chunk of a pass: CHUNK_ROWS, fewer where K or D is so large
    that a chunk's scratch would pass SCRATCH_ENTRIES entries a buffer."""
    check_int_dims(n_components, n_features)
    return chunk_rows_for(cov_type, n_components, n_features)


def pass_scratch(int cov_type, n_components, n_features, itemsize, resp_given=False):
    """The scratch one em_pass thread allocates: a dict of entries per buffer
    (`rows`: rows per chunk), and `bytes`, their total, an exact integer.
    itemsize: 8 for float64 data, 4 for float32."""
    check_int_dims(n_components, n_features)
    if itemsize not in (4, 8):
        raise ValueError(f"itemsize must be 4 or 8, got {itemsize}")
    cdef PassScratch sc = _pass_scratch(
        cov_type, n_components, n_features, itemsize == 4,
        _uses_fused(cov_type, n_components, n_features, resp_given))
    sizes = dict(sc)
    total = 0
    for name, entries in sizes.items():
        if name != "rows":
            total += max(entries, 1) * (8 if name == "lse" else itemsize)
    sizes["bytes"] = total
    return sizes


def em_pass(
    const floating[:, ::1] X,               # IN  n_samples x D
    const double[::1] sample_weight,        # IN  n_samples, or empty for unit weights
    const floating[:, ::1] means,           # IN  K x D: E-step means, also the shift centres
    const floating[::1] prec,               # IN  precision factors, flattened (see _chunk.pxd)
    const floating[::1] tied_center,        # IN  D for 'tied', else empty
    const floating[:, ::1] tied_proj,       # IN  K x D for 'tied', else empty
    const double[::1] log_const,            # IN  K
    const floating[:, ::1] resp_given,      # IN  n_samples x K to skip the E-step, else empty
    int cov_type,
    double[:, ::1] stats,                   # OUT n_slots x stat_size, zeroed by the caller
    int n_threads,
):
    """Accumulate the sufficient statistics of one EM iteration into `stats`.

    With `resp_given` non-empty the responsibilities are taken from it (used
    to initialise from k-means labels or random responsibilities) and the
    log-likelihood slot stays 0. MemoryError when a thread's scratch cannot
    be allocated (`pass_scratch` gives its size).
    """
    cdef Py_ssize_t n_samples = X.shape[0]
    cdef int D, K
    cdef Py_ssize_t n_slots = stats.shape[0]
    cdef Py_ssize_t rows, n_chunks
    cdef bint has_weights = sample_weight.shape[0] > 0
    cdef bint has_resp = resp_given.shape[0] > 0
    cdef Py_ssize_t slot, chunk, first, last, start, i, k
    cdef int n_rows
    cdef PassScratch sc
    cdef floating *buf1 = NULL
    cdef floating *buf2 = NULL
    cdef floating *buf3 = NULL
    cdef floating *s2_partial = NULL
    cdef floating *resp = NULL
    cdef double *lse = NULL
    cdef floating *small_k = NULL
    cdef floating *wlp_t = NULL
    cdef double *stat
    cdef double ll
    cdef floating *chunk_sums = NULL
    cdef floating *fused_buf = NULL
    cdef bint fused, failed
    cdef bint ok = False
    cdef char *thread_failed
    cdef const floating *tied_center_ptr = NULL
    cdef floating *means_t = NULL
    cdef floating *aux_t = NULL
    cdef const double *weights_ptr

    # K and D become C ints (BLAS takes int dimensions): refuse larger first
    check_int_dims(means.shape[0], X.shape[1])
    D = <int> X.shape[1]
    K = <int> means.shape[0]
    check_model(cov_type, D, K, means.shape[0], means.shape[1], prec.shape[0],
                tied_center.shape[0], tied_proj.shape[0], tied_proj.shape[1],
                log_const.shape[0], not has_resp)
    if stats.shape[1] != stat_size(cov_type, K, D) or n_slots < 1:
        raise ValueError(f"stats must have shape (n_slots, {stat_size(cov_type, K, D)})")
    if has_weights and sample_weight.shape[0] != n_samples:
        raise ValueError("sample_weight must have one entry per row of X")
    if has_resp and (resp_given.shape[0] != n_samples or resp_given.shape[1] != K):
        raise ValueError(f"resp_given must have shape ({n_samples}, {K})")
    if n_samples == 0:
        return
    fused = _uses_fused(cov_type, K, D, has_resp)
    sc = _pass_scratch(cov_type, K, D, floating is float, fused)
    rows = sc.rows
    n_chunks = (n_samples + rows - 1) // rows
    n_threads = <int> max(1, min(<Py_ssize_t> n_threads, n_slots))
    thread_failed = <char *> calloc(n_threads, 1)
    if thread_failed == NULL:
        raise MemoryError("em_pass: cannot allocate its thread flags")
    try:
        if cov_type == COV_TIED:
            tied_center_ptr = &tied_center[0]
            if not has_resp:
                aux_t = transposed_copy(&tied_proj[0, 0], K, D)
        elif cov_type == COV_DIAG:
            means_t = transposed_copy(&means[0, 0], K, D)
            if not has_resp:
                aux_t = transposed_copy(&prec[0], K, D)
    except MemoryError:
        free(thread_failed)
        free(means_t)
        free(aux_t)
        raise

    with nogil, parallel(num_threads=n_threads):
        buf1 = <floating *> alloc_entries(sc.buf, sizeof(floating))
        buf2 = <floating *> alloc_entries(sc.buf, sizeof(floating))
        buf3 = <floating *> alloc_entries(sc.buf3, sizeof(floating))
        s2_partial = <floating *> alloc_entries(sc.s2_partial, sizeof(floating))
        resp = <floating *> alloc_entries(sc.resp, sizeof(floating))
        lse = <double *> alloc_entries(sc.lse, sizeof(double))
        small_k = <floating *> alloc_entries(sc.small_k, sizeof(floating))
        # Full covariance on the feature-major path with few components: the
        # log-densities go straight to the normalisation's transposed scratch.
        wlp_t = small_k if (cov_type == COV_FULL and D <= TILED_FULL_MAX_D
                            and K < SMALL_K) else NULL
        chunk_sums = <floating *> alloc_entries(sc.chunk_sums, sizeof(floating))
        # the fused kernel's scratch: its rows and responsibilities
        fused_buf = <floating *> alloc_entries(sc.fused, sizeof(floating))
        ok = (buf1 != NULL and buf2 != NULL and buf3 != NULL and s2_partial != NULL
              and resp != NULL and lse != NULL and small_k != NULL
              and chunk_sums != NULL and fused_buf != NULL)
        if not ok:
            # raised once the threads are done; this one sums nothing
            thread_failed[threadid()] = 1

        # Dynamic: a thread that finishes its slot takes the next one, so a
        # core shared with another process slows the pass less (speech, 2
        # threads beside a busy loop: 255-269 -> 238-245 ms); each slot is
        # still summed whole, in order, into its own row.
        for slot in prange(n_slots, schedule='dynamic'):
            if not ok:
                continue
            stat = &stats[slot, 0]
            first = slot * n_chunks // n_slots
            last = (slot + 1) * n_chunks // n_slots
            for chunk in range(first, last):
                start = chunk * rows
                n_rows = <int> min(rows, n_samples - start)
                if has_weights:
                    weights_ptr = &sample_weight[start]
                else:
                    weights_ptr = NULL
                if fused:
                    if floating is double:
                        fastgmm_small_full_chunk_d(n_rows, D, K, &X[start, 0], weights_ptr,
                                                   &means[0, 0], &prec[0], &log_const[0],
                                                   fused_buf, stat)
                    else:
                        fastgmm_small_full_chunk_f(n_rows, D, K, &X[start, 0], weights_ptr,
                                                   &means[0, 0], &prec[0], &log_const[0],
                                                   fused_buf, stat)
                    continue
                if has_resp:
                    for i in range(n_rows):
                        for k in range(K):
                            resp[i * K + k] = resp_given[start + i, k]
                else:
                    weighted_log_prob(
                        cov_type, &X[start, 0], n_rows, D, K, &means[0, 0],
                        &prec[0], tied_center_ptr, &log_const[0], means_t, aux_t,
                        buf1, buf2, resp, wlp_t,
                    )
                    log_normalize_rows(n_rows, K, resp, lse, lse + rows, small_k,
                                       wlp_t != NULL)
                    ll = 0.0
                    for i in range(n_rows):
                        if weights_ptr == NULL:
                            ll = ll + lse[i]
                        elif weights_ptr[i] != 0.0:
                            # a zero weight drops the row, even one with lse = -inf
                            ll = ll + weights_ptr[i] * lse[i]
                    stat[0] = stat[0] + ll
                _accumulate_chunk(
                    cov_type, &X[start, 0], n_rows, D, K, weights_ptr,
                    &means[0, 0], means_t, tied_center_ptr, resp, buf1, buf2, buf3,
                    <size_t> sc.buf3, s2_partial, chunk_sums, stat,
                )

        free(buf1)
        free(buf2)
        free(buf3)
        free(s2_partial)
        free(resp)
        free(lse)
        free(small_k)
        free(chunk_sums)
        free(fused_buf)
    free(means_t)
    free(aux_t)
    failed = False
    for i in range(n_threads):
        failed = failed or thread_failed[i] != 0
    free(thread_failed)
    if failed:
        sizes = pass_scratch(cov_type, K, D, sizeof(floating), has_resp)
        raise MemoryError(
            f"em_pass: cannot allocate a thread's scratch ({sizes['bytes'] / 2**30:.2f} GiB "
            f"a thread for K={K} components of D={D} features, {rows} rows a chunk, on "
            f"{n_threads} threads). Use fewer components"
            + (" or covariance_type='diag'." if cov_type != COV_DIAG else " or features.")
        )
