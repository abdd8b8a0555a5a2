"""The default initialisation's k-means, in the native core, against scikit-learn's KMeans.

scikit-learn's public KMeans (n_init=1, OpenMP limited to one thread so
that its own sums have one order) is the reference: the same labels, the
centres within 1e-10 relative in float64, the random state left where
KMeans leaves it. The numpy steps that the draws go through are checked
against numpy bit for bit, and every result against itself on 1 to 16
threads.
"""

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus as sk_kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from fastgmm import GaussianMixture, _kmeans
from fastgmm._bench import make_blobs
from fastgmm._initialization import first_rows, kmeans, kmeans_plusplus
from fastgmm._kernels._columns import (
    column_moments, column_sq_devs, column_sums, cumsum_search, cumsum_search_blocked,
    first_draw,
)

from conftest import make_mixture

DTYPES = [np.float64, np.float32]


# ------------------------------------------------------------ column moments

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2), (2, 2), (3, 100), (1000, 2), (4097, 3),
                                   (2000, 39), (257, 128)])
def test_column_moments_equal_numpy_bitwise(dtype, shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    scales = 10.0 ** rng.uniform(-6, 6, size=shape[1])
    X = (rng.normal(size=shape) * scales + rng.normal(size=shape[1]) * 3 * scales).astype(dtype)
    mean, var = column_moments(X)
    assert mean.dtype == var.dtype == dtype
    np.testing.assert_array_equal(mean, X.mean(axis=0))
    np.testing.assert_array_equal(var, X.var(axis=0))


def test_column_moments_signed_zero_and_overflow_as_numpy():
    X = np.array([[-0.0, 1e300], [-0.0, -1e300], [-0.0, 1e300]])
    mean, var = column_moments(X)
    with np.errstate(over="ignore"):
        expected_mean, expected_var = X.mean(axis=0), X.var(axis=0)
    np.testing.assert_array_equal(np.signbit(mean), np.signbit(expected_mean))
    np.testing.assert_array_equal(mean, expected_mean)
    np.testing.assert_array_equal(var, expected_var)   # inf for the second column


@pytest.mark.parametrize("bad, error", [
    (np.zeros((5, 1)), ValueError),
    (np.zeros((0, 3)), ValueError),
    (np.zeros(4), ValueError),
    (np.zeros((4, 3), dtype=np.int64), TypeError),
])
def test_column_moments_rejects_what_it_cannot_reproduce(bad, error):
    with pytest.raises(error):
        column_moments(bad)


def test_column_sweeps_block_by_block_equal_column_moments():
    X, _ = make_mixture(1001, 5, 3, seed=3)
    for dtype in DTYPES:
        Xd = (X * 1e3 + 7).astype(dtype)
        acc = np.zeros(5, dtype=dtype)
        for start in (0, 1, 400, 777):
            stop = {0: 1, 1: 400, 400: 777, 777: 1001}[start]
            column_sums(Xd[start:stop], acc)
        mean = (acc.astype(np.float64) / Xd.shape[0]).astype(dtype)
        sq = np.zeros(5, dtype=dtype)
        column_sq_devs(Xd[:500], mean, sq)
        column_sq_devs(Xd[500:], mean, sq)
        var = (sq.astype(np.float64) / Xd.shape[0]).astype(dtype)
        expected = column_moments(Xd)
        np.testing.assert_array_equal(mean, expected[0])
        np.testing.assert_array_equal(var, expected[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_rows", [1, 7, 300, 20_000])
def test_one_feature_moments_follow_numpys_pairwise_tree(monkeypatch, dtype, n_rows):
    # A single column: numpy sums pairwise; the blocks (shrunk here so that
    # the recursion above them runs) must land on its tree exactly.
    monkeypatch.setattr(_kmeans, "NUMPY_BLOCK_ROWS", 200)
    rng = np.random.default_rng(n_rows)
    X = (rng.normal(size=(n_rows, 1)) * 1e3 + 1e4).astype(dtype)
    mean, var = _kmeans.mean_and_variance(X)
    np.testing.assert_array_equal(mean, X.mean(axis=0))
    np.testing.assert_array_equal(var, X.var(axis=0))
    assert mean.dtype == var.dtype == dtype


# ------------------------------------------------------------ numpy's draws

@pytest.mark.parametrize("dtype", DTYPES)
def test_first_draw_is_random_state_choice(dtype):
    rng = np.random.default_rng(5)
    for seed in range(40):
        n = int(rng.integers(1, 5000))
        w = rng.uniform(0, 3, n).astype(dtype)
        w[rng.random(n) < 0.3] = 0
        if not w.any():
            continue
        u = np.random.RandomState(seed).random_sample()
        assert first_draw(w, n, w.sum(), u) == np.random.RandomState(seed).choice(
            n, p=w / w.sum())
        ones = np.ones(n, dtype=dtype)
        assert first_draw(np.empty(0, dtype=dtype), n, ones.sum(), u) == (
            np.random.RandomState(seed).choice(n, p=ones / ones.sum()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumsum_search_is_searchsorted_of_cumsum(dtype):
    rng = np.random.default_rng(6)
    for _ in range(40):
        n = int(rng.integers(1, 5000))
        d = rng.exponential(size=n).astype(dtype)
        d[rng.random(n) < 0.2] = 0
        w = rng.uniform(0, 3, n).astype(dtype)
        total = float((w * d).sum())
        r = np.sort(np.concatenate([rng.uniform(size=6) * total * 1.001, [0.0]]))
        np.testing.assert_array_equal(cumsum_search(w, d, r), np.searchsorted(np.cumsum(w * d), r))
        np.testing.assert_array_equal(cumsum_search(np.empty(0, dtype=dtype), d, r),
                                      np.searchsorted(np.cumsum(d), r))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scale", [1e-300, 1e-20, 1.0, 1e20, 1e250])
def test_blocked_cumsum_search_is_the_sequential_one(scale, weighted):
    # k-means++'s float64 search by blocks (no chain of n adds) against
    # numpy's running sum: at random thresholds it answers itself (and must
    # agree), at thresholds on or next to a running sum it must either
    # agree or leave the search to the sequential sweep, never differ.
    rng = np.random.default_rng(int(np.log10(scale)) + 400 + weighted)
    resolved = 0
    for trial in range(30):
        n = int(rng.choice([1, 5, 1023, 1024, 1025, 4096 + 7, 70_000]))
        d = rng.exponential(size=n) * scale
        d[rng.random(n) < 0.3] = 0
        w = rng.uniform(0, 3, n) if weighted else np.empty(0)
        sums = np.cumsum(w * d if weighted else d)
        total = sums[-1]
        r = np.sort(np.concatenate([rng.uniform(size=6) * total * 1.001, [0.0]]))
        expected = np.searchsorted(sums, r)
        blocked = cumsum_search_blocked(w, d, r)
        if blocked is not None:
            resolved += 1
            np.testing.assert_array_equal(blocked, expected)
        np.testing.assert_array_equal(cumsum_search(w, d, r, nonnegative=True), expected)
        # on a running sum, a float either side of it, and in a run of zeros
        picks = np.concatenate([sums[rng.integers(0, n, size=4)], [total]])
        edges = np.sort(np.concatenate([picks, np.nextafter(picks, 0), np.nextafter(picks, np.inf)]))
        expected = np.searchsorted(sums, edges)
        blocked = cumsum_search_blocked(w, d, edges)
        assert blocked is None or np.array_equal(blocked, expected)
        np.testing.assert_array_equal(cumsum_search(w, d, edges, nonnegative=True), expected)
    assert resolved >= 25     # the blocked search is what runs, not the fallback


def test_blocked_cumsum_search_leaves_nan_and_inf_to_the_sweep():
    d = np.ones(5000)
    r = np.array([10.5, 3999.5])
    for bad in (np.nan, np.inf):
        e = d.copy()
        e[3000] = bad
        assert cumsum_search_blocked(np.empty(0), e, r) is None
        np.testing.assert_array_equal(cumsum_search(np.empty(0), e, r, nonnegative=True),
                                      cumsum_search(np.empty(0), e, r))
    np.testing.assert_array_equal(cumsum_search_blocked(np.empty(0), d, r), [10, 3999])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 8, 129, 1000, 2**17 + 3, 2**24 + 5])
def test_sum_of_ones_is_numpys(dtype, n):
    # float32 sums of ones stop being exact above 2**24: the tree matters.
    assert _kmeans._numpy_sum_of_ones(n, np.dtype(dtype).char) == np.ones(n, dtype=dtype).sum()


# ------------------------------------------------------------ k-means

def _sklearn_kmeans(X, n_clusters, seed, sample_weight):
    random_state = np.random.RandomState(seed)
    with threadpool_limits(1):
        fitted = KMeans(n_clusters=n_clusters, n_init=1, random_state=random_state).fit(
            X, sample_weight=sample_weight)
    return fitted.labels_, fitted.cluster_centers_, random_state.random_sample()


def _our_kmeans(X, n_clusters, seed, sample_weight, n_threads=None):
    random_state = np.random.RandomState(seed)
    labels, centers = kmeans(X, n_clusters, random_state, sample_weight, n_threads=n_threads)
    return labels, centers, random_state.random_sample()


def _weights(kind, n, rng):
    return {
        "none": None,
        "positive": rng.uniform(0.1, 3.0, size=n),
        "with zeros": rng.uniform(0.1, 3.0, size=n) * (rng.random(n) > 0.3),
    }[kind]


def _assert_same_kmeans(ours, theirs, dtype):
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1].dtype == theirs[1].dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10,
                                   atol=1e-10 * np.abs(theirs[1]).max())
    else:
        # scikit-learn sums float32 centres in float32, fastgmm in float64
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-4,
                                   atol=1e-4 * np.abs(theirs[1]).max())
    assert ours[2] == theirs[2]     # the random state advanced alike


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_features, n_clusters", [
    (1, 3), (2, 3), (5, 1), (5, 8), (16, 4), (16, 16), (39, 64), (9, 20),
])
@pytest.mark.parametrize("weighting", ["none", "positive", "with zeros"])
def test_kmeans_equals_sklearn(dtype, n_features, n_clusters, weighting):
    # (2, 3): blobs2d's shape, (16, 16): mid's, (39, 64): speech's, at small N
    X, _ = make_mixture(3000, n_features, max(n_clusters, 2), dtype=dtype, seed=n_features,
                        scale=2.0)
    sample_weight = _weights(weighting, X.shape[0], np.random.default_rng(1))
    for seed in range(3):
        _assert_same_kmeans(_our_kmeans(X, n_clusters, seed, sample_weight),
                            _sklearn_kmeans(X, n_clusters, seed, sample_weight), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kmeans_equals_sklearn_far_from_the_origin(dtype):
    # Centring on the column means is part of the algorithm: data at 1e4
    # with unit spread gives the same answer only if it is centred alike.
    X, _ = make_mixture(2000, 3, 4, dtype=np.float64, seed=9)
    X = (X + 1e4).astype(dtype)
    for seed in range(3):
        _assert_same_kmeans(_our_kmeans(X, 4, seed, None), _sklearn_kmeans(X, 4, seed, None),
                            dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighting", ["none", "with zeros"])
def test_kmeans_plusplus_equals_sklearn(dtype, weighting):
    # The public kmeans_plusplus: no centring, the same rows chosen.
    X, _ = make_mixture(2500, 6, 12, dtype=dtype, seed=4)
    sample_weight = _weights(weighting, X.shape[0], np.random.default_rng(2))
    for seed in range(4):
        theirs_state = np.random.RandomState(seed)
        with threadpool_limits(1):
            centres, indices = sk_kmeans_plusplus(X, 12, random_state=theirs_state,
                                                  sample_weight=sample_weight)
        ours_state = np.random.RandomState(seed)
        our_centres, our_indices = kmeans_plusplus(X, 12, ours_state, sample_weight)
        np.testing.assert_array_equal(our_indices, indices)
        np.testing.assert_array_equal(our_centres, centres)
        assert our_centres.dtype == dtype
        assert ours_state.random_sample() == theirs_state.random_sample()


@pytest.mark.parametrize("n_local_trials", [1, 8, 11])
def test_kmeans_plusplus_with_more_candidates_than_marks(n_local_trials):
    # Above MAX_MARKED_CANDIDATES (K > 1096 by default) the candidates go
    # eight a pass and the chosen one joins by the triangle inequality.
    X, _ = make_mixture(2000, 4, 6, seed=14)
    theirs_state = np.random.RandomState(3)
    with threadpool_limits(1):
        centres, indices = sk_kmeans_plusplus(X, 6, random_state=theirs_state,
                                              n_local_trials=n_local_trials)
    ours_state = np.random.RandomState(3)
    our_centres, our_indices = _kmeans.kmeans_plusplus(_kmeans.ArrayRows(X), 6, ours_state,
                                                       n_local_trials=n_local_trials)
    np.testing.assert_array_equal(our_indices, indices)
    np.testing.assert_array_equal(our_centres, centres)
    assert ours_state.random_sample() == theirs_state.random_sample()


def test_kmeans_warns_as_sklearn_on_duplicate_points():
    X = np.repeat(np.array([[0.0, 1.0], [2.0, 3.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning) as ours:
        labels, _ = kmeans(X, 3, np.random.RandomState(0))
    with pytest.warns(ConvergenceWarning) as theirs:
        expected = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X).labels_
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_empty_clusters_are_relocated_as_sklearn(dtype, weighted):
    # Lloyd from given centres, two of them far from every row: their
    # clusters are empty after the first step and take the farthest rows.
    # (Weighted: a cluster whose rows all have weight 0 is empty too.)
    X, _ = make_mixture(600, 3, 3, dtype=dtype, seed=8)
    init = np.concatenate([X[:3], [[100.0, 100.0, 100.0], [-90.0, 80.0, 0.0]]]).astype(dtype)
    sample_weight = None
    if weighted:
        sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
        sample_weight[X[:, 0] > np.quantile(X[:, 0], 0.9)] = 0.0
    with threadpool_limits(1):
        ref = KMeans(n_clusters=5, init=init, n_init=1).fit(X, sample_weight=sample_weight)
    rows = _kmeans.ArrayRows(X, sample_weight)
    mean, variances = rows.mean_and_variance()
    relocations = []
    original = _kmeans._relocate_empty_clusters

    def spy(*args):
        relocations.append(np.flatnonzero(args[4] == 0))
        return original(*args)

    _kmeans._relocate_empty_clusters = spy
    try:
        labels, centres, _, n_iter = _kmeans.lloyd(rows, init - mean, mean,
                                                   np.mean(variances) * _kmeans.TOL)
    finally:
        _kmeans._relocate_empty_clusters = original
    assert relocations and relocations[0].size >= 1
    np.testing.assert_array_equal(labels, ref.labels_)
    assert n_iter == ref.n_iter_
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(centres + mean, ref.cluster_centers_, rtol=rtol,
                               atol=rtol * np.abs(ref.cluster_centers_).max())


def _seeding_problems(dtype):
    """Data for Lloyd's first bounds from k-means++: blobs wide enough for
    Lloyd to keep bounds, overlapping blobs (rows near the bisectors, where
    a bound too loose changes a label once the centres move), uniform rows,
    duplicates and an integer grid (exact ties)."""
    rng = np.random.default_rng(21)
    # speech's shape of data: blobs well apart (N(0, 25 I) centres, unit noise)
    yield "blobs", make_blobs(3000, 40, 32)[0], 32
    centres = rng.normal(size=(8, 6)) * 1.2
    yield "overlapping", centres[rng.integers(0, 8, 4000)] + rng.normal(size=(4000, 6)), 12
    yield "uniform", rng.uniform(size=(2000, 8)), 20
    yield "duplicates", np.repeat(rng.normal(size=(60, 5)), 20, axis=0), 16
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2)
    yield "grid", np.repeat(grid, 4, axis=0).astype(np.float64), 9


@pytest.mark.parametrize("scale", [1e-20, 1e-6, 1.0, 1e6, 1e20])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lloyd_from_the_seeding_bounds_is_bitwise_lloyd(dtype, scale, monkeypatch):
    """The first Lloyd pass after k-means++ starts from bounds built of the
    seeding's distances (seeding_gaps) instead of every row against every
    centre: labels, centres, counts and iterations bit for bit the same."""
    monkeypatch.setattr(_kmeans, "BOUNDED_MIN_WORK", 0)
    for name, X, K in _seeding_problems(dtype):
        X = (X * scale).astype(dtype)
        rows = _kmeans.ArrayRows(X)
        mean, variances = rows.mean_and_variance()
        tol = np.mean(variances) * _kmeans.TOL
        seeds, _, closest, nearest = _kmeans.kmeans_plusplus(
            rows, K, np.random.RandomState(5), shift=mean, return_state=True)
        skipped = np.mean(_kmeans.seeding_gaps(seeds, closest, nearest, dtype) > 0)
        with np.errstate(over="ignore", invalid="ignore"):   # float32 at 1e20 overflows
            plain = _kmeans.lloyd(rows, seeds, mean, tol)
            seeded = _kmeans.lloyd(rows, seeds, mean, tol, seeding=[closest, nearest])
        for a, b, what in zip(seeded, plain, ("labels", "centres", "counts", "iterations")):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {what}")
        if name == "blobs" and not (dtype == np.float32 and scale > 1e15):
            assert skipped > 0.9      # the bounds are what the first pass uses
        elif name == "blobs":
            assert skipped == 0       # float32 squares overflow: no bounds, every row compared


def test_lloyd_lets_go_of_the_seeding_state_without_bounds():
    # K x D below BOUNDED_MIN_WORK: no bounds, so the seeding's closest and
    # nearest (9 or 13 bytes a row) must not stay alive through Lloyd.
    X, _ = make_mixture(3000, 4, 5, dtype=np.float64, seed=30)
    assert 4 * 5 < _kmeans.BOUNDED_MIN_WORK
    rows = _kmeans.ArrayRows(X)
    mean, variances = rows.mean_and_variance()
    tol = np.mean(variances) * _kmeans.TOL
    seeds, _, closest, nearest = _kmeans.kmeans_plusplus(
        rows, 5, np.random.RandomState(1), shift=mean, return_state=True)
    state = [closest, nearest]
    seeded = _kmeans.lloyd(rows, seeds, mean, tol, seeding=state)
    assert state == []
    for a, b in zip(seeded, _kmeans.lloyd(rows, seeds, mean, tol)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("scale", [1e-20, 1.0, 1e20])
def test_seeding_gaps_are_lower_bounds(scale):
    """seeding_gaps[i] <= min_{k != a} |y - s_k| - |y - s_a| (a the seed k-means++
    left as nearest), the distances taken exactly (in long double from the
    float64 values), on every problem and scale."""
    for name, X, K in _seeding_problems(np.float64):
        X = X * scale
        rows = _kmeans.ArrayRows(X)
        mean, _ = rows.mean_and_variance()
        seeds, _, closest, nearest = _kmeans.kmeans_plusplus(
            rows, K, np.random.RandomState(5), shift=mean, return_state=True)
        gap = _kmeans.seeding_gaps(seeds, closest, nearest, np.float64)
        y = (X - mean).astype(np.longdouble)
        dist = np.sqrt(((y[:, None, :] - seeds.astype(np.longdouble)[None]) ** 2).sum(-1))
        own = dist[np.arange(len(y)), nearest]
        dist[np.arange(len(y)), nearest] = np.inf
        exact = dist.min(axis=1) - own
        assert (gap.astype(np.longdouble) <= exact).all(), name
        if name == "blobs":
            assert np.mean(gap > 0.5 * exact) > 0.5     # and not vacuous ones


def test_seeding_gap_rows_checks_its_arguments():
    from fastgmm._kernels._kmeans import seeding_gap_rows
    closest, gap = np.ones(4), np.empty(4, np.float32)
    half, slack = np.ones(2), np.zeros(2)
    with pytest.raises(ValueError, match=r"nearest\[2\] = 2 is not one of the 2 seeds"):
        seeding_gap_rows(closest, np.array([0, 1, 2, 0], np.int32), half, slack, 1e-15, gap, 1)
    with pytest.raises(ValueError, match=r"nearest\[3\] = -1 is not one of the 2 seeds"):
        seeding_gap_rows(closest, np.array([0, 1, 1, -1], np.int32), half, slack, 1e-15, gap, 1)
    with pytest.raises(ValueError, match="one entry per row"):
        seeding_gap_rows(closest, np.zeros(3, np.int32), half, slack, 1e-15, gap, 1)
    with pytest.raises(ValueError, match="e must be"):
        seeding_gap_rows(closest, np.zeros(4, np.int32), half, slack, np.nan, gap, 1)
    seeding_gap_rows(np.array([0.0, 0.01, np.inf, np.nan]), np.zeros(4, np.int32), half, slack,
                     1e-15, gap, 1)
    assert gap[0] == -1 and 0 < gap[1] < 1 - 2 * 0.1 + 1e-6 and gap[2] == -np.inf
    assert np.isnan(gap[3])       # no bound: lloyd_pass compares such a row with every centre


def test_a_cluster_left_empty_takes_the_heaviest_row_as_sklearn_does():
    # Every row on a centre (no distance left to relocate by): scikit-learn
    # gives the empty clusters the heaviest cluster's row, as its loop finds it.
    sums = np.array([[2.0, 4.0], [0.0, 0.0], [9.0, 3.0], [0.0, 0.0]])
    weights = np.array([2.0, 0.0, 3.0, 0.0])
    centres = _kmeans._average_centres(sums, weights, np.float64)
    np.testing.assert_array_equal(centres, [[1.0, 2.0], [9.0, 3.0], [3.0, 1.0], [3.0, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighting", ["none", "with zeros"])
@pytest.mark.parametrize("n, D, K, bounded", [
    (9000, 7, 6, False),
    (6000, 40, 32, True),     # Lloyd keeps a bound a row and skips rows
])
def test_kmeans_is_bitwise_the_same_on_any_number_of_threads(dtype, weighting, n, D, K,
                                                              bounded):
    assert (D * K >= _kmeans.BOUNDED_MIN_WORK) == bounded
    X, _ = make_mixture(n, D, K, dtype=dtype, seed=11, scale=1.5)
    sample_weight = _weights(weighting, X.shape[0], np.random.default_rng(3))
    expected = _our_kmeans(X, K, 0, sample_weight, n_threads=1)
    for n_threads in (2, 3, 5, 7, 16):
        ours = _our_kmeans(X, K, 0, sample_weight, n_threads=n_threads)
        np.testing.assert_array_equal(ours[0], expected[0])
        np.testing.assert_array_equal(ours[1], expected[1])
        assert ours[2] == expected[2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_fits_are_bitwise_the_same_on_any_number_of_threads(dtype, init_params):
    X, _ = make_mixture(6000, 4, 4, dtype=dtype, seed=12, scale=2.0)
    fitted = {}
    for n_threads in (1, 2, 3, 5, 7, 16):
        with threadpool_limits(n_threads, user_api="openmp"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm = GaussianMixture(4, init_params=init_params, random_state=0).fit(X)
        fitted[n_threads] = gmm
    for n_threads, gmm in fitted.items():
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            np.testing.assert_array_equal(getattr(gmm, name), getattr(fitted[1], name),
                                          err_msg=f"{name}, {n_threads} threads")
        assert gmm.lower_bound_ == fitted[1].lower_bound_
        assert gmm.means_.dtype == dtype


def test_float32_stays_float32():
    X, _ = make_mixture(2000, 5, 4, dtype=np.float32, seed=13)
    rows = _kmeans.ArrayRows(X, np.linspace(0.5, 1.5, X.shape[0]))
    assert rows.weights.dtype == np.float32
    labels, centres, counts = _kmeans.kmeans(rows, 4, np.random.RandomState(0))
    assert labels.dtype == np.int32 and centres.dtype == np.float32
    seeds, indices = _kmeans.kmeans_plusplus(rows, 4, np.random.RandomState(0))
    assert seeds.dtype == np.float32


def test_kmeans_leaves_the_input_alone():
    X, _ = make_mixture(500, 3, 3)
    before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kmeans(X, 3, np.random.RandomState(0))
    np.testing.assert_array_equal(X, before)


def test_a_column_view_gives_the_same_kmeans():
    X, _ = make_mixture(500, 3, 3)
    np.testing.assert_array_equal(_our_kmeans(np.asfortranarray(X), 3, 7, None)[0],
                                  _our_kmeans(X, 3, 7, None)[0])


def test_first_rows_of_each_cluster(monkeypatch):
    monkeypatch.setattr(_kmeans, "NUMPY_BLOCK_ROWS", 5)
    labels = np.array([2, 2, 0, 2, 0, 0, 3, 0, 2, 3, 3, 0], dtype=np.int32)
    np.testing.assert_array_equal(first_rows(labels, 5), [2, -1, 0, 6, -1])
