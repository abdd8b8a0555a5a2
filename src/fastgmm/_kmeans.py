"""k-means++ and Lloyd's k-means on the native core, drawn and stopped as scikit-learn's KMeans.

`kmeans(rows, n_clusters, random_state)` is `KMeans(n_clusters, n_init=1,
random_state).fit` on dense data, step for step: the tolerance from the
column variances, the rows centred on the column means (on the fly, by the
kernels: never a centred copy), k-means++ seeds from the same draws, Lloyd
iterations to scikit-learn's stopping rule, empty clusters relocated to the
farthest rows, a last labelling pass when the labels did not settle.

Rows come from a source with `blocks()` (start, rows, weights): one block
for an array in memory or a memmap (read in place), one per batch for
`fit_batches`. Each Lloyd iteration and each k-means++ step is one pass of
a kernel over the blocks (_kernels/_kmeans.pyx); the N-long arrays are the
labels (int32), while seeding the squared distance of every row to its
nearest seed (in the data's dtype), that seed (int32) and a byte of bits,
and in Lloyd, where K x D >= BOUNDED_MIN_WORK, a float32 bound a row that
lets a pass skip the rows whose label cannot change. No N x K or N x D
array is made.

Equality with scikit-learn (docs/architecture.md, "Initialisation"): the
random draws are the same and are consumed in the same order; the draws
are turned into rows by numpy's own arithmetic, reproduced in order
(_kernels/_columns.h: the choice of the first seed, the cumulative sums the
candidates are searched in), and the choice among candidates takes the
first of the smallest potentials. What differs is rounding: distances are
scikit-learn's expansion |y|^2 + |c|^2 - 2 y.c, summed in another order
than gemm's (and in float32 for float32 data, where scikit-learn's
k-means++ goes through float64), and sums over rows go in fixed slots in
double, where scikit-learn's go per thread (in float32 for float32 data).
A label, a candidate or the stopping test can therefore differ only where
two distances, two potentials, a threshold and a cumulative sum, or the
centre shift and the tolerance, agree to rounding.
"""

import functools

import numpy as np

from fastgmm._kernels._columns import (
    column_moments,
    column_sq_devs,
    column_sums,
    cumsum_search,
    first_draw,
)
from fastgmm._kernels._dispatch import kmeanspp_closest, kmeanspp_potentials, lloyd_pass
from fastgmm._kernels._kmeans import (
    CHUNK_ROWS, MAX_MARKED_CANDIDATES, lloyd_stat_size, seeding_gap_rows,
)
from fastgmm._parameters import MAX_SLOTS, MIN_SLOTS, SLOT_BUDGET_BYTES
from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads

MAX_ITER = 300     # KMeans' defaults, as GaussianMixture leaves them
# K x D from which Lloyd's passes keep a bound a row and skip the rows whose
# label cannot change (two threads, Lloyd ms, unbounded -> bounded: speech
# K x D = 2496, float64 91 -> 58; at 256, spherical 123 -> 148 and mid
# float32 27 -> 41; blobs2d, 6: 24 -> 55).
BOUNDED_MIN_WORK = 1024
TOL = 1e-4
# Rows handled at a time by the numpy steps that scikit-learn runs on all
# of X at once (the relocation's distances, a one-feature column's sums).
NUMPY_BLOCK_ROWS = 2**16


def n_slots(n_rows, row_length):
    """Slots of sums for a pass over n_rows rows (as em_pass's n_slots_for):
    fixed by the problem size, never by the thread count."""
    n_chunks = max(1, -(-n_rows // CHUNK_ROWS))
    by_budget = max(MIN_SLOTS, SLOT_BUDGET_BYTES // (8 * row_length))
    return int(max(1, min(n_chunks, MAX_SLOTS, by_budget)))


# ------------------------------------------------------------ numpy's sums

@functools.lru_cache(maxsize=None)
def _numpy_sum_of_ones(n, dtype_char):
    """np.ones(n, dtype).sum(), bit for bit, without the array.

    numpy sums a contiguous array pairwise: blocks of at most 128 with eight
    accumulators, halves (rounded to multiples of 8) above. With every term
    1 the tree depends on n alone; float32 sums stop being exact above 2**24.
    """
    dtype = np.dtype(dtype_char).type
    one = dtype(1)

    @functools.lru_cache(maxsize=None)
    def pairwise(m):
        if m < 8:
            total = dtype(0)
            for _ in range(m):
                total = dtype(total + one)
            return total
        if m <= 128:
            lanes = one
            done = 8
            while done < m - m % 8:
                lanes = dtype(lanes + one)
                done += 8
            pair = dtype(lanes + lanes)
            total = dtype(dtype(pair + pair) + dtype(pair + pair))
            for _ in range(m - done):
                total = dtype(total + one)
            return total
        half = m // 2
        half -= half % 8
        return dtype(pairwise(half) + pairwise(m - half))

    return pairwise(n)


def _pairwise_sum(values, n, dtype):
    """np.add.reduce of the n values `values(a, b)` returns for [a, b), taken
    NUMPY_BLOCK_ROWS at a time along numpy's own pairwise tree (a subtree of
    at most NUMPY_BLOCK_ROWS > 128 terms is what numpy sums for that slice)."""
    def pairwise(start, m):
        if m <= NUMPY_BLOCK_ROWS:
            return np.add.reduce(values(start, start + m), dtype=dtype)
        half = m // 2
        half -= half % 8
        return dtype(pairwise(start, half) + pairwise(start + half, m - half))

    return pairwise(0, n)


def _probe_column_moments():
    """True when numpy's X.mean(axis=0) and X.var(axis=0) match column_moments here."""
    probe_rng = np.random.RandomState(0)
    for dtype in (np.float64, np.float32):
        probe = (probe_rng.standard_normal((999, 3)) * [1e-3, 1.0, 1e6]).astype(dtype)
        mean, var = column_moments(probe)
        if not (np.array_equal(mean, probe.mean(axis=0))
                and np.array_equal(var, probe.var(axis=0))):
            return False
    return True


FAST_COLUMN_MOMENTS = _probe_column_moments()


def mean_and_variance(X):
    """(X.mean(axis=0), X.var(axis=0)), bitwise, without an N-sized temporary."""
    n, d = X.shape
    if d >= 2 and FAST_COLUMN_MOMENTS:
        return column_moments(X)
    if d >= 2:
        return X.mean(axis=0), np.var(X, axis=0)
    # One feature: numpy sums the contiguous column pairwise; follow its tree
    # block by block, so that a memmap is never copied.
    dtype = X.dtype.type
    column = X[:, 0]
    total = _pairwise_sum(lambda a, b: column[a:b], n, dtype)
    mean = dtype(float(total) / n)
    squares = _pairwise_sum(lambda a, b: np.square(column[a:b] - mean), n, dtype)
    return np.array([mean]), np.array([dtype(float(squares) / n)])


# ------------------------------------------------------------ row sources

class ArrayRows:
    """The rows of one C-contiguous array (in memory or a memmap, read in
    place) and their weights in its dtype (None: all 1)."""

    def __init__(self, X, sample_weight=None):
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype
        self.weights = (None if sample_weight is None
                        else np.ascontiguousarray(sample_weight, dtype=X.dtype))

    def blocks(self):
        yield 0, self.X, self.weights

    def take(self, indices):
        return np.ascontiguousarray(self.X[np.asarray(indices, dtype=np.intp)])

    def mean_and_variance(self):
        return mean_and_variance(self.X)


class BlockRows:
    """Rows in consecutive blocks (C-contiguous arrays of one dtype) from a
    function returning a fresh iterable of them; all weights 1."""

    def __init__(self, open_blocks, n_samples, n_features, dtype):
        self._open = open_blocks
        self.n_samples, self.n_features = n_samples, n_features
        self.dtype = np.dtype(dtype)
        self.weights = None

    def blocks(self):
        start = 0
        for block in self._open():
            yield start, block, None
            start += block.shape[0]

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.intp)
        out = np.empty((indices.shape[0], self.n_features), dtype=self.dtype)
        missing = indices.shape[0]
        last = indices.max(initial=-1)
        for start, block, _ in self.blocks():
            stop = start + block.shape[0]
            inside = (indices >= start) & (indices < stop)
            out[inside] = block[indices[inside] - start]
            missing -= int(np.count_nonzero(inside))
            if missing == 0 or stop > last:
                break
        return out

    def mean_and_variance(self):
        # numpy's axis-0 order (row after row) over the concatenated blocks;
        # for one feature numpy sums pairwise instead, which blocks cannot
        # follow: the same sums to rounding.
        acc = np.zeros(self.n_features, dtype=self.dtype)
        for _, block, _ in self.blocks():
            column_sums(block, acc)
        mean = (acc.astype(np.float64) / self.n_samples).astype(self.dtype)
        acc = np.zeros(self.n_features, dtype=self.dtype)
        for _, block, _ in self.blocks():
            column_sq_devs(block, mean, acc)
        return mean, (acc.astype(np.float64) / self.n_samples).astype(self.dtype)


def _no_weights(dtype):
    return np.empty(0, dtype=dtype)


# Work (rows x features x centre lanes) a thread must have before a pass
# takes it: 2**20 is a fraction of a millisecond, more than a wake-up costs.
# It was 2**24, chosen while this 2-core machine ran other work (there every
# parallel pass waits for its last thread to be scheduled: mid, 392 ms a
# k-means on 2 threads against 227 ms on one); on the machine alone that
# left mid's and blobs2d's passes on one thread, and two halve them
# (k-means++ median of 5, ms, 2**24 -> 2**20: mid 66.5 -> 38.7, blobs2d
# 43.7 -> 23.8, speech 570 -> 543). 2**19 then gave the chosen seed's pass
# of mid (12k rows) its second thread (k-means++, median of 3-5, ms, 2**20
# -> 2**19: mid 25.2-25.9 -> 23.8-23.9, blobs2d and speech unchanged).
WORK_PER_THREAD = 2**19


def _threads(n_threads, work):
    """Threads for a pass of `work`: n_threads when the caller chose them
    (the results never depend on it), else as many as the work pays for."""
    if n_threads is not None:
        return max(1, int(n_threads))
    return int(max(1, min(openmp_effective_n_threads(), work // WORK_PER_THREAD)))


def _lanes(n_centres, dtype):
    """Centres rounded up to whole vectors, as the kernels pack them."""
    lanes = max(1, 64 // np.dtype(dtype).itemsize)
    return -(-n_centres // lanes) * lanes


def _closest_pass(rows, shift, centre, closest, nearest, label, n_threads, improve=None,
                  bit=0, reach=None, n_rows=None):
    """Seed `label` (at `centre`) joins, on `n_rows` rows (None: every row);
    returns sum w closest when it is the first."""
    init = label == 0
    n_threads = _threads(n_threads, (rows.n_samples if n_rows is None else n_rows)
                         * rows.n_features * _lanes(1, rows.dtype))
    total = 0.0
    no_weights = _no_weights(rows.dtype)
    no_marks = np.empty(0, dtype=np.uint8)
    reach = np.empty(0) if reach is None else np.ascontiguousarray(reach)
    centre = np.ascontiguousarray(centre.reshape(1, -1))
    for start, X, weights in rows.blocks():
        n = X.shape[0]
        sums = np.empty(n_slots(n, 1))
        kmeanspp_closest(X, shift, no_weights if weights is None else weights, centre,
                         closest[start:start + n], nearest[start:start + n], label,
                         no_marks if improve is None else improve[start:start + n], bit,
                         reach, init, sums, n_threads)
        total += sums.sum()
    return total


def _potentials_pass(rows, shift, candidates, closest, nearest, reach, improve, n_threads):
    """sum_i w_i min(closest_i, |y_i - c_m|^2) for every candidate c_m, the
    rows each candidate comes nearer to (bits of `improve`) and their number."""
    m = candidates.shape[0]
    total = np.zeros(m)
    marked = np.zeros(m)
    n_threads = _threads(n_threads, rows.n_samples * rows.n_features
                         * _lanes(MAX_MARKED_CANDIDATES, rows.dtype))
    no_weights = _no_weights(rows.dtype)
    reach = np.ascontiguousarray(reach)
    for start, X, weights in rows.blocks():
        n = X.shape[0]
        sums = np.empty((n_slots(n, 2 * m), m))
        counts = np.empty_like(sums)
        kmeanspp_potentials(X, shift, no_weights if weights is None else weights, candidates,
                            closest[start:start + n], nearest[start:start + n], reach,
                            improve[start:start + n], sums, counts, n_threads)
        total += sums.sum(axis=0)
        marked += counts.sum(axis=0)
    return total, marked


_EPS = {"d": float(np.finfo(np.float64).eps), "f": float(np.finfo(np.float32).eps)}


def reach(seeds, candidates, dtype):
    """How near a row must be to its seed for a candidate to be ruled out.

    reach[a, m]: a row y whose nearest seed is s_a, at computed squared
    distance closest <= reach[a, m], has a computed |y - c_m|^2 >= closest,
    so c_m cannot come nearer and the row need not be read. By the triangle
    inequality |y - c| >= |c - s| - |y - s|; the rest bounds the rounding.
    The kernels compute |y - c|^2 as (|y|^2 + |c|^2) - 2 y.c in the dtype,
    within e (|y|^2 + |c|^2) of the exact value, e = (D + 4) eps; with
    |y|^2 <= 2 |s|^2 + 2 |y - s|^2 a sufficient condition is
    g^2 >= 4 [(1 + 4e) (closest + 3e |s|^2) / (1 - 2e) + e (5 |s|^2 + |c|^2)],
    g^2 = |c - s|^2 (computed in double, rounded down here), which is
    closest <= reach. A pruned row is then exactly as if it had been
    computed: the same sums, the same bits (tests/test_kernels.py checks
    the pruned and unpruned passes against each other).
    """
    d = seeds.shape[1]
    e = (d + 4) * _EPS[np.dtype(dtype).char]
    gap = _squared_gaps(seeds, candidates) * (1.0 - (d + 4) * _EPS["d"])
    seed_norms = _squared_norms(seeds)[0]
    cand_norms = _squared_norms(candidates)[0]
    slack = e * (5.0 * seed_norms[:, np.newaxis] + cand_norms[np.newaxis])
    return ((gap / 4.0 - slack) * ((1.0 - 2.0 * e) / (1.0 + 4.0 * e))
            - 3.0 * e * seed_norms[:, np.newaxis])


def _squared_gaps(seeds, candidates):
    """|c_m - s_a|^2 in double, seeds by candidates."""
    diff = seeds[:, np.newaxis, :].astype(np.float64) - candidates[np.newaxis].astype(np.float64)
    return np.einsum("amj,amj->am", diff, diff)


def kmeans_plusplus(rows, n_clusters, random_state, shift=None, n_local_trials=None,
                    n_threads=None, return_state=False):
    """scikit-learn's k-means++ seeding of the rows y = x - shift (shift None: 0).

    Returns (centres in y's coordinates, in the rows' dtype; their row
    indices), and with `return_state` also every row's squared distance to
    its nearest seed as computed (closest, the dtype) and that seed
    (nearest, int32): what `lloyd` needs to start from bounds.
    `random_state` (a RandomState) advances exactly as scikit-learn's
    `_kmeans_plusplus` advances it.

    Each step is one pass over the rows for the candidates' potentials and
    a pass over the rows the chosen one comes nearer to. The N-long state is
    closest (the squared distance to the nearest seed, in the dtype),
    nearest (int32) and one byte of bits a row (which candidates come
    nearer); a row whose seed is too near every candidate for one to come
    nearer is not read at all (see _kmeans.h).
    """
    n, d, dtype = rows.n_samples, rows.n_features, rows.dtype
    shift = np.zeros(d, dtype=dtype) if shift is None else np.ascontiguousarray(shift,
                                                                                 dtype=dtype)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    weights = rows.weights
    weight_arg = _no_weights(dtype) if weights is None else weights
    scalar = dtype.type

    # First seed: RandomState.choice(n, p=w / w.sum()), one uniform draw.
    total = (_numpy_sum_of_ones(n, dtype.char) if weights is None else weights.sum())
    first = first_draw(weight_arg, n, total, random_state.random_sample())
    centres = np.empty((n_clusters, d), dtype=dtype)
    indices = np.full(n_clusters, -1, dtype=int)
    centres[0] = rows.take([first])[0] - shift
    indices[0] = first
    closest = np.empty(n, dtype=dtype)
    nearest = np.empty(n, dtype=np.int32)
    # scikit-learn's potentials are values of the dtype
    potential = scalar(_closest_pass(rows, shift, centres[0], closest, nearest, 0, n_threads))
    marks = n_local_trials <= MAX_MARKED_CANDIDATES
    improve = np.empty(n if marks else 0, dtype=np.uint8)

    for c in range(1, n_clusters):
        # Candidates drawn with probability proportional to w * closest:
        # thresholds u * potential searched in the cumulative sums.
        thresholds = random_state.uniform(size=n_local_trials) * potential
        order = np.argsort(thresholds, kind="stable")
        candidate_ids = np.empty(n_local_trials, dtype=np.intp)
        candidate_ids[order] = cumsum_search(weight_arg, closest, thresholds[order],
                                             nonnegative=True)
        np.clip(candidate_ids, None, n - 1, out=candidate_ids)
        candidates = rows.take(candidate_ids) - shift
        reaches = reach(centres[:c], candidates, dtype)
        if marks:
            potentials, marked = _potentials_pass(rows, shift, candidates, closest, nearest,
                                                  reaches.min(axis=1), improve, n_threads)
        else:   # more candidates than bits: a pass for every 8, no marks kept
            potentials = np.concatenate([
                _potentials_pass(rows, shift, candidates[m:m + MAX_MARKED_CANDIDATES], closest,
                                 nearest, reaches[:, m:m + MAX_MARKED_CANDIDATES].min(axis=1),
                                 np.empty(n, dtype=np.uint8), n_threads)[0]
                for m in range(0, n_local_trials, MAX_MARKED_CANDIDATES)])
        potentials = potentials.astype(dtype)
        best = int(np.argmin(potentials))
        potential = potentials[best]
        if marks:
            # only the rows the seed comes nearer to are read: few threads for few rows
            _closest_pass(rows, shift, candidates[best], closest, nearest, c, n_threads,
                          improve=improve, bit=best, n_rows=marked[best])
        else:
            _closest_pass(rows, shift, candidates[best], closest, nearest, c, n_threads,
                          reach=reaches[:, best])
        centres[c] = candidates[best]
        indices[c] = candidate_ids[best]
    if return_state:
        return centres, indices, closest, nearest
    return centres, indices


# ------------------------------------------------------------ Lloyd

def _lloyd_pass(rows, shift, centres, labels, update, n_threads, bounds=None):
    """One labelling pass: (changed labels, counts, weights, sums) in float64.

    bounds: None, or (gap, delta, cmax2) for lloyd_pass's bounded labelling.
    """
    k, d = centres.shape
    n_threads = _threads(n_threads, rows.n_samples * d * _lanes(k, rows.dtype))
    size = lloyd_stat_size(k, d)
    total = np.zeros(size)
    no_weights = _no_weights(rows.dtype)
    for start, X, weights in rows.blocks():
        n = X.shape[0]
        stats = np.empty((n_slots(n, size), size))
        if bounds is None:
            extra = {}
        else:
            gap, delta, cmax2 = bounds
            extra = dict(gap=gap[start:start + n], delta=delta, cmax2=cmax2)
        lloyd_pass(X, shift, no_weights if weights is None else weights, centres,
                   labels[start:start + n], stats, update, n_threads, **extra)
        total += stats.sum(axis=0)
    return total[0], total[1:1 + k], total[1 + k:1 + 2 * k], total[1 + 2 * k:].reshape(k, d)


def _relocate_empty_clusters(rows, shift, centres_old, labels, weights, sums):
    """scikit-learn's relocation: each cluster of weight 0 takes one of the
    rows farthest from their centres, in np.argpartition's order."""
    empty = np.flatnonzero(weights == 0)
    n_empty = empty.shape[0]
    distances = np.empty(rows.n_samples, dtype=rows.dtype)
    for start, X, _ in rows.blocks():
        for a in range(0, X.shape[0], NUMPY_BLOCK_ROWS):
            b = min(a + NUMPY_BLOCK_ROWS, X.shape[0])
            # scikit-learn's ((X - centers_old[labels])**2).sum(axis=1) on
            # the centred X, a block of rows at a time
            centred = X[a:b] - shift
            distances[start + a:start + b] = (
                (centred - centres_old[labels[start + a:start + b]]) ** 2).sum(axis=1)
    if np.max(distances) == 0:
        return
    far = np.argpartition(distances, -n_empty)[:-n_empty - 1:-1]
    far_rows = rows.take(far) - shift
    for idx, new_cluster in enumerate(empty):
        row = far[idx]
        weight = 1.0 if rows.weights is None else float(rows.weights[row])
        old_cluster = labels[row]
        moved = far_rows[idx].astype(np.float64) * weight
        sums[old_cluster] -= moved
        sums[new_cluster] = moved
        weights[new_cluster] = weight
        weights[old_cluster] -= weight


def _average_centres(sums, weights, dtype):
    """The new centres, sums / weights, as scikit-learn's `_average_centers`:
    a cluster still of weight 0 takes the row of the heaviest one as the
    loop finds it (already divided when it comes first, a sum otherwise)."""
    if np.all(weights > 0):
        return (sums * (1.0 / weights)[:, np.newaxis]).astype(dtype)
    centres = sums.copy()
    heaviest = int(np.argmax(weights))
    for j in range(centres.shape[0]):
        if weights[j] > 0:
            centres[j] *= 1.0 / weights[j]
        else:
            centres[j] = centres[heaviest]
    return centres.astype(dtype)


def _centre_shift(old, new):
    """|new_k - old_k| in the dtype, summed as scikit-learn's
    `_euclidean_dense_dense`: groups of four squares, ((a + b) + c) + d,
    added to the running sum in order, then the remaining squares."""
    squares = np.square(new - old)
    k, d = squares.shape
    whole = d - d % 4
    total = np.zeros(k, dtype=squares.dtype)
    if whole:
        groups = squares[:, :whole].reshape(k, whole // 4, 4)
        four = ((groups[:, :, 0] + groups[:, :, 1]) + groups[:, :, 2]) + groups[:, :, 3]
        total = np.cumsum(four, axis=1)[:, -1]    # sequential, from 0 + first
    for j in range(whole, d):
        total = total + squares[:, j]
    return np.sqrt(total)


def seeding_gaps(seeds, closest, nearest, dtype):
    """Lloyd's first bounds from k-means++'s state: for each row a lower
    bound (float32, rounded down) on min_{k != a} |y - s_k| - |y - s_a|,
    a = nearest[i], exact arithmetic, with closest[i] the computed squared
    distance |y - s_a|^2 (fastgmm._kmeans.reach's rounding, e = (D + 4) eps).

    By the triangle inequality |y - s_k| >= |s_k - s_a| - |y - s_a|, so the
    bound is h_a - 2 |y - s_a| with h_a = min_{k != a} |s_k - s_a| (in
    double, less its rounding), and |y - s_a|^2 <= (closest + 3 e |s_a|^2)
    / (1 - 2 e) (as in reach: |y|^2 <= 2 |y - s|^2 + 2 |s|^2), plus the
    dtype's underflow. Negative where a row is not nearer its seed than half
    the way to the next one, or its closest is 0 (a row on its seed, or
    squares that overflowed: inf - inf, clamped): lloyd_pass then compares
    it with every centre. A closest of inf or NaN gives no bound either.
    """
    k, d = seeds.shape
    n = closest.shape[0]
    e = (d + 4) * _EPS[np.dtype(dtype).char]
    if k < 2:
        return np.full(n, np.float32(-1))
    gap = np.empty(n, dtype=np.float32)
    gaps = _squared_gaps(seeds, seeds) * (1.0 - (d + 4) * _EPS["d"])
    np.fill_diagonal(gaps, np.inf)
    half_way = np.sqrt(np.maximum(gaps.min(axis=1), 0.0)) * (1.0 - 4.0 * _EPS["d"])
    # the dtype's underflow: every rounded operation within its smallest step
    tiny = (4 * d + 16) * float(np.finfo(dtype).smallest_subnormal)
    slack = 3.0 * e * _squared_norms(seeds)[0] * (1.0 + 4.0 * _EPS["d"]) + tiny
    seeding_gap_rows(closest, nearest, half_way, slack, e, gap,
                     _threads(None, n * 16))
    return gap


def lloyd(rows, centres, shift, tol, max_iter=MAX_ITER, n_threads=None, seeding=None):
    """scikit-learn's `_kmeans_single_lloyd` from `centres` (y's coordinates).

    Returns (labels int32, centres in the dtype, rows per cluster, iterations).
    Stops when no label changed (strict convergence) or when the squared
    centre shifts sum to at most `tol`; after the latter (or max_iter) one
    more pass labels the rows by the final centres.

    `seeding`: [closest, nearest] from kmeans_plusplus(..., return_state=True)
    when `centres` are its seeds: the first pass then starts from bounds
    (seeding_gaps) instead of comparing every row with every centre. The
    labels are the same bit for bit. The list is emptied either way (its
    arrays freed), and with bounds nearest becomes the labels (no N-long
    copy).
    """
    dtype = rows.dtype
    shift = np.ascontiguousarray(shift, dtype=dtype)
    centres = np.ascontiguousarray(centres, dtype=dtype)
    # A bound a row (float32): the first pass compares every row with every
    # centre; later ones only the rows whose label the bound cannot keep.
    # Worth it where the comparisons dominate a pass: with K x D below
    # BOUNDED_MIN_WORK the bookkeeping cost more than it saved.
    bounded = centres.shape[0] * centres.shape[1] >= BOUNDED_MIN_WORK
    if bounded and seeding is not None:
        closest, labels = seeding
        seeding.clear()
        gap = seeding_gaps(centres, closest, labels, dtype)
        del closest
    else:
        if seeding is not None:
            seeding.clear()     # unbounded: the seeding's state is of no use, free it
        labels = np.full(rows.n_samples, -1, dtype=np.int32)
        gap = np.empty(rows.n_samples if bounded else 0, dtype=np.float32)
    delta = np.zeros(centres.shape[0])

    def bounds():
        return (gap, delta, _max_squared_norm(centres)) if bounded else None

    strict = False
    for iteration in range(max_iter):
        changed, counts, weights, sums = _lloyd_pass(
            rows, shift, centres, labels, True, n_threads, bounds=bounds())
        if iteration == 0:
            changed = rows.n_samples    # scikit-learn's first labels replace none
        if np.any(weights == 0):
            _relocate_empty_clusters(rows, shift, centres, labels, weights, sums)
        new_centres = _average_centres(sums, weights, dtype)
        centre_shift = _centre_shift(centres, new_centres)
        delta = _moved(centres, new_centres)
        centres = new_centres
        if changed == 0:
            strict = True
            break
        if (centre_shift ** 2).sum() <= tol:
            break
    if not strict:
        _, counts, _, _ = _lloyd_pass(rows, shift, centres, labels, False, n_threads,
                                      bounds=bounds())
    return labels, centres, counts, iteration + 1


def _squared_norms(rows):
    """sum_j rows[k, j]^2 for every row, in double, and the factor that
    raises a value computed from them past its rounding."""
    rows = rows.astype(np.float64)
    return np.einsum("kj,kj->k", rows, rows), 1.0 + 2.0 * (rows.shape[1] + 8) * _EPS["d"]


def _moved(old, new):
    """An upper bound on |new_k - old_k| for every centre, in double: the
    norm of the difference taken in double, widened by its rounding."""
    squares, widen = _squared_norms(new.astype(np.float64) - old.astype(np.float64))
    return np.sqrt(squares) * widen


def _max_squared_norm(centres):
    """An upper bound on max_k |c_k|^2 (0 for no centres)."""
    squares, widen = _squared_norms(centres)
    return float(squares.max(initial=0.0)) * widen


def kmeans(rows, n_clusters, random_state, n_threads=None):
    """KMeans(n_clusters, n_init=1, random_state).fit on the rows.

    Returns (labels int32, centres in the rows' dtype, rows per cluster).
    """
    mean, variances = rows.mean_and_variance()
    tol = np.mean(variances) * TOL
    state = list(kmeans_plusplus(rows, n_clusters, random_state, shift=mean,
                                 n_threads=n_threads, return_state=True))
    seeds = state[0]
    del state[:2]       # lloyd takes closest and nearest, and frees closest
    labels, centres, counts, _ = lloyd(rows, seeds, mean, tol, n_threads=n_threads,
                                       seeding=state)
    centres += mean
    return labels, centres, counts
