"""Chunked E-step outputs for a fitted model: labels, log p(x) and responsibilities.

predict, score_samples and predict_proba call this once; it allocates
nothing of size N x K beyond the output the caller asked for.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport calloc, free

from fastgmm._kernels._chunk cimport (
    CHUNK_SIZE, SMALL_K, COV_FULL, COV_TIED, COV_DIAG, weighted_log_prob, log_normalize_rows,
    transposed_copy, check_model, fastgmm_exp, fastgmm_expf, fastgmm_log_ge1,
    chunk_rows_for, alloc_entries, check_int_dims,
)


cdef struct EstimateScratch:
    # What one estimate thread allocates, in entries of the data's dtype
    # (lse: doubles); 0 where unused (1 entry is allocated).
    Py_ssize_t rows             # rows per chunk (chunk_rows_for)
    Py_ssize_t buf              # buf1 and buf2 each: rows x (D + 2), full and tied
    Py_ssize_t wlp              # rows x K
    Py_ssize_t lse              # 2 rows (doubles)
    Py_ssize_t small_k          # rows x (K + 2) when K < SMALL_K


cdef EstimateScratch _estimate_scratch(int cov_type, Py_ssize_t K, Py_ssize_t D,
                                       Py_ssize_t n_samples) noexcept nogil:
    """Per-thread scratch of estimate. Rows are independent here, so a chunk
    never holds more rows than there are (predicting one row with a huge K
    needs one row of K, not CHUNK_SIZE)."""
    cdef EstimateScratch sc
    sc.rows = chunk_rows_for(cov_type, K, D)
    if n_samples < sc.rows:
        sc.rows = max(n_samples, 1)
    sc.buf = sc.rows * (D + 2) if cov_type != COV_DIAG else 0
    sc.wlp = sc.rows * K
    sc.lse = 2 * sc.rows
    sc.small_k = sc.rows * (K + 2) if K < SMALL_K else 0
    return sc


def estimate_scratch(int cov_type, n_components, n_features, itemsize, n_samples):
    """The scratch one estimate thread allocates for n_samples rows: a dict of
    entries per buffer (`rows`: rows per chunk) and `bytes`, their total, an
    exact integer. itemsize: 8 for float64 data, 4 for float32."""
    check_int_dims(n_components, n_features)
    if itemsize not in (4, 8):
        raise ValueError(f"itemsize must be 4 or 8, got {itemsize}")
    sizes = dict(_estimate_scratch(cov_type, n_components, n_features, n_samples))
    total = 0
    for name, entries in sizes.items():
        if name != "rows":
            total += max(entries, 1) * (8 if name == "lse" else itemsize)
    sizes["bytes"] = total
    return sizes


def estimate(
    const floating[:, ::1] X,               # IN  n_samples x D
    const floating[:, ::1] means,           # IN  K x D
    const floating[::1] prec,               # IN  precision factors, flattened
    const floating[::1] tied_center,        # IN  D for 'tied', else empty
    const floating[:, ::1] tied_proj,       # IN  K x D for 'tied', else empty
    const double[::1] log_const,            # IN  K
    int cov_type,
    long long[::1] out_labels,              # OUT n_samples argmax_k, or empty
    floating[::1] out_log_prob,             # OUT n_samples log p(x_i), or empty
    floating[:, ::1] out_resp,              # OUT n_samples x K responsibilities, or empty
    int n_threads,
):
    """Fill whichever of the three outputs is non-empty. MemoryError when a
    thread's scratch cannot be allocated (`estimate_scratch` gives its size)."""
    cdef Py_ssize_t n_samples = X.shape[0]
    cdef int D, K
    cdef Py_ssize_t rows, n_chunks
    cdef bint want_labels = out_labels.shape[0] > 0
    cdef bint want_log_prob = out_log_prob.shape[0] > 0
    cdef bint want_resp = out_resp.shape[0] > 0
    cdef Py_ssize_t chunk, start, i, k, best
    cdef int n_rows
    cdef double best_value
    cdef EstimateScratch sc
    cdef floating *buf1 = NULL
    cdef floating *buf2 = NULL
    cdef floating *wlp = NULL
    cdef double *lse = NULL
    cdef floating *small_k = NULL
    cdef bint failed
    cdef bint ok = False
    cdef char *thread_failed
    cdef const floating *tied_center_ptr = NULL
    cdef floating *means_t = NULL
    cdef floating *aux_t = NULL

    # K and D become C ints (BLAS takes int dimensions): refuse larger first
    check_int_dims(means.shape[0], X.shape[1])
    D = <int> X.shape[1]
    K = <int> means.shape[0]
    check_model(cov_type, D, K, means.shape[0], means.shape[1], prec.shape[0],
                tied_center.shape[0], tied_proj.shape[0], tied_proj.shape[1],
                log_const.shape[0], True)
    if want_labels and out_labels.shape[0] != n_samples:
        raise ValueError("out_labels must have one entry per row of X")
    if want_log_prob and out_log_prob.shape[0] != n_samples:
        raise ValueError("out_log_prob must have one entry per row of X")
    if want_resp and (out_resp.shape[0] != n_samples or out_resp.shape[1] != K):
        raise ValueError(f"out_resp must have shape ({n_samples}, {K})")
    if n_samples == 0:
        return
    sc = _estimate_scratch(cov_type, K, D, n_samples)
    rows = sc.rows
    n_chunks = (n_samples + rows - 1) // rows
    n_threads = <int> max(1, min(<Py_ssize_t> n_threads, n_chunks))
    thread_failed = <char *> calloc(n_threads, 1)
    if thread_failed == NULL:
        raise MemoryError("estimate: cannot allocate its thread flags")
    try:
        if cov_type == COV_TIED:
            tied_center_ptr = &tied_center[0]
            aux_t = transposed_copy(&tied_proj[0, 0], K, D)
        elif cov_type == COV_DIAG:
            means_t = transposed_copy(&means[0, 0], K, D)
            aux_t = transposed_copy(&prec[0], K, D)
    except MemoryError:
        free(thread_failed)
        free(means_t)
        free(aux_t)
        raise

    with nogil, parallel(num_threads=n_threads):
        buf1 = <floating *> alloc_entries(sc.buf, sizeof(floating))
        buf2 = <floating *> alloc_entries(sc.buf, sizeof(floating))
        wlp = <floating *> alloc_entries(sc.wlp, sizeof(floating))
        lse = <double *> alloc_entries(sc.lse, sizeof(double))
        small_k = <floating *> alloc_entries(sc.small_k, sizeof(floating))
        ok = (buf1 != NULL and buf2 != NULL and wlp != NULL and lse != NULL
              and small_k != NULL)
        if not ok:
            # raised once the threads are done; this one computes nothing
            thread_failed[threadid()] = 1

        for chunk in prange(n_chunks, schedule='dynamic'):
            if not ok:
                continue
            start = chunk * rows
            n_rows = <int> min(rows, n_samples - start)
            weighted_log_prob(
                cov_type, &X[start, 0], n_rows, D, K, &means[0, 0], &prec[0],
                tied_center_ptr, &log_const[0], means_t, aux_t, buf1, buf2, wlp, NULL,
            )
            if want_labels:
                # The first maximum wins, as numpy's argmax does.
                for i in range(n_rows):
                    best = 0
                    best_value = wlp[i * K]
                    for k in range(1, K):
                        if wlp[i * K + k] > best_value:
                            best_value = wlp[i * K + k]
                            best = k
                    out_labels[start + i] = best
            if want_log_prob or want_resp:
                log_normalize_rows(n_rows, K, wlp, lse, lse + rows, small_k, False)
                if want_log_prob:
                    for i in range(n_rows):
                        out_log_prob[start + i] = <floating> lse[i]
                if want_resp:
                    for i in range(n_rows):
                        for k in range(K):
                            out_resp[start + i, k] = <floating> wlp[i * K + k]

        free(buf1)
        free(buf2)
        free(wlp)
        free(lse)
        free(small_k)
    free(means_t)
    free(aux_t)
    failed = False
    for i in range(n_threads):
        failed = failed or thread_failed[i] != 0
    free(thread_failed)
    if failed:
        sizes = estimate_scratch(cov_type, K, D, sizeof(floating), n_samples)
        raise MemoryError(
            f"estimate: cannot allocate a thread's scratch ({sizes['bytes'] / 2**30:.2f} GiB "
            f"a thread for K={K} components of D={D} features, {rows} rows a chunk, on "
            f"{n_threads} threads)."
        )


def kernel_math(str function, const double[::1] x, double[::1] out):
    """out = the kernels' own "exp", "expf" (float32: x and the result
    rounded to float32) or "log_ge1" (log for x >= 1) of x, elementwise:
    exposed so the tests can hold them against libm."""
    cdef Py_ssize_t i
    cdef int which
    if function == "exp":
        which = 0
    elif function == "expf":
        which = 1
    elif function == "log_ge1":
        which = 2
    else:
        raise ValueError(f"unknown function {function!r}: 'exp', 'expf' or 'log_ge1'")
    if out.shape[0] != x.shape[0]:
        raise ValueError("out must have the length of x")
    with nogil:
        for i in range(x.shape[0]):
            if which == 0:
                out[i] = fastgmm_exp(x[i])
            elif which == 1:
                out[i] = fastgmm_expf(<float> x[i])
            else:
                out[i] = fastgmm_log_ge1(x[i])
