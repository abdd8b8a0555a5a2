"""Chunked E-step outputs for a fitted model: labels, log p(x) and responsibilities.

predict, score_samples and predict_proba call this once; it allocates
nothing of size N x K beyond the output the caller asked for.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from fastgmm._kernels._chunk cimport (
    CHUNK_SIZE, SMALL_K, COV_TIED, COV_DIAG, weighted_log_prob, log_normalize_rows, transposed_copy,
    check_model, fastgmm_exp, fastgmm_expf, fastgmm_log_ge1,
)


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
    """Fill whichever of the three outputs is non-empty."""
    cdef Py_ssize_t n_samples = X.shape[0]
    cdef int D = <int> X.shape[1]
    cdef int K = <int> means.shape[0]
    cdef Py_ssize_t n_chunks = (n_samples + CHUNK_SIZE - 1) // CHUNK_SIZE
    cdef bint want_labels = out_labels.shape[0] > 0
    cdef bint want_log_prob = out_log_prob.shape[0] > 0
    cdef bint want_resp = out_resp.shape[0] > 0
    cdef Py_ssize_t chunk, start
    cdef int n_rows, i, k, best
    cdef double best_value
    cdef floating *buf1
    cdef floating *buf2
    cdef floating *wlp
    cdef double *lse
    cdef floating *small_k
    cdef const floating *tied_center_ptr = NULL
    cdef floating *means_t = NULL
    cdef floating *aux_t = NULL

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
    if cov_type == COV_TIED:
        tied_center_ptr = &tied_center[0]
        aux_t = transposed_copy(&tied_proj[0, 0], K, D)
    elif cov_type == COV_DIAG:
        means_t = transposed_copy(&means[0, 0], K, D)
        aux_t = transposed_copy(&prec[0], K, D)
    n_threads = <int> max(1, min(<Py_ssize_t> n_threads, n_chunks))

    with nogil, parallel(num_threads=n_threads):
        buf1 = <floating *> malloc(CHUNK_SIZE * (D + 2) * sizeof(floating))
        buf2 = <floating *> malloc(CHUNK_SIZE * (D + 2) * sizeof(floating))
        wlp = <floating *> malloc(CHUNK_SIZE * K * sizeof(floating))
        lse = <double *> malloc(2 * CHUNK_SIZE * sizeof(double))
        small_k = <floating *> malloc(CHUNK_SIZE * (K + 2 if K < SMALL_K else 1)
                                      * sizeof(floating))

        for chunk in prange(n_chunks, schedule='dynamic'):
            start = chunk * CHUNK_SIZE
            n_rows = <int> min(<Py_ssize_t> CHUNK_SIZE, n_samples - start)
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
                log_normalize_rows(n_rows, K, wlp, lse, lse + CHUNK_SIZE, small_k, False)
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
