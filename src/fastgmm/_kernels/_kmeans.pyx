"""k-means kernels: Lloyd steps and k-means++ potentials, one pass over X each.

Every pass splits the rows into chunks of CHUNK_ROWS = 256; within a
chunk, rows are centred a few at a time (y = x - shift, in the data's
dtype) and their dot products with the centres computed in registers
(_kmeans.h), each tile consumed at once:

    lloyd_pass           the first nearest centre of every row, then the
                         chunk's per-cluster counts, weights and weighted
                         sums of y, and how many labels changed
    kmeanspp_potentials  sum_i w_i min(closest_i, d(y_i, c_m)) for every
                         k-means++ candidate c_m, and a byte of bits a row:
                         the candidates that come nearer to it than its
                         nearest seed
    kmeanspp_closest     closest_i = min(closest_i, d(y_i, c)) and the
                         nearest seed, for the chosen candidate c, on the
                         rows whose bit is set (or d(y_i, c) for the first
                         seed, and sum_i w_i closest_i)

No N x K (or N x candidates) array exists; closest (N, the data's dtype),
nearest and labels (N, int32) and the bits (N bytes) are the caller's.

Determinism: the chunks are split into `n_slots` contiguous runs (the
number of rows of the caller's output, fixed by the problem size, never by
the thread count); each run is summed in order by one thread into its own
row, and the caller adds the rows in order. Per-row outputs (labels,
closest) do not depend on threads at all. Sums are in double whatever the
data's dtype.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int32_t, SIZE_MAX
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free

cdef extern from "_kmeans.h":
    enum: KM_CHUNK "FASTGMM_KM_CHUNK"
    enum: KM_ROWS "FASTGMM_KM_ROWS"
    enum: KM_MARKS "FASTGMM_KM_MARKS"
    Py_ssize_t fastgmm_km_vector_lanes_d() noexcept nogil
    Py_ssize_t fastgmm_km_vector_lanes_f() noexcept nogil
    Py_ssize_t fastgmm_km_padded_d(Py_ssize_t K) noexcept nogil
    Py_ssize_t fastgmm_km_padded_f(Py_ssize_t K) noexcept nogil
    Py_ssize_t fastgmm_km_marked_lanes_d() noexcept nogil
    Py_ssize_t fastgmm_km_marked_lanes_f() noexcept nogil
    void fastgmm_km_pack_d(Py_ssize_t K, Py_ssize_t D, const double *c, Py_ssize_t kp, double *ct, double *cn) noexcept nogil
    void fastgmm_km_pack_f(Py_ssize_t K, Py_ssize_t D, const float *c, Py_ssize_t kp, float *ct, float *cn) noexcept nogil
    void fastgmm_km_nearest_chunk_d(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const double *X, const double *shift, const double *ct, const double *cn, double *yb, double *dots, int *labels) noexcept nogil
    void fastgmm_km_nearest_chunk_f(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const float *X, const float *shift, const float *ct, const float *cn, float *yb, float *dots, int *labels) noexcept nogil
    void fastgmm_km_potentials_chunk_d(Py_ssize_t n, Py_ssize_t D, Py_ssize_t M, const double *X, const double *shift, const double *ct, const double *cn, const double *w, const double *closest, const int *nearest, const double *reach, Py_ssize_t *rows, double *yb, double *dots, unsigned char *improve, double *pot, double *marked) noexcept nogil
    void fastgmm_km_potentials_chunk_f(Py_ssize_t n, Py_ssize_t D, Py_ssize_t M, const float *X, const float *shift, const float *ct, const float *cn, const float *w, const float *closest, const int *nearest, const double *reach, Py_ssize_t *rows, float *yb, float *dots, unsigned char *improve, double *pot, double *marked) noexcept nogil
    void fastgmm_km_closest_chunk_d(Py_ssize_t n, Py_ssize_t D, const double *X, const double *shift, const double *ct, const double *cn, const double *w, int init, int label, const unsigned char *improve, unsigned bit, const double *reach, double *closest, int *nearest, Py_ssize_t *rows, double *yb, double *dots, double *pot) noexcept nogil
    void fastgmm_km_closest_chunk_f(Py_ssize_t n, Py_ssize_t D, const float *X, const float *shift, const float *ct, const float *cn, const float *w, int init, int label, const unsigned char *improve, unsigned bit, const double *reach, float *closest, int *nearest, Py_ssize_t *rows, float *yb, float *dots, double *pot) noexcept nogil
    void fastgmm_km_label_stats_chunk_d(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const double *X, const double *w, const int *labels, const double *centres, int cov, const double *tied_centre, double *d, double *stat) noexcept nogil
    void fastgmm_km_label_stats_chunk_f(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const float *X, const double *w, const int *labels, const float *centres, int cov, const float *tied_centre, double *d, double *stat) noexcept nogil
    void fastgmm_km_nearest_bounded_chunk_d(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const double *X, const double *shift, const double *ct, const double *cn, const int *labels, const double *delta, double delta_max, double e, double cmax2, float *gap, Py_ssize_t *rows, double *yb, double *dots, int *fresh) noexcept nogil
    void fastgmm_km_nearest_bounded_chunk_f(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const float *X, const float *shift, const float *ct, const float *cn, const int *labels, const double *delta, double delta_max, double e, double cmax2, float *gap, Py_ssize_t *rows, float *yb, float *dots, int *fresh) noexcept nogil
    float fastgmm_km_down_d(double g) noexcept nogil
    void fastgmm_km_lloyd_sums_chunk_d(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const double *X, const double *shift, const double *w, const int *fresh, int *labels, int update, double *stat) noexcept nogil
    void fastgmm_km_lloyd_sums_chunk_f(Py_ssize_t n, Py_ssize_t D, Py_ssize_t K, const float *X, const float *shift, const float *w, const int *fresh, int *labels, int update, double *stat) noexcept nogil

CHUNK_ROWS = KM_CHUNK
# Chunks a closest pass takes at a time once the seed is chosen (it sums
# nothing then, so the order is free): its few rows a chunk (speech: 4 of
# 256) are gathered, and only a longer list lets them be prefetched ahead.
cdef enum:
    GATHER_CHUNKS = 64
# Candidates per k-means++ step that kmeanspp_potentials marks row by row (a byte of bits).
MAX_MARKED_CANDIDATES = KM_MARKS


def lloyd_stat_size(Py_ssize_t n_clusters, Py_ssize_t n_features):
    """Length of one slot's row of lloyd_pass: changes, counts, weights, sums."""
    return 1 + 2 * n_clusters + n_clusters * n_features


cdef void *_alloc(Py_ssize_t count, size_t item) except NULL:
    """malloc(count * item), at least one byte; MemoryError when it fails or overflows."""
    cdef void *p
    if count < 0 or (count > 0 and <size_t> count > SIZE_MAX // item):
        raise MemoryError(f"k-means scratch of {count} x {item} bytes")
    p = malloc(<size_t> count * item if count > 0 else 1)
    if p == NULL:
        raise MemoryError(f"k-means scratch of {count} x {item} bytes")
    return p


cdef Py_ssize_t _product(Py_ssize_t a, Py_ssize_t b) except -1:
    """a * b for sizes, MemoryError beyond 2**62 (no scratch can be that large)."""
    if a > 0 and b > (<Py_ssize_t> 1 << 62) // a:
        raise MemoryError(f"k-means scratch of {a} x {b} elements")
    return a * b


cdef inline Py_ssize_t _padded(floating dummy, Py_ssize_t K) noexcept nogil:
    """Lanes of K packed centres; K = -1: of the k-means++ candidates."""
    if floating is double:
        return fastgmm_km_padded_d(K) if K >= 0 else fastgmm_km_marked_lanes_d()
    else:
        return fastgmm_km_padded_f(K) if K >= 0 else fastgmm_km_marked_lanes_f()


cdef int _check_common(Py_ssize_t n, Py_ssize_t D, Py_ssize_t shift_len,
                       Py_ssize_t weight_len) except -1:
    if D < 1:
        raise ValueError("X must have at least one feature")
    if shift_len != D:
        raise ValueError(f"shift must have {D} entries, one per feature; got {shift_len}")
    if weight_len != 0 and weight_len != n:
        raise ValueError(f"sample_weight must have one entry per row ({n}) or none; "
                         f"got {weight_len}")
    return 0


cdef class _Scratch:
    """The centres packed for the kernels (shared) and every thread's scratch:
    allocated with the GIL held (MemoryError, never a crash), freed on exit."""
    cdef void *ct
    cdef void *cn
    cdef void *yb
    cdef void *dots
    cdef Py_ssize_t *rows
    cdef int *fresh
    cdef Py_ssize_t kp, yb_elems, dots_elems

    def __dealloc__(self):
        free(self.ct)
        free(self.cn)
        free(self.yb)
        free(self.dots)
        free(self.rows)
        free(self.fresh)


cdef _Scratch _scratch(const floating[:, ::1] centres, Py_ssize_t D, int n_threads,
                       bint candidates=False, Py_ssize_t rows_per_thread=KM_CHUNK):
    cdef _Scratch s = _Scratch()
    cdef Py_ssize_t K = centres.shape[0]
    cdef size_t item = sizeof(floating)
    s.kp = _padded(<floating> 0, -1 if candidates else K)
    s.ct = _alloc(_product(D, s.kp), item)
    s.cn = _alloc(s.kp, item)
    s.yb_elems = _product(KM_ROWS, D)
    s.dots_elems = _product(KM_ROWS, s.kp)
    s.yb = _alloc(_product(s.yb_elems, n_threads), item)
    s.dots = _alloc(_product(s.dots_elems, n_threads), item)
    s.rows = <Py_ssize_t *> _alloc(_product(rows_per_thread, n_threads), sizeof(Py_ssize_t))
    s.fresh = <int *> _alloc(_product(KM_CHUNK, n_threads), sizeof(int))
    if floating is double:
        fastgmm_km_pack_d(K, D, &centres[0, 0], s.kp, <double *> s.ct, <double *> s.cn)
    else:
        fastgmm_km_pack_f(K, D, &centres[0, 0], s.kp, <float *> s.ct, <float *> s.cn)
    return s


def lloyd_pass(
    const floating[:, ::1] X,               # IN  n x D, the rows (uncentred)
    const floating[::1] shift,              # IN  D: rows are y = x - shift
    const floating[::1] sample_weight,      # IN  n, or empty for unit weights
    const floating[:, ::1] centres,         # IN  K x D, in y's coordinates
    int[::1] labels,                        # INOUT n: previous labels in, new out
    double[:, ::1] stats,                   # OUT n_slots x lloyd_stat_size(K, D)
    bint update,
    int n_threads,
    float[::1] gap=None,                    # INOUT n: the rows' bounds (None: no bounds)
    const double[::1] delta=None,           # IN  K: how far each centre moved since the last pass
    double cmax2=0.0,                       # IN  >= max_k |centres_k|^2
):
    """One Lloyd step's labels and (with `update`) the sums of its M-step.

    labels[i] becomes the first nearest centre of y_i. Each row of `stats`
    (a slot) holds, for its run of chunks: the number of rows whose label
    changed, per-cluster row counts, then (with `update`) per-cluster
    weights and sums of w_i y_i.

    With `gap`, rows whose label cannot change are not compared with every
    centre (_kmeans.h, nearest_bounded_chunk): the labels are the same, bit
    for bit. gap[i] must hold what the last pass with gap left there, for
    centres that have since moved by at most delta (any value where
    labels[i] < 0).
    """
    cdef Py_ssize_t n = X.shape[0], D = X.shape[1], K = centres.shape[0]
    cdef Py_ssize_t n_slots = stats.shape[0], size = lloyd_stat_size(K, D)
    cdef Py_ssize_t n_chunks = (n + KM_CHUNK - 1) // KM_CHUNK
    cdef Py_ssize_t slot, chunk, first, last, start, n_rows, s, e
    cdef bint has_weights = sample_weight.shape[0] > 0
    cdef bint bounded = gap is not None
    cdef double delta_max = 0.0
    # e of the rounding bound: 2 (D + 4) units of roundoff of the data's type
    cdef double round_e = 2.0 * (D + 4) * (2.0**-52 if floating is double else 2.0**-23)
    cdef _Scratch sc
    cdef const floating *w
    cdef int t

    _check_common(n, D, shift.shape[0], sample_weight.shape[0])
    if K < 1 or centres.shape[1] != D:
        raise ValueError(f"centres must have shape (K >= 1, {D}); got "
                         f"({K}, {centres.shape[1]})")
    if K > 2**31 - 1:
        raise ValueError("at most 2**31 - 1 centres (labels are int32)")
    if labels.shape[0] != n:
        raise ValueError(f"labels must have one entry per row ({n}); got {labels.shape[0]}")
    if n_slots < 1 or stats.shape[1] != size:
        raise ValueError(f"stats must have shape (n_slots >= 1, {size})")
    if gap is not None:
        if gap.shape[0] != n or delta is None or delta.shape[0] != K:
            raise ValueError(f"gap must have one entry per row ({n}) and delta one per "
                             f"centre ({K})")
        for s in range(K):
            if not delta[s] >= 0:
                raise ValueError("delta must hold distances (>= 0, not NaN)")
            delta_max = max(delta_max, delta[s])
        if not cmax2 >= 0:
            raise ValueError("cmax2 must be >= 0")
    for s in range(n_slots):
        for e in range(size):
            stats[s, e] = 0.0
    if n == 0:
        return
    n_threads = <int> max(1, min(n_threads, n_slots))
    sc = _scratch(centres, D, n_threads)
    with nogil, parallel(num_threads=n_threads):
        # Dynamic: a thread that finishes its slot takes the next (see
        # _suffstats.em_pass); each slot is still summed whole, in order.
        for slot in prange(n_slots, schedule='dynamic'):
            t = threadid()
            first = slot * n_chunks // n_slots
            last = (slot + 1) * n_chunks // n_slots
            for chunk in range(first, last):
                start = chunk * KM_CHUNK
                n_rows = min(<Py_ssize_t> KM_CHUNK, n - start)
                w = &sample_weight[start] if has_weights else NULL
                if floating is double:
                    if bounded:
                        fastgmm_km_nearest_bounded_chunk_d(
                            n_rows, D, K, &X[start, 0], &shift[0], <double *> sc.ct,
                            <double *> sc.cn, &labels[start], &delta[0], delta_max, round_e,
                            cmax2, &gap[start], sc.rows + t * KM_CHUNK,
                            <double *> sc.yb + t * sc.yb_elems,
                            <double *> sc.dots + t * sc.dots_elems, sc.fresh + t * KM_CHUNK)
                    else:
                        fastgmm_km_nearest_chunk_d(
                            n_rows, D, K, &X[start, 0], &shift[0], <double *> sc.ct,
                            <double *> sc.cn, <double *> sc.yb + t * sc.yb_elems,
                            <double *> sc.dots + t * sc.dots_elems, sc.fresh + t * KM_CHUNK)
                    fastgmm_km_lloyd_sums_chunk_d(
                        n_rows, D, K, &X[start, 0], &shift[0], w, sc.fresh + t * KM_CHUNK,
                        &labels[start], update, &stats[slot, 0])
                else:
                    if bounded:
                        fastgmm_km_nearest_bounded_chunk_f(
                            n_rows, D, K, &X[start, 0], &shift[0], <float *> sc.ct,
                            <float *> sc.cn, &labels[start], &delta[0], delta_max, round_e,
                            cmax2, &gap[start], sc.rows + t * KM_CHUNK,
                            <float *> sc.yb + t * sc.yb_elems,
                            <float *> sc.dots + t * sc.dots_elems, sc.fresh + t * KM_CHUNK)
                    else:
                        fastgmm_km_nearest_chunk_f(
                            n_rows, D, K, &X[start, 0], &shift[0], <float *> sc.ct,
                            <float *> sc.cn, <float *> sc.yb + t * sc.yb_elems,
                            <float *> sc.dots + t * sc.dots_elems, sc.fresh + t * KM_CHUNK)
                    fastgmm_km_lloyd_sums_chunk_f(
                        n_rows, D, K, &X[start, 0], &shift[0], w, sc.fresh + t * KM_CHUNK,
                        &labels[start], update, &stats[slot, 0])


cdef int _check_nearest(const int[::1] nearest, Py_ssize_t n_seeds) except -1:
    # the smallest and largest first, a loop without branches (vectorised),
    # run before every k-means++ pass; then the first culprit, if any
    cdef Py_ssize_t i, n = nearest.shape[0]
    cdef int lo = 0, hi = 0, v
    with nogil:
        for i in range(n):
            v = nearest[i]
            lo = v if v < lo else lo
            hi = v if v > hi else hi
    if lo >= 0 and hi < n_seeds:
        return 0
    for i in range(n):
        if nearest[i] < 0 or nearest[i] >= n_seeds:
            raise ValueError(f"nearest[{i}] = {nearest[i]} is not one of the {n_seeds} "
                             "seeds of reach")
    return 0


def kmeanspp_potentials(
    const floating[:, ::1] X,               # IN  n x D
    const floating[::1] shift,              # IN  D
    const floating[::1] sample_weight,      # IN  n, or empty for unit weights
    const floating[:, ::1] candidates,      # IN  M x D (M <= 8), in y's coordinates
    const floating[::1] closest,            # IN  n: squared distance to the nearest seed
    const int[::1] nearest,                 # IN  n: that seed
    const double[::1] reach,                # IN  per seed: see _kmeans.h (-1: no pruning)
    unsigned char[::1] improve,             # OUT n: bit m set where c_m is nearer
    double[:, ::1] potentials,              # OUT n_slots x M
    double[:, ::1] marked,                  # OUT n_slots x M: rows with bit m set
    int n_threads,
):
    """potentials[slot, m] = sum over the slot's rows of w_i min(closest_i, |y_i - c_m|^2),
    improve[i] the bits of the candidates nearer to y_i than its seed, and
    marked[slot, m] the number of rows with bit m.

    Rows whose seed is too near every candidate for one to come nearer
    (reach[nearest[i]] >= closest_i) are summed without reading x_i.
    """
    cdef Py_ssize_t n = X.shape[0], D = X.shape[1], M = candidates.shape[0]
    cdef Py_ssize_t n_slots = potentials.shape[0]
    cdef Py_ssize_t n_chunks = (n + KM_CHUNK - 1) // KM_CHUNK
    cdef Py_ssize_t slot, chunk, first, last, start, n_rows, s, e
    cdef bint has_weights = sample_weight.shape[0] > 0
    cdef _Scratch sc
    cdef const floating *w
    cdef int t

    _check_common(n, D, shift.shape[0], sample_weight.shape[0])
    if M < 1 or M > MAX_MARKED_CANDIDATES or candidates.shape[1] != D:
        raise ValueError(f"candidates must have shape (1 <= M <= {MAX_MARKED_CANDIDATES}, {D})")
    if closest.shape[0] != n or nearest.shape[0] != n or improve.shape[0] != n:
        raise ValueError(f"closest, nearest and improve must have one entry per row ({n})")
    if (n_slots < 1 or potentials.shape[1] != M or marked.shape[0] != n_slots
            or marked.shape[1] != M):
        raise ValueError(f"potentials and marked must have shape (n_slots >= 1, {M})")
    _check_nearest(nearest, reach.shape[0])
    for s in range(n_slots):
        for e in range(M):
            potentials[s, e] = 0.0
            marked[s, e] = 0.0
    if n == 0:
        return
    n_threads = <int> max(1, min(n_threads, n_slots))
    sc = _scratch(candidates, D, n_threads, True)
    with nogil, parallel(num_threads=n_threads):
        for slot in prange(n_slots, schedule='dynamic'):
            t = threadid()
            first = slot * n_chunks // n_slots
            last = (slot + 1) * n_chunks // n_slots
            for chunk in range(first, last):
                start = chunk * KM_CHUNK
                n_rows = min(<Py_ssize_t> KM_CHUNK, n - start)
                w = &sample_weight[start] if has_weights else NULL
                if floating is double:
                    fastgmm_km_potentials_chunk_d(
                        n_rows, D, M, &X[start, 0], &shift[0], <double *> sc.ct,
                        <double *> sc.cn, w, &closest[start], &nearest[start], &reach[0],
                        sc.rows + t * KM_CHUNK, <double *> sc.yb + t * sc.yb_elems,
                        <double *> sc.dots + t * sc.dots_elems, &improve[start],
                        &potentials[slot, 0], &marked[slot, 0])
                else:
                    fastgmm_km_potentials_chunk_f(
                        n_rows, D, M, &X[start, 0], &shift[0], <float *> sc.ct,
                        <float *> sc.cn, w, &closest[start], &nearest[start], &reach[0],
                        sc.rows + t * KM_CHUNK, <float *> sc.yb + t * sc.yb_elems,
                        <float *> sc.dots + t * sc.dots_elems, &improve[start],
                        &potentials[slot, 0], &marked[slot, 0])


def kmeanspp_closest(
    const floating[:, ::1] X,               # IN  n x D
    const floating[::1] shift,              # IN  D
    const floating[::1] sample_weight,      # IN  n, or empty for unit weights
    const floating[:, ::1] centre,          # IN  1 x D, in y's coordinates
    floating[::1] closest,                  # INOUT n (OUT with `init`)
    int[::1] nearest,                       # INOUT n (OUT with `init`)
    int label,                              # IN  the new seed's number
    const unsigned char[::1] improve,       # IN  n bit masks from kmeanspp_potentials, or empty
    int bit,                                # IN  the new seed's bit in `improve`
    const double[::1] reach,                # IN  per seed, for the new seed (without `improve`)
    bint init,
    double[::1] potentials,                 # OUT n_slots: sum of w_i closest_i (init only)
    int n_threads,
):
    """A new seed: closest_i = |y_i - centre|^2, nearest[i] = label where that is smaller.

    The rows to look at are those with `bit` set in `improve`, or (improve
    empty) those whose seed is not ruled out by `reach`; with `init`, every
    row (closest and nearest are written, and potentials gets the sums).
    """
    cdef Py_ssize_t n = X.shape[0], D = X.shape[1]
    cdef Py_ssize_t n_slots = potentials.shape[0]
    cdef Py_ssize_t n_chunks = (n + KM_CHUNK - 1) // KM_CHUNK
    cdef Py_ssize_t slot, chunk, first, last, start, n_rows, s, step
    cdef bint has_weights = sample_weight.shape[0] > 0
    cdef bint has_improve = improve.shape[0] > 0
    cdef _Scratch sc
    cdef const floating *w
    cdef const unsigned char *marks
    cdef const double *reach_ptr = NULL
    cdef int t

    _check_common(n, D, shift.shape[0], sample_weight.shape[0])
    if centre.shape[0] != 1 or centre.shape[1] != D:
        raise ValueError(f"centre must have shape (1, {D})")
    if closest.shape[0] != n or nearest.shape[0] != n:
        raise ValueError(f"closest and nearest must have one entry per row ({n})")
    if n_slots < 1:
        raise ValueError("potentials must have at least one slot")
    if not init:
        if has_improve:
            if improve.shape[0] != n or not 0 <= bit < MAX_MARKED_CANDIDATES:
                raise ValueError(f"improve must have {n} entries and bit be in "
                                 f"[0, {MAX_MARKED_CANDIDATES})")
        else:
            _check_nearest(nearest, reach.shape[0])
            reach_ptr = &reach[0]
    for s in range(n_slots):
        potentials[s] = 0.0
    if n == 0:
        return
    n_threads = <int> max(1, min(n_threads, n_slots))
    # with init every chunk's sum is added on its own, in order
    step = 1 if init else GATHER_CHUNKS
    sc = _scratch(centre, D, n_threads, False, _product(step, KM_CHUNK))
    with nogil, parallel(num_threads=n_threads):
        for slot in prange(n_slots, schedule='dynamic'):
            t = threadid()
            first = slot * n_chunks // n_slots
            last = (slot + 1) * n_chunks // n_slots
            chunk = first
            while chunk < last:
                start = chunk * KM_CHUNK
                n_rows = min(min(chunk + step, last) * KM_CHUNK, n) - start
                w = &sample_weight[start] if has_weights else NULL
                marks = &improve[start] if (has_improve and not init) else NULL
                if floating is double:
                    fastgmm_km_closest_chunk_d(
                        n_rows, D, &X[start, 0], &shift[0], <double *> sc.ct,
                        <double *> sc.cn, w, init, label, marks, 1u << bit, reach_ptr,
                        &closest[start], &nearest[start], sc.rows + t * step * KM_CHUNK,
                        <double *> sc.yb + t * sc.yb_elems,
                        <double *> sc.dots + t * sc.dots_elems, &potentials[slot])
                else:
                    fastgmm_km_closest_chunk_f(
                        n_rows, D, &X[start, 0], &shift[0], <float *> sc.ct,
                        <float *> sc.cn, w, init, label, marks, 1u << bit, reach_ptr,
                        &closest[start], &nearest[start], sc.rows + t * step * KM_CHUNK,
                        <float *> sc.yb + t * sc.yb_elems,
                        <float *> sc.dots + t * sc.dots_elems, &potentials[slot])
                chunk = chunk + step


def label_stat_size(int cov_type, Py_ssize_t n_components, Py_ssize_t n_features):
    """Length of one slot's row of label_statistics (em_pass's stat_size)."""
    cdef Py_ssize_t K = n_components, D = n_features
    if cov_type == 0:
        return 1 + K + K * D + K * (D * (D + 1) // 2)
    if cov_type == 1:
        return 1 + K + K * D + D * D
    return 1 + K + 2 * K * D


def label_statistics(
    const floating[:, ::1] X,               # IN  n x D
    const double[::1] sample_weight,        # IN  n (float64, as em_pass's), or empty
    const int[::1] labels,                  # IN  n: a cluster, or -1 for none
    const floating[:, ::1] centres,         # IN  K x D: each cluster's shift
    int cov_type,                           # IN  0 full, 1 tied, 2 diag (and spherical)
    const floating[::1] tied_center,        # IN  D for tied, else empty
    double[:, ::1] stats,                   # OUT n_slots x label_stat_size
    int n_threads,
):
    """em_pass's sufficient statistics of one-hot responsibilities (row i on
    cluster labels[i]) without forming them: O(D) a row for diag, O(D^2) for
    full and tied, where the responsibilities would cost O(K D)."""
    cdef Py_ssize_t n = X.shape[0], D = X.shape[1], K = centres.shape[0]
    cdef Py_ssize_t n_slots = stats.shape[0]
    cdef Py_ssize_t size = label_stat_size(cov_type, K, D)
    cdef Py_ssize_t n_chunks = (n + KM_CHUNK - 1) // KM_CHUNK
    cdef Py_ssize_t slot, chunk, first, last, start, n_rows, s, e, i
    cdef bint has_weights = sample_weight.shape[0] > 0
    cdef double *d_all
    cdef const double *w
    cdef const floating *tc = NULL
    cdef int t

    _check_common(n, D, D, sample_weight.shape[0])
    if cov_type < 0 or cov_type > 2:
        raise ValueError(f"cov_type must be 0 (full), 1 (tied) or 2 (diag); got {cov_type}")
    if K < 1 or centres.shape[1] != D:
        raise ValueError(f"centres must have shape (K >= 1, {D})")
    if labels.shape[0] != n:
        raise ValueError(f"labels must have one entry per row ({n})")
    if cov_type == 1:
        if tied_center.shape[0] != D:
            raise ValueError(f"tied_center must have {D} entries")
        tc = &tied_center[0]
    if n_slots < 1 or stats.shape[1] != size:
        raise ValueError(f"stats must have shape (n_slots >= 1, {size})")
    for i in range(n):
        if labels[i] < -1 or labels[i] >= K:
            raise ValueError(f"labels[{i}] = {labels[i]} is not -1 or a cluster below {K}")
    for s in range(n_slots):
        for e in range(size):
            stats[s, e] = 0.0
    if n == 0:
        return
    n_threads = <int> max(1, min(n_threads, n_slots))
    d_all = <double *> _alloc(_product(2 * D, n_threads), sizeof(double))
    try:
        with nogil, parallel(num_threads=n_threads):
            for slot in prange(n_slots, schedule='dynamic'):
                t = threadid()
                first = slot * n_chunks // n_slots
                last = (slot + 1) * n_chunks // n_slots
                for chunk in range(first, last):
                    start = chunk * KM_CHUNK
                    n_rows = min(<Py_ssize_t> KM_CHUNK, n - start)
                    w = &sample_weight[start] if has_weights else NULL
                    if floating is double:
                        fastgmm_km_label_stats_chunk_d(
                            n_rows, D, K, &X[start, 0], w, &labels[start], &centres[0, 0],
                            cov_type, tc, d_all + t * 2 * D, &stats[slot, 0])
                    else:
                        fastgmm_km_label_stats_chunk_f(
                            n_rows, D, K, &X[start, 0], w, &labels[start], &centres[0, 0],
                            cov_type, tc, d_all + t * 2 * D, &stats[slot, 0])
    finally:
        free(d_all)


def seeding_gap_rows(
    const floating[::1] closest,            # IN  n: squared distance to the nearest seed
    const int[::1] nearest,                 # IN  n: that seed
    const double[::1] half_way,             # IN  K: min_{k != a} |s_k - s_a|, rounded down
    const double[::1] slack,                # IN  K: 3 e |s_a|^2 rounded up, plus underflow
    double e,                               # IN  the expansion's rounding, (D + 4) eps
    float[::1] gap,                         # OUT n
    int n_threads,
):
    """gap[i] = half_way[a] - 2 sqrt((closest_i + slack[a]) / (1 - 2e)) (widened),
    rounded down into float32, a = nearest[i]; -1 where closest_i is 0.
    fastgmm._kmeans.seeding_gaps gives the argument; this is its loop over
    the rows (numpy took 9 ms of speech's 500k rows in blocks)."""
    cdef Py_ssize_t n = closest.shape[0], K = half_way.shape[0], i
    cdef double near, bound, up = 1.0 + 4.0 * 2.0**-52, scale = 1.0 / (1.0 - 2.0 * e)
    cdef int a
    if nearest.shape[0] != n or gap.shape[0] != n or slack.shape[0] != K:
        raise ValueError("closest, nearest and gap need one entry per row, "
                         "half_way and slack one per seed")
    _check_nearest(nearest, K)
    if not 0 <= e < 0.25:
        raise ValueError("e must be in [0, 0.25)")
    with nogil:
        for i in prange(n, num_threads=max(1, n_threads), schedule='static'):
            a = nearest[i]
            near = <double> closest[i]
            if near == 0:
                gap[i] = -1.0
            else:
                bound = half_way[a] - 2.0 * sqrt((near + slack[a]) * scale) * up
                gap[i] = fastgmm_km_down_d(bound)
