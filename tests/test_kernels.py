"""The native kernels (_suffstats.em_pass, _estep.estimate) against a numpy reference.

The reference (tests/_reference.py) is float64 numpy written from the
definitions. Inputs are first rounded to the data's dtype, so kernel and
reference see the same numbers and only the kernel's internal arithmetic
differs. An error is measured against the absolute scale of the terms of a
sum (see _reference.py), with rtol 1e-10 for float64 and 1e-4 for float32.

Every test runs once per kernel variant that is built into the installation
and runnable here: one for a source build, "baseline" and "x86-64-v3" for an
x86-64 wheel (see fastgmm._kernels._dispatch).
"""

import math

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import fastgmm
import _reference as ref
from fastgmm._kernels._dispatch import available_variants, em_pass, estimate, use_variant
from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads
from fastgmm._kernels._suffstats import CHUNK_ROWS
from fastgmm._parameters import KernelParams, compute_precision_cholesky, n_slots_for
from fastgmm._kernels._suffstats import (
    ROWWISE_FULL_FEATURES, TILED_FULL_MAX_FEATURES, TRMM_MIN_FEATURES,
)
from fastgmm._threads import n_threads_for

# The full kernel has three paths: row-wise loops up to ROWWISE_FULL_FEATURES,
# register tiles up to TILED_FULL_MAX_FEATURES (odd D exercises the tiles'
# remainder column), BLAS (trmm, syrk) above. Tied always calls BLAS: gemm
# below TRMM_MIN_FEATURES, trmm from there. Every path is tested.
D_TILED = ROWWISE_FULL_FEATURES + 3
D_TRMM = TRMM_MIN_FEATURES + 1
D_BLAS = TILED_FULL_MAX_FEATURES + 1

COV_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


# ---------------------------------------------------------------- helpers
#
# The reference comparisons run the kernels on one thread (this machine is
# small and shared; thread wake-ups dominate tiny calls); the determinism
# tests below show 1, 2 and 3 threads give bitwise the same results.


@pytest.fixture(autouse=True, scope="module", params=available_variants())
def kernel_variant(request):
    # em_pass, estimate and kernel_math (and the estimator, which calls the
    # same dispatcher) run the variant named in the test id.
    with use_variant(request.param):
        yield request.param


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    # As during fit: OpenBLAS threads spawned from inside the OpenMP kernels
    # oversubscribe this machine and make the D > 8 cases many times slower.
    with threadpool_limits(1, user_api="blas"):
        yield


def random_params(rng, covariance_type, n_components, n_features, dtype):
    """(weights, means, precisions_cholesky) from random SPD covariances, rounded to dtype."""
    K, D = n_components, n_features
    weights = rng.dirichlet(np.full(K, 2.0))
    means = rng.normal(scale=3.0, size=(K, D))
    if covariance_type in ("full", "tied"):
        n = K if covariance_type == "full" else 1
        A = rng.normal(size=(n, D, D))
        cov = A @ np.swapaxes(A, 1, 2) / D + 0.3 * np.eye(D)
        cov = cov if covariance_type == "full" else cov[0]
    elif covariance_type == "diag":
        cov = rng.uniform(0.3, 3.0, size=(K, D))
    else:
        cov = rng.uniform(0.3, 3.0, size=K)
    chol = compute_precision_cholesky(cov, covariance_type)
    return tuple(np.asarray(p, dtype=dtype).astype(np.float64) for p in (weights, means, chol))


def random_data(rng, means, n_samples, dtype):
    labels = rng.integers(means.shape[0], size=n_samples)
    noise = 1.5 * rng.normal(size=(n_samples, means.shape[1]))
    return np.ascontiguousarray(means[labels] + noise, dtype=dtype)


def expected_stat_size(covariance_type, K, D):
    s2 = {"full": K * D * (D + 1) // 2, "tied": D * D}.get(covariance_type, K * D)
    return 1 + K + K * D + s2


def run_em_pass(X, params, covariance_type, sample_weight=None, resp=None, n_slots=None,
                n_threads=1):
    """Call em_pass as the estimator does; returns (stats array, KernelParams)."""
    N, D = X.shape
    K = params[1].shape[0]
    kp = KernelParams(*params, covariance_type, X.dtype)
    assert kp.code == ref.COV_CODE[covariance_type]
    if n_slots is None:
        n_slots = n_slots_for(N, covariance_type, K, D)
    stats = np.zeros((n_slots, expected_stat_size(covariance_type, K, D)))
    sw = np.empty(0) if sample_weight is None else np.ascontiguousarray(sample_weight, np.float64)
    rg = np.empty((0, K), X.dtype) if resp is None else np.ascontiguousarray(resp, X.dtype)
    em_pass(X, sw, *kp.args(), rg, kp.code, stats, n_threads)
    return stats, kp


def run_estimate(X, params, covariance_type, n_threads=1, want=("labels", "log_prob", "resp")):
    N = X.shape[0]
    K = params[1].shape[0]
    kp = KernelParams(*params, covariance_type, X.dtype)
    labels = np.full(N if "labels" in want else 0, -1, dtype=np.int64)
    log_prob = np.full(N if "log_prob" in want else 0, np.nan, dtype=X.dtype)
    resp = np.full((N if "resp" in want else 0, K), np.nan, dtype=X.dtype)
    estimate(X, *kp.args(), kp.code, labels, log_prob, resp, n_threads)
    return labels, log_prob, resp


def assert_within(actual, expected, scale, rtol, what, atol=0.0):
    """|actual - expected| <= rtol * scale + atol, elementwise."""
    actual, expected, scale = (np.asarray(a, dtype=np.float64) for a in (actual, expected, scale))
    assert actual.shape == expected.shape, what
    err = np.abs(actual - expected)
    bound = rtol * np.broadcast_to(scale, err.shape) + atol
    bad = ~(err <= bound)  # NaN counts as bad
    if bad.any():
        ratio = np.where(bad, err / np.maximum(bound, 1e-300), 0.0)
        worst = np.unravel_index(np.argmax(ratio), err.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} entries off; worst at {worst}: kernel "
            f"{actual[worst]!r}, reference {expected[worst]!r}, bound {bound[worst]!r}"
        )


def check_stats(stats, kp, X, params, covariance_type, sample_weight=None, resp=None):
    """Summed kernel stats against the reference."""
    dtype = X.dtype.type
    K, D = params[1].shape
    got = ref.unpack_kernel_stats(stats.sum(axis=0), covariance_type, K, D)
    if resp is None:
        e = ref.e_step(X, *params, covariance_type)
        r, lse, lse_scale = e["resp"], e["lse"], e["lse_scale"]
    else:
        r, lse, lse_scale = np.asarray(resp, dtype=dtype), None, None
    tied_center = kp.tied_center if covariance_type == "tied" else None
    val, scale = ref.suff_stats(
        X, params[1], covariance_type, r, lse, lse_scale, sample_weight, tied_center
    )
    val["s2"] = ref.lower(val["s2"], covariance_type)
    scale["s2"] = ref.lower(scale["s2"], covariance_type)
    # Contributions whose sqrt(r_ik) (x_i - mu_k) underflow the dtype (float32
    # full/tied S2 partial products, D > 8) may be lost: allow that much absolutely.
    atol = np.finfo(dtype).tiny ** 0.5
    for key in ("ll", "nk", "s1", "s2"):
        assert_within(
            got[key], val[key], scale[key], RTOL[dtype], f"{covariance_type}/{X.dtype}/{key}", atol
        )
    if resp is not None:
        assert got["ll"] == 0.0


# ---------------------------------------------------- the reference itself


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_reference_log_prob_matches_scipy(covariance_type):
    # Guards the reference: its log-densities equal scipy's multivariate_normal.
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    K, D = 3, 4
    weights, means, chol = random_params(rng, covariance_type, K, D, np.float64)
    X = random_data(rng, means, 50, np.float64)
    e = ref.e_step(X, weights, means, chol, covariance_type)
    for k in range(K):
        if covariance_type == "full":
            prec = chol[k] @ chol[k].T
        elif covariance_type == "tied":
            prec = chol @ chol.T
        elif covariance_type == "diag":
            prec = np.diag(chol[k] ** 2)
        else:
            prec = np.eye(D) * chol[k] ** 2
        expected = np.log(weights[k]) + multivariate_normal(means[k], np.linalg.inv(prec)).logpdf(X)
        np.testing.assert_allclose(e["wlp"][:, k], expected, rtol=1e-9)
    np.testing.assert_allclose(e["resp"].sum(axis=1), 1.0, rtol=1e-12)


# ------------------------------------------------- em_pass vs reference

SIZES = [1, CHUNK_ROWS - 1, CHUNK_ROWS, CHUNK_ROWS + 1, 1000]


def _weights(rng, mode, N):
    if mode == "random":
        return rng.uniform(0.1, 3.0, size=N)
    if mode == "zeros":
        # Some zero weights, and the whole second chunk zero where there is one.
        w = rng.uniform(0.1, 3.0, size=N) * (rng.random(N) < 0.5)
        w[CHUNK_ROWS : 2 * CHUNK_ROWS] = 0.0
        return w
    return None


def _resp(rng, N, K):
    r = rng.dirichlet(np.ones(K), size=N) * (rng.random((N, K)) < 0.7)
    r[np.arange(N), rng.integers(K, size=N)] += 0.1
    return r / r.sum(axis=1, keepdims=True)


# Every chunk boundary unweighted; the weighted and given-responsibility modes
# on one row, a partial second chunk and several chunks.
MODES_AND_SIZES = [("unweighted", n) for n in SIZES] + [
    (mode, n)
    for mode in ("random", "zeros", "resp", "resp+random")
    for n in (1, CHUNK_ROWS + 1, 1000)
]


@pytest.mark.parametrize("mode, N", MODES_AND_SIZES)
@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("D", [1, 3, 12, D_TILED, D_TRMM, D_BLAS])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_matches_reference(dtype, covariance_type, D, K, N, mode):
    rng = np.random.default_rng([D, K, N, len(mode)])
    params = random_params(rng, covariance_type, K, D, dtype)
    X = random_data(rng, params[1], N, dtype)
    sw = _weights(rng, mode.replace("resp+", ""), N)
    resp = _resp(rng, N, K).astype(dtype) if mode.startswith("resp") else None
    stats, kp = run_em_pass(X, params, covariance_type, sample_weight=sw, resp=resp)
    check_stats(stats, kp, X, params, covariance_type, sample_weight=sw, resp=resp)


# Many components: the vectorised loops over components work in blocks of
# native vectors (diag and tied: two vectors of components, rows four at a
# time; 8 to 32 components a block depending on dtype and vector width),
# with the remaining components and rows in plain loops. K = 37 leaves a
# remainder at every width, K = 64 none; N = CHUNK_ROWS + 3 leaves 3 rows.
@pytest.mark.parametrize("N", [CHUNK_ROWS + 3, 1000])
@pytest.mark.parametrize("K", [37, 64])
@pytest.mark.parametrize("D", [1, 3, 12, D_TILED])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_many_components_matches_reference(dtype, covariance_type, D, K, N):
    rng = np.random.default_rng([D, K, N, 7])
    params = random_params(rng, covariance_type, K, D, dtype)
    X = random_data(rng, params[1], N, dtype)
    sw = _weights(rng, "random", N)
    stats, kp = run_em_pass(X, params, covariance_type, sample_weight=sw)
    check_stats(stats, kp, X, params, covariance_type, sample_weight=sw)


# Full covariance with D <= 4 and K < 8 runs one fused kernel, compiled once
# per D (1 to 4) and weighting: every copy, up to the largest K it takes,
# with a partial last block of rows (1000 = 3 chunks + 232 rows).
@pytest.mark.parametrize("mode", ["unweighted", "zeros"])
@pytest.mark.parametrize("K", [2, 7])
@pytest.mark.parametrize("D", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_fused_small_full_matches_reference(dtype, D, K, mode):
    rng = np.random.default_rng([D, K, len(mode), 11])
    params = random_params(rng, "full", K, D, dtype)
    X = random_data(rng, params[1], 1000, dtype)
    sw = _weights(rng, mode, 1000)
    stats, kp = run_em_pass(X, params, "full", sample_weight=sw)
    check_stats(stats, kp, X, params, "full", sample_weight=sw)


# Far-apart components in many dimensions: most responsibilities underflow to
# exactly 0, and the full kernels leave those rows out (D > TILED_FULL_MAX_
# FEATURES: of each component's syrk; below, a component left with at most
# half a chunk has its rows packed and summed apart). Chunks where a
# component has every row, some rows, or none (the sorted labels give all
# three), plus zero weights. K = 9 keeps D = 3 off the fused small-D kernel.
# The kernel's own E-step makes the zeros, or they are given ("resp": the
# reference's float64 responsibilities, whose rows shared by two components
# are exact; from a float32 E-step those rows' responsibilities carry the
# float32 error of log-densities in the thousands, beyond the tolerance, so
# that case has no shared rows).
@pytest.mark.parametrize("source", ["estep", "resp"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("D", [3, D_TILED, D_TRMM, TILED_FULL_MAX_FEATURES, D_BLAS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_full_exact_zero_responsibilities(dtype, D, weighted, source):
    _check_far_apart_components(np.random.default_rng([17, D, weighted]), dtype, "full", D, 9,
                                weighted, source)


def _check_far_apart_components(rng, dtype, covariance_type, D, K, weighted, source):
    """em_pass against the reference on far-apart components with sorted
    labels (most responsibilities exactly 0), rows shared by two components
    where their responsibilities are exact, zero weights if `weighted`, the
    responsibilities computed by the kernel ("estep") or given ("resp")."""
    N = 3 * CHUNK_ROWS + 50
    params = random_params(rng, covariance_type, K, D, dtype)
    means = rng.normal(scale=60.0 / np.sqrt(D), size=(K, D)).astype(dtype).astype(np.float64)
    params = (params[0], means, params[2])
    labels = np.sort(rng.integers(K, size=N))
    X = means[labels] + 0.3 * rng.normal(size=(N, D))
    shared = source == "resp" or dtype == np.float64
    if shared:
        X[::37] = (means[labels[::37]] + means[(labels[::37] + 1) % K]) / 2
    X = np.ascontiguousarray(X, dtype=dtype)
    sw = _weights(rng, "zeros", N) if weighted else None
    r = ref.e_step(X, *params, covariance_type)["resp"]
    if D > 1:   # (one feature: neighbouring components overlap)
        assert (r == 0).mean() > 0.5
    assert ((r > 0).sum(axis=1) > 1).any() or not shared
    resp = r.astype(dtype) if source == "resp" else None
    stats, kp = run_em_pass(X, params, covariance_type, sample_weight=sw, resp=resp)
    check_stats(stats, kp, X, params, covariance_type, sample_weight=sw, resp=resp)


# diag and spherical leave out, component block by component block (64
# bytes of components: 8 float64, 16 float32), the rows whose
# responsibilities in the block are all exactly 0. K = 9, 37 and 64 give
# whole blocks, a partial one and both; sorted labels give chunks where a
# block has every row, some (more and fewer than the eight the kernel takes
# together) or none; float64 has rows shared by two components.
@pytest.mark.parametrize("source", ["estep", "resp"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("K", [9, 37, 64])
@pytest.mark.parametrize("D", [1, 3, 12, 39])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_diag_exact_zero_responsibilities(dtype, covariance_type, D, K, weighted, source):
    _check_far_apart_components(np.random.default_rng([19, D, K, weighted]), dtype,
                                covariance_type, D, K, weighted, source)


# Given responsibilities with one nonzero entry in a block, at each of its
# lanes, next to blocks of +0, -0 and subnormal entries (-0 is left out,
# a subnormal is kept): each component's sums against the reference.
@pytest.mark.parametrize("K", [8, 16, 40])
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_diag_block_skipping_reads_every_lane(dtype, K):
    rng = np.random.default_rng([23, K])
    D, N = 5, 2 * CHUNK_ROWS + 21
    params = random_params(rng, "diag", K, D, dtype)
    X = random_data(rng, params[1], N, dtype)
    resp = np.zeros((N, K))
    lane = np.arange(N) % K
    resp[np.arange(N), lane] = rng.uniform(0.5, 2.0, size=N)
    resp[1::7, (lane[1::7] + 1) % K] = np.finfo(dtype).smallest_subnormal
    resp[2::3][resp[2::3] == 0] = -0.0
    resp = resp.astype(dtype)
    assert np.signbit(resp).any() and (resp == np.finfo(dtype).smallest_subnormal).any()
    stats, kp = run_em_pass(X, params, "diag", resp=resp)
    check_stats(stats, kp, X, params, "diag", resp=resp)
    got = ref.unpack_kernel_stats(stats.sum(axis=0), "diag", K, D)
    assert (got["nk"] > 0).all()


@pytest.mark.parametrize("n_slots", [1, 3, 7])
@pytest.mark.parametrize("D", [3, D_TILED, D_TRMM, D_BLAS])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_any_slot_count_covers_every_chunk(dtype, covariance_type, D, n_slots):
    # 1000 rows are 4 chunks: 3 slots split them unevenly, 7 leave slots empty.
    rng = np.random.default_rng(n_slots)
    params = random_params(rng, covariance_type, 4, D, dtype)
    X = random_data(rng, params[1], 1000, dtype)
    sw = rng.uniform(0.1, 3.0, size=1000)
    stats, kp = run_em_pass(X, params, covariance_type, sample_weight=sw, n_slots=n_slots)
    check_stats(stats, kp, X, params, covariance_type, sample_weight=sw)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_pass_integer_weights_equal_repeated_rows(dtype, covariance_type):
    # Reference-free: weight 2 on a row is the row given twice, weight 0 no row.
    rng = np.random.default_rng(1)
    params = random_params(rng, covariance_type, 3, D_TILED, dtype)
    X = random_data(rng, params[1], 600, dtype)
    counts = rng.integers(0, 3, size=600)
    weighted, _ = run_em_pass(X, params, covariance_type, sample_weight=counts.astype(float))
    repeated, _ = run_em_pass(np.repeat(X, counts, axis=0), params, covariance_type)
    a, b = weighted.sum(axis=0), repeated.sum(axis=0)
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(b).max())


# ------------------------------------------------ estimate vs reference


@pytest.mark.parametrize("N", SIZES)
@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("D", [1, 3, 12, D_TILED, D_TRMM, D_BLAS])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_estimate_matches_reference(dtype, covariance_type, D, K, N):
    rng = np.random.default_rng([D, K, N])
    params = random_params(rng, covariance_type, K, D, dtype)
    X = random_data(rng, params[1], N, dtype)
    labels, log_prob, resp = run_estimate(X, params, covariance_type)
    assert log_prob.dtype == dtype and resp.dtype == dtype and labels.dtype == np.int64
    e = ref.e_step(X, *params, covariance_type)
    rtol = RTOL[dtype]
    assert_within(log_prob, e["lse"], e["lse_scale"], rtol, "log_prob")
    assert_within(resp, e["resp"], (1.0 + e["lse_scale"])[:, None], rtol, "resp")
    # Each label is a maximiser of the reference's weighted log-prob, up to the tolerance.
    assert ((labels >= 0) & (labels < K)).all()
    chosen = e["wlp"][np.arange(N), labels]
    assert_within(chosen, e["wlp"].max(axis=1), e["lse_scale"], rtol, "labels")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_estimate_outputs_requested_alone_equal_requested_together(dtype, covariance_type):
    rng = np.random.default_rng(2)
    params = random_params(rng, covariance_type, 4, 5, dtype)
    X = random_data(rng, params[1], 700, dtype)
    together = run_estimate(X, params, covariance_type)
    for i, name in enumerate(("labels", "log_prob", "resp")):
        alone = run_estimate(X, params, covariance_type, want=(name,))
        np.testing.assert_array_equal(alone[i], together[i])
        assert all(alone[j].shape[0] == 0 for j in range(3) if j != i)


# ------------------------------------------------------------ far away


# D = 2 (full: the fused small-D kernel) and D_TILED (every other path).
@pytest.mark.parametrize("D", [2, D_TILED])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_far_away_points_stay_finite(dtype, covariance_type, D):
    rng = np.random.default_rng(3)
    K = 3
    means = rng.normal(size=(K, D))
    chol = {
        "full": np.broadcast_to(np.eye(D), (K, D, D)),
        "tied": np.eye(D),
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
    }[covariance_type]
    params = (np.full(K, 1.0 / K), means.astype(dtype).astype(np.float64), np.array(chol))
    X = rng.normal(size=(600, D))
    X[::3] = 1e6
    X[1::3, :6] = -1e6
    X = X.astype(dtype)

    labels, log_prob, resp = run_estimate(X, params, covariance_type)
    assert np.isfinite(log_prob).all() and np.isfinite(resp).all()
    assert (log_prob[::3] < -1e12).all()
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=10 * np.finfo(dtype).eps)
    e = ref.e_step(X, *params, covariance_type)
    assert_within(log_prob, e["lse"], e["lse_scale"], RTOL[dtype], "log_prob")

    stats, kp = run_em_pass(X, params, covariance_type)
    assert np.isfinite(stats).all()
    got = ref.unpack_kernel_stats(stats.sum(axis=0), covariance_type, K, D)
    # float32 data has float32 responsibilities: each row sums to 1 to float32 rounding
    np.testing.assert_allclose(got["nk"].sum(), 600, rtol=max(1e-12, 10 * np.finfo(dtype).eps))
    check_stats(stats, kp, X, params, covariance_type)


# --------------------------------------------------------- determinism


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("D", [3, D_TILED, D_TRMM, D_BLAS])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_bitwise_identical_across_thread_counts(dtype, covariance_type, D, weighted):
    rng = np.random.default_rng(4)
    N = 40 * CHUNK_ROWS + 17
    params = random_params(rng, covariance_type, 4, D, dtype)
    X = random_data(rng, params[1], N, dtype)
    sw = rng.uniform(0.1, 3.0, size=N) if weighted else None
    assert n_slots_for(N, covariance_type, 4, D) > 3  # several slots per thread
    stats = [run_em_pass(X, params, covariance_type, sw, n_threads=t)[0] for t in (1, 2, 3)]
    outputs = [run_estimate(X, params, covariance_type, n_threads=t) for t in (1, 2, 3)]
    for other in stats[1:]:
        np.testing.assert_array_equal(other, stats[0])
        assert np.array_equal(other.sum(axis=0), stats[0].sum(axis=0))
    for other in outputs[1:]:
        for a, b in zip(other, outputs[0]):
            np.testing.assert_array_equal(a, b)


# 7 and 16 threads oversubscribe a small machine, but OpenMP runs them all:
# the slots, not the cores, fix the rounding.
FIT_THREAD_COUNTS = (1, 2, 3, 7, 16)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_bitwise_identical_across_thread_counts(dtype, covariance_type, weighted):
    rng = np.random.default_rng(5)
    params = random_params(rng, covariance_type, 4, 10, np.float64)
    X = random_data(rng, params[1], 20000, dtype)
    sw = rng.uniform(0.1, 3.0, size=X.shape[0]) if weighted else None
    fits = []
    for n in FIT_THREAD_COUNTS:
        with threadpool_limits(n, user_api="openmp"):
            assert openmp_effective_n_threads() == n
            assert n_threads_for(X.shape[0]) == n
            gm = fastgmm.GaussianMixture(
                4, covariance_type=covariance_type, max_iter=15, tol=0.0, random_state=0
            )
            with pytest.warns(ConvergenceWarning):  # tol=0: all 15 iterations run
                gm.fit(X, sample_weight=sw)
            fits.append(gm)
    a = fits[0]
    assert a.n_iter_ == 15
    for b in fits[1:]:
        assert b.n_iter_ == 15
        np.testing.assert_array_equal(a.means_, b.means_)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)
        np.testing.assert_array_equal(a.weights_, b.weights_)
        np.testing.assert_array_equal(a.precisions_cholesky_, b.precisions_cholesky_)
        assert a.lower_bounds_ == b.lower_bounds_


# From 8 components the rows' maxima and totals go eight rows at a time
# (each row's chain in order). Rows beyond double (float32) range of every
# component, at every place of a group of eight and in the tail, get
# lse = -inf and no responsibility; every other row's outputs are bitwise
# those it gets alone, and a pass with the far rows at weight 0 sums the same
# (to the rounding of float32's partial sums).
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_beyond_range_among_eight_rows_at_a_time(dtype, covariance_type):
    rng = np.random.default_rng(29)
    K, D, N = 12, 3, 8 * 5 + 5
    params = random_params(rng, covariance_type, K, D, dtype)
    X = random_data(rng, params[1], N, dtype)
    far = np.array([0, 9, 18, 27, 36, 43, 44])
    X[far] = 1e200 if dtype == np.float64 else 1e30
    near = np.setdiff1d(np.arange(N), far)
    labels, log_prob, resp = run_estimate(X, params, covariance_type)
    assert (log_prob[far] == -np.inf).all() and (resp[far] == 0).all()
    alone = run_estimate(np.ascontiguousarray(X[near]), params, covariance_type)
    np.testing.assert_array_equal(log_prob[near], alone[1])
    np.testing.assert_array_equal(resp[near], alone[2])
    np.testing.assert_array_equal(labels[near], alone[0])
    e = ref.e_step(X[near], *params, covariance_type)
    assert_within(log_prob[near], e["lse"], e["lse_scale"], RTOL[dtype], "log_prob")
    w = np.ones(N)
    w[far] = 0.0
    stats, _ = run_em_pass(X, params, covariance_type, sample_weight=w, n_slots=1)
    alone_stats, _ = run_em_pass(np.ascontiguousarray(X[near]), params, covariance_type,
                                 sample_weight=np.ones(len(near)), n_slots=1)
    # (float32 sums rows in chunk partial sums of the dtype, grouped by row)
    total = alone_stats.sum(axis=0)
    np.testing.assert_allclose(stats.sum(axis=0), total, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * np.abs(total).max())


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_zero_weight_row_beyond_double_range_adds_nothing(covariance_type):
    # Row 1 is so far away that its Mahalanobis distance overflows: lse = -inf
    # (by design, see _chunk.pxd). With weight 0 it should not contribute;
    # with weight 1 (or none) the log-likelihood is -inf and the rest finite.
    X = np.array([[0.0], [1e200]])
    chol = np.ones((1, 1)) if covariance_type == "diag" else np.ones((1, 1, 1))
    params = (np.ones(1), np.zeros((1, 1)), chol)
    stats, _ = run_em_pass(X, params, covariance_type, sample_weight=np.array([1.0, 0.0]))
    alone, _ = run_em_pass(X[:1], params, covariance_type, sample_weight=np.array([1.0]))
    np.testing.assert_array_equal(stats.sum(axis=0), alone.sum(axis=0))
    for sw in (None, np.ones(2)):
        stats, _ = run_em_pass(X, params, covariance_type, sample_weight=sw)
        total = stats.sum(axis=0)
        assert total[0] == -np.inf and np.isfinite(total[1:]).all()
        np.testing.assert_array_equal(total[1:], alone.sum(axis=0)[1:])


def test_kernel_exp_within_two_ulp_of_libm():
    from fastgmm._kernels._dispatch import kernel_math

    def fast_exp(x, out):
        kernel_math("exp", x, out)

    x = np.concatenate([
        -np.logspace(-20, np.log10(708.0), 200_001),
        np.linspace(-708.0, 0.0, 200_001),
        [0.0, -0.0],
    ])
    out = np.empty_like(x)
    fast_exp(x, out)
    expected = np.exp(x)
    ulps = np.abs(out - expected) / (np.spacing(expected))
    assert ulps.max() <= 2.0
    assert out[-1] == out[-2] == 1.0
    # Below -708 (results under 2^-1021) the kernels' exp returns 0.
    tiny = np.array([-708.5, -745.0, -1e300, -np.inf])
    out = np.empty_like(tiny)
    fast_exp(tiny, out)
    np.testing.assert_array_equal(out, 0.0)


def test_kernel_expf_within_two_ulp_of_float32_exp():
    # float32 data: the responsibilities' exponentials run in float32.
    from fastgmm._kernels._dispatch import kernel_math

    floor_arg = np.log(1e-30)
    x = np.concatenate([
        -np.logspace(-12, np.log10(-floor_arg), 200_001),
        np.linspace(floor_arg + 1e-5, 0.0, 200_001),
        [0.0, -0.0],
    ]).astype(np.float32).astype(np.float64)
    out = np.empty_like(x)
    kernel_math("expf", x, out)
    assert (out.astype(np.float32) == out).all()        # a float32 result
    expected = np.exp(x).astype(np.float32)
    ulps = np.abs(out - expected) / np.spacing(expected)
    assert ulps.max() <= 2.0
    assert out[-1] == out[-2] == 1.0
    # Below ln(1e-30) the result is 0: never a float32 denormal, even divided by K.
    assert out.min() >= 1e-30 * (1 - 1e-6)
    tiny = np.array([floor_arg - 1e-3, -88.0, -104.0, -1e30, -np.inf])
    out = np.empty_like(tiny)
    kernel_math("expf", tiny, out)
    np.testing.assert_array_equal(out, 0.0)


def test_kernel_log_within_two_ulp_of_libm():
    from fastgmm._kernels._dispatch import kernel_math

    def fast_log_ge1(x, out):
        kernel_math("log_ge1", x, out)

    # The kernels take the log of sums of max-subtracted exponentials: >= 1.
    x = np.concatenate([
        1.0 + np.logspace(-16, 0, 100_001),
        np.linspace(1.0, 64.0, 100_001),
        np.exp(np.linspace(0.0, 700.0, 100_001)),
        [1.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 0), 2.0, 3.0],
    ])
    out = np.empty_like(x)
    fast_log_ge1(x, out)
    expected = np.log(x)
    ulps = np.abs(out - expected) / np.spacing(np.maximum(expected, np.finfo(float).tiny))
    assert ulps[expected > 0].max() <= 2.0
    assert out[x == 1.0].tolist() == [0.0] * int((x == 1.0).sum())


# ---------------------------------------------- huge K: fewer rows a chunk
#
# Past SCRATCH_ENTRIES / CHUNK_ROWS components a chunk takes fewer rows, so
# that a thread's K-wide scratch stays within SCRATCH_ENTRIES entries (the
# size arithmetic itself is in test_sizes.py). Here that path runs against
# the reference.


def _one_feature_reference(X, weights, means, chol):
    """The reference of _reference.py for D = 1 (where full and diag are the
    same model), vectorised over components, so that K = 131,071 stays fast:
    (lse, lse_scale, wlp, {ll, nk, s1, s2} values and scales)."""
    x, mu, u = X[:, 0].astype(np.float64), means[:, 0], chol.reshape(-1)
    log_const = np.log(weights) + np.log(u) - 0.5 * math.log(2.0 * math.pi)
    diff = x[:, None] - mu[None, :]
    maha = (diff * u) ** 2
    wlp = log_const - 0.5 * maha
    top = wlp.max(axis=1)
    lse = top + np.log(np.exp(wlp - top[:, None]).sum(axis=1))
    r = np.exp(wlp - lse[:, None])
    lse_scale = np.sum(r * (np.abs(log_const) + 0.5 * maha), axis=1) + np.abs(lse)
    val = {"ll": lse.sum(), "nk": r.sum(axis=0), "s1": (r * diff).sum(axis=0)[:, None],
           "s2": (r * diff**2).sum(axis=0)[:, None]}
    scale = {"ll": lse_scale.sum(), "nk": val["nk"],
             "s1": (r * np.abs(diff)).sum(axis=0)[:, None], "s2": val["s2"]}
    return lse, lse_scale, wlp, val, scale


@pytest.mark.parametrize("covariance_type, dtype", [("diag", np.float32), ("full", np.float64)])
def test_huge_k_runs_fewer_rows_a_chunk_and_matches_reference(covariance_type, dtype):
    from fastgmm._kernels._estep import estimate_scratch
    from fastgmm._kernels._suffstats import SCRATCH_ENTRIES, chunk_rows

    K, D = SCRATCH_ENTRIES // CHUNK_ROWS - 1, 1        # 131,071 components
    code = ref.COV_CODE[covariance_type]
    rows = chunk_rows(code, K, D)
    assert rows == SCRATCH_ENTRIES // (K + 2) < CHUNK_ROWS   # 255
    N = rows + 3                                       # two chunks, the last short
    assert estimate_scratch(code, K, D, 8, N)["rows"] == rows
    rng = np.random.default_rng(7)
    weights = rng.dirichlet(np.full(K, 2.0))
    means = np.linspace(-4.0, 4.0, K)[:, None]
    chol = 1.0 / np.sqrt(rng.uniform(0.5, 2.0, size=(K, 1)))
    if covariance_type == "full":
        chol = chol[:, :, None]
    params = tuple(np.asarray(p, dtype=dtype).astype(np.float64) for p in (weights, means, chol))
    X = np.ascontiguousarray(rng.normal(scale=3.0, size=(N, D)), dtype=dtype)

    lse, lse_scale, wlp, val, scale = _one_feature_reference(X, *params)
    stats, kp = run_em_pass(X, params, covariance_type)
    got = ref.unpack_kernel_stats(stats.sum(axis=0), covariance_type, K, D)
    if covariance_type == "full":
        got["s2"] = got["s2"][:, :, 0]
    # float32 sums each row's K = 131,071 exponentials in float32 (as at
    # every K): its totals, and so N_k, carry up to ~K eps32 relative error.
    # A row lost or counted twice by the partition would be off by far more.
    rtol = RTOL[dtype] if dtype == np.float64 else 1e-2
    for key in ("ll", "nk", "s1", "s2"):
        assert_within(got[key], val[key], scale[key], rtol, f"em_pass {key}",
                      np.finfo(dtype).tiny ** 0.5)
    assert math.isclose(got["nk"].sum(), N, rel_tol=rtol)

    labels, log_prob, _ = run_estimate(X, params, covariance_type, want=("labels", "log_prob"))
    assert_within(log_prob, lse, lse_scale, rtol, "log_prob")
    chosen = wlp[np.arange(N), labels]
    assert_within(chosen, wlp.max(axis=1), lse_scale, rtol, "labels")


# ------------------------------------------------------------ k-means kernels
#
# lloyd_pass, kmeanspp_potentials and kmeanspp_closest against numpy in
# float64 on the same rounded inputs: distances are scikit-learn's
# expansion |y|^2 + |c|^2 - 2 y.c in the data's dtype, so a label or a bit
# may differ from the exact one only where two distances agree to that
# rounding (checked: such rows are allowed, and must be near-ties).

from fastgmm._kernels._dispatch import kmeanspp_closest, kmeanspp_potentials, lloyd_pass  # noqa: E402
from fastgmm._kernels._kmeans import MAX_MARKED_CANDIDATES, lloyd_stat_size  # noqa: E402
from fastgmm._kmeans import reach  # noqa: E402

KMEANS_SHAPES = [(1, 1, 1), (5, 2, 3), (300, 3, 5), (1000, 39, 13), (777, 7, 1),
                 (2000, 16, 40), (257, 2, 17)]


def _kmeans_problem(n, D, K, dtype, seed, weighted):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, D)) * 3 + 1).astype(dtype)
    shift = X.mean(axis=0).astype(dtype)
    centres = (rng.normal(size=(K, D)) * 3).astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else np.empty(0, dtype=dtype)
    if weighted:
        w[rng.random(n) < 0.2] = 0
    y = (X - shift).astype(np.float64)       # numpy rounds X - shift alike
    dist = ((y[:, None, :] - centres[None].astype(np.float64)) ** 2).sum(axis=-1)
    return X, shift, centres, w, y, dist


def _scale(dtype, y, centres):
    """Absolute rounding scale of an expanded squared distance."""
    eps = np.finfo(dtype).eps * (y.shape[1] + 4)
    return eps * ((y ** 2).sum(axis=1)[:, None] + (centres.astype(np.float64) ** 2).sum(axis=1))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n, D, K", KMEANS_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lloyd_pass_matches_numpy(dtype, n, D, K, weighted):
    X, shift, centres, w, y, dist = _kmeans_problem(n, D, K, dtype, n + D + K, weighted)
    labels = np.full(n, -1, dtype=np.int32)
    labels[: n // 2] = 0
    previous = labels.copy()
    stats = np.full((3, lloyd_stat_size(K, D)), np.nan)
    lloyd_pass(X, shift, w, centres, labels, stats, True, 1)
    total = stats.sum(axis=0)
    exact = dist.argmin(axis=1)
    differ = np.flatnonzero(labels != exact)
    gap = dist[differ, labels[differ]] - dist[differ, exact[differ]]
    assert (gap <= 4 * _scale(dtype, y, centres)[differ, exact[differ]]).all()
    assert len(differ) <= max(1, n // 100)
    weights = np.ones(n) if not weighted else w.astype(np.float64)
    assert total[0] == np.count_nonzero(labels != previous)
    np.testing.assert_array_equal(total[1:1 + K], np.bincount(labels, minlength=K))
    np.testing.assert_allclose(total[1 + K:1 + 2 * K],
                               np.bincount(labels, weights, minlength=K), rtol=1e-12)
    sums = np.zeros((K, D))
    np.add.at(sums, labels, y * weights[:, None])
    scale = np.zeros((K, D))
    np.add.at(scale, labels, np.abs(y) * weights[:, None])
    assert (np.abs(total[1 + 2 * K:].reshape(K, D) - sums) <= 1e-12 * (scale + 1)).all()
    # without `update`: the same labels, counts, and no sums
    again = np.full(n, -1, dtype=np.int32)
    stats = np.full((2, lloyd_stat_size(K, D)), np.nan)
    lloyd_pass(X, shift, w, centres, again, stats, False, 1)
    np.testing.assert_array_equal(again, labels)
    assert (stats.sum(axis=0)[1 + K:] == 0).all()


def _lloyd_run(X, shift, w, centres, bounded, n_passes):
    """Lloyd passes from `centres` through lloyd_pass, with or without the
    bounds; every pass's labels and stats."""
    from fastgmm._kmeans import _average_centres, _max_squared_norm, _moved

    n, K, D = X.shape[0], centres.shape[0], X.shape[1]
    labels = np.full(n, -1, dtype=np.int32)
    gap = np.full(n, np.nan, dtype=np.float32)    # any value before the first pass
    delta = np.zeros(K)
    out = []
    for p in range(n_passes):
        stats = np.empty((4, lloyd_stat_size(K, D)))
        extra = (dict(gap=gap, delta=delta, cmax2=_max_squared_norm(centres))
                 if bounded else {})
        lloyd_pass(X, shift, w, centres, labels, stats, True, 2, **extra)
        out.append((labels.copy(), stats.copy()))
        total = stats.sum(axis=0)
        weights, sums = total[1 + K:1 + 2 * K], total[1 + 2 * K:].reshape(K, D)
        new = _average_centres(sums, np.where(weights > 0, weights, 1.0), X.dtype)
        new[weights == 0] = centres[weights == 0]
        delta = _moved(centres, new)
        centres = new
    return out


def _tie_problems(dtype):
    """Data where rows sit exactly on (or within rounding of) the bisector of
    two centres, duplicates, and integer grids: the labels that a bound
    too loose by a rounding would change."""
    rng = np.random.default_rng(7)
    grid = np.stack(np.meshgrid(np.arange(12), np.arange(12)), -1).reshape(-1, 2)
    yield "grid", np.repeat(grid, 3, axis=0).astype(dtype), 5
    blobs = rng.normal(size=(3000, 5)) + rng.integers(0, 3, (3000, 1)) * 4
    yield "blobs", blobs.astype(dtype), 6
    dup = np.repeat(rng.normal(size=(40, 3)), 25, axis=0)
    yield "duplicates", dup.astype(dtype), 7
    yield "one cluster", np.zeros((500, 4), dtype=dtype) + rng.normal(
        size=(500, 4)).astype(dtype) * 1e-3, 3


@pytest.mark.parametrize("scale", [1e-20, 1e-6, 1.0, 1e6, 1e20])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bounded_lloyd_labels_bitwise_the_full_comparison(dtype, scale):
    """Rows the bound keeps are labelled as if compared with every centre:
    the same labels, counts and sums, pass after pass, on ties, duplicates
    and grids at every scale the project promises."""
    for name, X, K in _tie_problems(dtype):
        X = (X.astype(np.float64) * scale).astype(dtype)
        shift = X.mean(axis=0).astype(dtype)
        rng = np.random.default_rng(K)
        centres = (X[rng.choice(X.shape[0], K, replace=False)] - shift).astype(dtype)
        w = np.empty(0, dtype=dtype)
        full = _lloyd_run(X, shift, w, centres, False, 6)
        bounded = _lloyd_run(X, shift, w, centres, True, 6)
        for p, ((l1, s1), (l2, s2)) in enumerate(zip(full, bounded)):
            np.testing.assert_array_equal(l2, l1, err_msg=f"{name}, pass {p}")
            np.testing.assert_array_equal(s2, s1, err_msg=f"{name}, pass {p}")


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("K", [3, 9, 40])
def test_lloyd_labels_stay_in_range_when_float32_squares_overflow(K, bounded):
    """float32 rows near 1e20: their squares pass FLT_MAX and the compared
    values are inf - inf = NaN. The vector argmin then found no lane equal to
    the smallest and returned the padding's index (K rounded up to whole
    vectors), and the sums were written past their cluster: a segfault on
    the baseline and x86-64-v3 builds. Every label is a centre now."""
    rng = np.random.default_rng(K)
    # positive rows and centres: every |c|^2 and 2 y.c is +inf
    X = (rng.uniform(1, 2, size=(2000, 3)) * 1e20).astype(np.float32)
    shift = np.zeros(3, dtype=np.float32)
    centres = X[:K].copy()
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    stats = np.empty((4, lloyd_stat_size(K, 3)))
    extra = (dict(gap=np.zeros(X.shape[0], np.float32), delta=np.zeros(K), cmax2=1e300)
             if bounded else {})
    for _ in range(2):
        lloyd_pass(X, shift, np.empty(0, np.float32), centres, labels, stats, True, 2,
                   **extra)
        assert ((labels >= 0) & (labels < K)).all()
        assert stats.sum(axis=0)[1:1 + K].sum() == X.shape[0]


def test_bounded_lloyd_checks_its_arguments():
    X = np.zeros((10, 2))
    centres = np.zeros((3, 2))
    labels = np.full(10, -1, dtype=np.int32)
    stats = np.empty((1, lloyd_stat_size(3, 2)))
    args = (X, np.zeros(2), np.empty(0), centres, labels, stats, True, 1)
    with pytest.raises(ValueError, match="gap must have one entry per row"):
        lloyd_pass(*args, gap=np.zeros(9, np.float32), delta=np.zeros(3))
    with pytest.raises(ValueError, match="gap must have one entry per row"):
        lloyd_pass(*args, gap=np.zeros(10, np.float32), delta=np.zeros(2))
    with pytest.raises(ValueError, match="delta must hold distances"):
        lloyd_pass(*args, gap=np.zeros(10, np.float32), delta=np.array([0, np.nan, 0]))
    with pytest.raises(ValueError, match="cmax2 must be >= 0"):
        lloyd_pass(*args, gap=np.zeros(10, np.float32), delta=np.zeros(3), cmax2=-1.0)


def _seeded_state(X, shift, centres, w):
    """closest and nearest after seeding with every centre, through the kernel."""
    n, dtype = X.shape[0], X.dtype
    closest = np.empty(n, dtype=dtype)
    nearest = np.empty(n, dtype=np.int32)
    sums = np.empty(2)
    no_marks = np.empty(0, dtype=np.uint8)
    kmeanspp_closest(X, shift, w, centres[:1], closest, nearest, 0, no_marks, 0, np.empty(0),
                     True, sums, 1)
    for c in range(1, centres.shape[0]):
        kmeanspp_closest(X, shift, w, centres[c:c + 1], closest, nearest, c, no_marks, 0,
                         reach(centres[:c], centres[c:c + 1], dtype)[:, 0], False, sums, 1)
    return closest, nearest


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n, D, K", [(300, 3, 5), (1000, 39, 13), (2000, 16, 40), (5, 2, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kmeanspp_closest_matches_numpy(dtype, n, D, K, weighted):
    X, shift, centres, w, y, dist = _kmeans_problem(n, D, K, dtype, n + D, weighted)
    closest = np.empty(n, dtype=dtype)
    nearest = np.empty(n, dtype=np.int32)
    sums = np.empty(3)
    kmeanspp_closest(X, shift, w, centres[:1], closest, nearest, 0, np.empty(0, np.uint8), 0,
                     np.empty(0), True, sums, 1)
    weights = np.ones(n) if not weighted else w.astype(np.float64)
    scale = _scale(dtype, y, centres)
    assert (np.abs(closest - dist[:, 0]) <= scale[:, 0]).all()
    assert (nearest == 0).all()
    np.testing.assert_allclose(sums.sum(), (weights * closest).sum(), rtol=1e-12)
    # Seeding with every centre (the pruned path): the nearest of them all.
    closest, nearest = _seeded_state(X, shift, centres, w)
    best = dist.min(axis=1)
    assert (np.abs(closest - best) <= scale.max(axis=1)).all()
    assert (dist[np.arange(n), nearest] - best <= 2 * scale.max(axis=1)).all()


@pytest.mark.parametrize("weighted", [False, True])
# n: last chunks of 47, 233, 208, 5 and 190 rows (the kernel's filter takes
# rows four at a time: every remainder); `improve` starts as 255 in one
# call and 0 in the other (it is output only).
@pytest.mark.parametrize("n, D, K, M", [(303, 3, 5, 4), (1001, 39, 13, 6), (2000, 16, 40, 8),
                                        (5, 2, 3, 1), (702, 2, 6, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kmeanspp_potentials_match_numpy_and_pruning_changes_nothing(dtype, n, D, K, M,
                                                                    weighted):
    X, shift, centres, w, y, dist = _kmeans_problem(n, D, K + M, dtype, 3 * n + D, weighted)
    seeds, candidates = centres[:K], np.ascontiguousarray(centres[K:])
    closest, nearest = _seeded_state(X, shift, seeds, w)
    weights = np.ones(n) if not weighted else w.astype(np.float64)
    reaches = reach(seeds, candidates, dtype)
    potentials = np.empty((3, M))
    improve = np.full(n, 255, dtype=np.uint8)
    marked = np.empty((3, M))
    kmeanspp_potentials(X, shift, w, candidates, closest, nearest, reaches.min(axis=1), improve,
                        potentials, marked, 1)
    # no pruning at all (reach -1): the same bits, the same sums to rounding
    unpruned = np.empty((3, M))
    improve_all = np.zeros(n, dtype=np.uint8)
    marked_all = np.empty((3, M))
    kmeanspp_potentials(X, shift, w, candidates, closest, nearest, np.full(K, -1.0),
                        improve_all, unpruned, marked_all, 1)
    np.testing.assert_array_equal(improve, improve_all)
    np.testing.assert_array_equal(marked.sum(axis=0), marked_all.sum(axis=0))
    np.testing.assert_array_equal(marked.sum(axis=0),
                                  [np.count_nonzero(improve & (1 << m)) for m in range(M)])
    np.testing.assert_allclose(potentials.sum(axis=0), unpruned.sum(axis=0), rtol=1e-12)
    d = dist[:, K:]
    expected = (weights[:, None] * np.minimum(closest.astype(np.float64)[:, None], d)).sum(axis=0)
    tolerance = (weights[:, None] * _scale(dtype, y, centres)[:, K:]).sum(axis=0)
    assert (np.abs(potentials.sum(axis=0) - expected) <= tolerance + 1e-12 * expected).all()
    bits = (d < closest[:, None]) @ (1 << np.arange(M))
    differ = np.flatnonzero(bits != improve)
    near_tie = np.abs(d - closest[:, None]) <= _scale(dtype, y, centres)[:, K:]
    assert near_tie[differ].any(axis=1).all()
    # the chosen candidate joins: by its bits, or by the triangle inequality
    best = int(np.argmin(potentials.sum(axis=0)))
    by_bits = (closest.copy(), nearest.copy())
    sums = np.empty(1)
    kmeanspp_closest(X, shift, w, candidates[best:best + 1], *by_bits, K, improve, best,
                     np.empty(0), False, sums, 1)
    by_reach = (closest.copy(), nearest.copy())
    kmeanspp_closest(X, shift, w, candidates[best:best + 1], *by_reach, K,
                     np.empty(0, np.uint8), 0,
                     np.ascontiguousarray(reaches[:, best]), False, sums, 1)
    np.testing.assert_array_equal(by_bits[0], by_reach[0])
    np.testing.assert_array_equal(by_bits[1], by_reach[1])
    changed = np.flatnonzero(by_bits[1] == K)
    np.testing.assert_array_equal(changed, np.flatnonzero(improve & (1 << best)))


@pytest.mark.parametrize("weighted", [False, True])
# D: below, at and above a vector of features; n: rows read in order (most
# kept) and gathered (few kept, with seeds among the data's clusters)
@pytest.mark.parametrize("n, D, K", [(1203, 3, 2), (1203, 16, 12), (2000, 39, 30)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kmeanspp_potentials_four_lanes_and_eight_agree_bitwise(dtype, n, D, K, weighted):
    # A step of at most four candidates runs the dot products on four lanes,
    # a step of more on eight: each lane is the same chain, so a candidate's
    # sums, counts and bits must not depend on which path it went through.
    X, shift, centres, w, _, _ = _kmeans_problem(n, D, K + 8, dtype, 7 * n + D, weighted)
    seeds, candidates = centres[:K], np.ascontiguousarray(centres[K:])
    closest, nearest = _seeded_state(X, shift, seeds, w)
    # one reach for every step (the eight candidates' nearest), so that
    # every step prunes the same rows and sums the same terms
    reaches = reach(seeds, candidates, dtype).min(axis=1)
    runs = {}
    for M in (1, 3, 4, 5, 8):
        cand = np.ascontiguousarray(candidates[:M])
        potentials = np.empty((2, M))
        marked = np.empty((2, M))
        improve = np.full(n, 255, dtype=np.uint8)
        kmeanspp_potentials(X, shift, w, cand, closest, nearest, reaches, improve, potentials,
                            marked, 1)
        runs[M] = (potentials, marked, improve)
    for M in (1, 3, 4, 5):
        potentials, marked, improve = runs[M]
        np.testing.assert_array_equal(potentials, runs[8][0][:, :M])
        np.testing.assert_array_equal(marked, runs[8][1][:, :M])
        np.testing.assert_array_equal(improve, runs[8][2] & ((1 << M) - 1))
    assert runs[4][1].sum() > 0 and (runs[8][2] >> 4).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_kmeans_kernels_bitwise_identical_across_thread_counts(dtype):
    X, shift, centres, w, _, _ = _kmeans_problem(20_000, 9, 12, dtype, 1, True)
    closest, nearest = _seeded_state(X, shift, centres[:8], w)
    reaches = reach(centres[:8], centres[8:], dtype).min(axis=1)
    outputs = []
    for n_threads in (1, 2, 3, 7):
        labels = np.full(X.shape[0], -1, dtype=np.int32)
        stats = np.empty((16, lloyd_stat_size(12, 9)))
        lloyd_pass(X, shift, w, centres, labels, stats, True, n_threads)
        potentials = np.empty((16, 4))
        marked = np.empty((16, 4))
        improve = np.empty(X.shape[0], dtype=np.uint8)
        kmeanspp_potentials(X, shift, w, np.ascontiguousarray(centres[8:]), closest, nearest,
                            reaches, improve, potentials, marked, n_threads)
        outputs.append((labels, stats, potentials, marked, improve))
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            np.testing.assert_array_equal(a, b)


def test_kmeans_kernels_reject_bad_shapes():
    X = np.zeros((10, 3))
    shift = np.zeros(3)
    centres = np.zeros((2, 3))
    labels = np.zeros(10, dtype=np.int32)
    good = np.empty((1, lloyd_stat_size(2, 3)))
    with pytest.raises(ValueError, match="shift"):
        lloyd_pass(X, np.zeros(2), np.empty(0), centres, labels, good, True, 1)
    with pytest.raises(ValueError, match="sample_weight"):
        lloyd_pass(X, shift, np.ones(3), centres, labels, good, True, 1)
    with pytest.raises(ValueError, match="labels"):
        lloyd_pass(X, shift, np.empty(0), centres, labels[:5], good, True, 1)
    with pytest.raises(ValueError, match="stats"):
        lloyd_pass(X, shift, np.empty(0), centres, labels, np.empty((1, 3)), True, 1)
    with pytest.raises(ValueError, match="centres"):
        lloyd_pass(X, shift, np.empty(0), np.zeros((2, 4)), labels, good, True, 1)
    closest = np.zeros(10)
    nearest = np.zeros(10, dtype=np.int32)
    improve = np.zeros(10, dtype=np.uint8)
    too_many = np.zeros((MAX_MARKED_CANDIDATES + 1, 3))
    with pytest.raises(ValueError, match="candidates"):
        kmeanspp_potentials(X, shift, np.empty(0), too_many, closest, nearest, np.zeros(1),
                            improve, np.empty((1, too_many.shape[0])),
                            np.empty((1, too_many.shape[0])), 1)
    with pytest.raises(ValueError, match="not one of the 1 seeds"):
        kmeanspp_potentials(X, shift, np.empty(0), centres, closest, nearest + 1, np.zeros(1),
                            improve, np.empty((1, 2)), np.empty((1, 2)), 1)
    with pytest.raises(ValueError, match="marked"):
        kmeanspp_potentials(X, shift, np.empty(0), centres, closest, nearest, np.zeros(1),
                            improve, np.empty((1, 2)), np.empty((2, 2)), 1)
    with pytest.raises(ValueError, match="centre"):
        kmeanspp_closest(X, shift, np.empty(0), centres, closest, nearest, 0,
                         np.empty(0, np.uint8), 0, np.empty(0), True, np.empty(1), 1)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("D", [1, 3, D_TILED, D_BLAS])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_label_statistics_equal_em_pass_given_one_hot_rows(dtype, covariance_type, D, weighted):
    # stats_of_labels (label_statistics) against em_pass on the one-hot
    # responsibilities it replaces; -1 labels (no responsibility) included.
    from fastgmm._initialization import _stats_of_given_resp, stats_of_labels

    rng = np.random.default_rng(D + 7 * weighted)
    n, K = 1500, 5
    X = (rng.normal(size=(n, D)) * 2 + 3).astype(dtype)
    labels = rng.integers(-1, K, size=n).astype(np.int32)
    centers = (rng.normal(size=(K, D)) + 3).astype(dtype)
    tied_center = X.mean(axis=0).astype(dtype)
    weights = rng.uniform(0, 2, n) if weighted else None
    ours = stats_of_labels(X, labels, covariance_type, centers, tied_center, 1, weights)
    expected = _stats_of_given_resp(X, ref.one_hot_blocks(labels, K, 256, dtype), covariance_type,
                                    centers, tied_center, 1, weights)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)
    again = stats_of_labels(X, labels, covariance_type, centers, tied_center, 3, weights)
    np.testing.assert_array_equal(again, ours)


@pytest.mark.parametrize("K, D", [(2**16, 2**15 + 1), (2**20, 2**12), (3, 2**31 + 7)])
def test_kmeans_size_arithmetic_is_64_bit(K, D):
    # No product of two sizes wraps at 2^31 or 2^32 (nothing is allocated).
    from fastgmm._kernels._kmeans import label_stat_size

    assert lloyd_stat_size(K, D) == 1 + 2 * K + K * D
    for code, s2 in ((0, K * (D * (D + 1) // 2)), (1, D * D), (2, K * D)):
        assert label_stat_size(code, K, D) == 1 + K + K * D + s2

