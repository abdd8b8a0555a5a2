"""Sizes past 2^31: the size arithmetic of the native core and its callers.

Every size, offset and allocation of the kernels is taken in 64-bit
arithmetic and every allocation is checked (issue 16, item 1). The size
functions are tested at the 2^31 and 2^32 boundaries without allocating
anything of that size; the reproductions of the review (a fit that
segfaulted, a model whose predict segfaulted) run in a fresh interpreter, so
that a crash fails the test instead of killing pytest. The children run
under an address-space limit (RLIMIT_AS), so that on a machine with a lot of
memory a regression fails with a MemoryError instead of taking it all.
"""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastgmm
from fastgmm import LargeMemoryWarning
from fastgmm import _parameters as P
from fastgmm import _reliability as R
from fastgmm._kernels import _estep, _suffstats
from fastgmm._kernels._suffstats import CHUNK_ROWS, SCRATCH_ENTRIES, stat_size

FASTGMM_PARENT = str(Path(fastgmm.__file__).resolve().parents[1])
COV_CODE = P.KERNEL_COV_CODE
INT_MAX = 2**31 - 1


def expected_stat_size(covariance_type, K, D):
    s2 = {"full": K * D * (D + 1) // 2, "tied": D * D}.get(covariance_type, K * D)
    return 1 + K + K * D + s2


def run_isolated(code, timeout=300, address_space_gib=None):
    """(returncode, stdout, stderr) of `code` in a fresh interpreter; with
    address_space_gib, under RLIMIT_AS of that many GiB beyond what the
    interpreter has mapped once numpy, scipy and fastgmm are imported."""
    prelude = f"import sys; sys.path.insert(0, {FASTGMM_PARENT!r})\n"
    if address_space_gib is not None:
        prelude += textwrap.dedent(f"""
            import resource
            import numpy, scipy.linalg, fastgmm
            with open("/proc/self/status") as status:
                mapped = next(int(line.split()[1]) * 1024 for line in status
                              if line.startswith("VmSize:"))
            limit = mapped + int({address_space_gib} * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        """)
    env_code = prelude + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                          timeout=timeout,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return proc.returncode, proc.stdout, proc.stderr


needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/status, sets RLIMIT_AS"
)


def assert_clean_exit(returncode, stdout, stderr):
    # a negative code is the signal that killed the child (-11: SIGSEGV)
    assert returncode == 0, f"exit code {returncode}\nstdout:\n{stdout}\nstderr:\n{stderr[-3000:]}"


# ------------------------------------------------- statistics size (exact)


@pytest.mark.parametrize("covariance_type, K, D, expected", [
    # the review's cases: 4,301,798,456 wrapped to 6,831,160 in a C int ...
    ("full", 955, 3000, 4_301_798_456),
    # ... and 2,153,151,479 to a negative size
    ("full", 478, 3000, 2_153_151_479),
    # just below and just above 2^31 and 2^32
    ("diag", 1, 2**30 - 2, 2**31 - 2),
    ("diag", 1, 2**30, 2**31 + 2),
    ("diag", 2**31 - 1, 1, 3 * (2**31 - 1) + 1),
    ("spherical", 2**16, 2**15, 2**32 + 2**16 + 1),
    ("tied", 1, 2**16, 2**32 + 2**16 + 2),
    ("tied", 2**31 - 1, 2**31 - 1, 1 + (2**31 - 1) + 2 * (2**31 - 1) ** 2),
    ("full", 2**31 - 1, 2**31 - 1, None),
])
def test_stat_size_is_exact_past_32_bits(covariance_type, K, D, expected):
    size = stat_size(COV_CODE[covariance_type], K, D)
    assert size == expected_stat_size(covariance_type, K, D)
    if expected is not None:
        assert size == expected
    assert type(size) is int


def test_stat_size_rejects_non_integers():
    with pytest.raises(TypeError):
        stat_size(0, 2.5, 3)


def test_fit_memory_estimate_is_the_true_size():
    # 955 rows: 4 chunks, so 4 slots of 4,301,798,456 float64 (the warning said 0.2 GiB)
    n_slots = P.n_slots_for(955, "full", 955, 3000)
    assert n_slots == 4
    stats_bytes, param_bytes = R.compute_fit_memory(955, "full", 955, 3000)
    assert stats_bytes == 8 * 4 * 4_301_798_456
    assert param_bytes == 8 * R.PARAMETER_COPIES * (955 * 3000 * 3000 + 955 * 3000)
    with pytest.warns(LargeMemoryWarning) as caught:
        total = R.warn_if_large(955, "full", 955, 3000)
    assert total == stats_bytes + param_bytes
    message = str(caught[0].message)
    assert f"{stats_bytes / 2**30:.2f} GiB of sufficient statistics" in message
    assert f"needs about {total / 2**30:.2f} GiB" in message


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_slot_count_stays_in_bounds_for_huge_statistics(covariance_type):
    # a wrapped (negative) row size must not leak into the slot count
    for K, D in [(955, 3000), (478, 3000), (2**20, 2**12)]:
        n_slots = P.n_slots_for(10**7, covariance_type, K, D)
        assert P.MIN_SLOTS <= n_slots <= P.MAX_SLOTS


# --------------------------------------------- per-thread scratch (exact)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_chunks_keep_their_rows_at_every_normal_size(covariance_type):
    # below SCRATCH_ENTRIES a buffer the partition (and every rounding) is unchanged
    widest = SCRATCH_ENTRIES // CHUNK_ROWS - 2
    code = COV_CODE[covariance_type]
    assert _suffstats.chunk_rows(code, widest, 3) == CHUNK_ROWS
    assert _suffstats.chunk_rows(code, widest + 1, 3) < CHUNK_ROWS
    if covariance_type == "diag":
        # diag allocates no D-wide rows: D never shortens its chunks
        assert _suffstats.chunk_rows(code, 3, 10**9) == CHUNK_ROWS
    else:
        assert _suffstats.chunk_rows(code, 3, widest) == CHUNK_ROWS
        assert _suffstats.chunk_rows(code, 3, widest + 1) < CHUNK_ROWS


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
@pytest.mark.parametrize("K, D", [
    (8_388_609, 1),          # CHUNK_ROWS x K = 2^31 + 256: the review's predict
    (2**17, 2**16),          # 2 D K = 2^34 (diag chunk sums)
    (3, 50_000),             # D^2 = 2.5e9 (full and tied partial products)
    (2**31 - 1, 1),
    (1, 2**31 - 1),
    (2**31 - 1, 2**31 - 1),  # the largest the kernels take
])
@pytest.mark.parametrize("itemsize", [4, 8])
def test_pass_scratch_is_exact_past_32_bits(covariance_type, K, D, itemsize):
    code = COV_CODE[covariance_type]
    sizes = _suffstats.pass_scratch(code, K, D, itemsize)
    rows = sizes["rows"]
    assert 1 <= rows <= CHUNK_ROWS
    if rows < CHUNK_ROWS:
        # as many rows as keep the widest buffer within SCRATCH_ENTRIES (or one)
        width = max(K, D if covariance_type != "diag" else 0) + 2
        assert rows == max(1, SCRATCH_ENTRIES // width)
    full_tiled = covariance_type == "full" and D <= _suffstats.TILED_FULL_MAX_FEATURES
    expected = {
        "rows": rows,
        "buf": rows * (D + 2) if covariance_type != "diag" else 0,
        "buf3": rows * (D + 2) if full_tiled else 0,
        "s2_partial": D * D if (covariance_type == "full" and not full_tiled)
        or (covariance_type == "tied" and itemsize == 4) else 0,
        "resp": rows * K,
        "lse": 2 * rows,
        "small_k": rows * (K + 2) if K < 8 else 0,
        "chunk_sums": 2 * D * K if covariance_type == "diag" else 0,
        "fused": (K + D) * 256 if covariance_type == "full" and D <= 4 and K < 8 else 0,
    }
    expected["bytes"] = sum(
        max(n, 1) * (8 if name == "lse" else itemsize)
        for name, n in expected.items() if name != "rows"
    )
    assert sizes == expected


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
@pytest.mark.parametrize("K, D", [(8_388_609, 1), (2**31 - 1, 1), (3, 2**31 - 1), (5, 7)])
@pytest.mark.parametrize("n_samples", [1, 3, 10**9])
def test_estimate_scratch_is_exact_past_32_bits(covariance_type, K, D, n_samples):
    code = COV_CODE[covariance_type]
    sizes = _estep.estimate_scratch(code, K, D, 8, n_samples)
    rows = min(_suffstats.chunk_rows(code, K, D), n_samples)
    expected = {
        "rows": rows,
        "buf": rows * (D + 2) if covariance_type != "diag" else 0,
        "wlp": rows * K,
        "lse": 2 * rows,
        "small_k": rows * (K + 2) if K < 8 else 0,
    }
    expected["bytes"] = sum(max(n, 1) * 8 for name, n in expected.items() if name != "rows")
    assert sizes == expected
    # the review's predict: one row of 2^23 + 1 components is 64 MiB, not 16 GiB
    if (K, n_samples) == (8_388_609, 1) and covariance_type == "diag":
        assert sizes["bytes"] < 2**27


@pytest.mark.parametrize("function", ["chunk_rows", "pass_scratch", "estimate_scratch"])
@pytest.mark.parametrize("K, D", [(2**31, 1), (1, 2**31), (2**40, 2**40)])
def test_sizes_beyond_int_dimensions_are_refused(function, K, D):
    call = {
        "chunk_rows": lambda: _suffstats.chunk_rows(2, K, D),
        "pass_scratch": lambda: _suffstats.pass_scratch(2, K, D, 8),
        "estimate_scratch": lambda: _estep.estimate_scratch(2, K, D, 8, 1),
    }[function]
    with pytest.raises(ValueError, match=r"at most 2147483647 \(2\^31 - 1\)"):
        call()


@pytest.mark.parametrize("kernel", ["em_pass", "estimate"])
@pytest.mark.parametrize("too_big", ["K", "D"])
def test_kernels_refuse_dimensions_beyond_an_int_before_casting(kernel, too_big):
    # Views of 2^31 columns or components over a few bytes (never read: the
    # kernels refuse them first; before, D was cast to a negative int).
    def fake(shape):
        base = np.zeros(8, dtype=np.float64)
        strides = (shape[1] * 8, 8) if len(shape) == 2 else (8,)
        return np.lib.stride_tricks.as_strided(base, shape=shape, strides=strides)

    big = 2**31
    K, D = (big, 1) if too_big == "K" else (1, big)
    X = fake((1, D)) if too_big == "D" else np.zeros((1, 1))
    means = fake((K, D))
    log_const = fake((K,)) if too_big == "K" else np.zeros(1)
    prec = fake((K * D,))
    empty = np.empty(0)
    with pytest.raises(ValueError, match=r"at most 2147483647 \(2\^31 - 1\)"):
        if kernel == "em_pass":
            _suffstats.em_pass(X, empty, means, prec, empty, np.empty((0, 0)), log_const,
                               np.empty((0, K)), 2, np.zeros((1, 4)), 1)
        else:
            _estep.estimate(X, means, prec, empty, np.empty((0, 0)), log_const, 2,
                            np.empty(1, np.int64), empty, np.empty((0, K)), 1)


# ---------------------------------------- the statistics buffer's MemoryError


def test_impossible_statistics_buffer_raises_before_allocating():
    # 16 slots of 10^6 components of 10^4 features, full: 5.7 PiB
    with pytest.raises(MemoryError) as raised:
        P.allocate_stats(16, "full", 10**6, 10**4)
    message = str(raised.value)
    n_bytes = 8 * 16 * stat_size(0, 10**6, 10**4)
    assert f"({n_bytes / 2**30:,.2f} GiB)" in message
    assert "covariance_type='diag'" in message and "fewer components" in message
    assert "more than this machine or process can allocate" in message


def test_statistics_buffer_numpy_cannot_allocate_gets_the_same_advice(monkeypatch):
    # Past the limit check (made to allow anything up to numpy's largest
    # array), numpy itself fails: 2 PiB exceeds any address space.
    monkeypatch.setattr(P, "memory_limit_bytes", lambda: np.iinfo(np.intp).max)
    with pytest.raises(MemoryError) as raised:
        P.allocate_stats(64, "diag", 2**40, 2**1)
    message = str(raised.value)
    assert "numpy could not allocate it" in message
    assert "fewer components or features" in message
    assert f"({8 * 64 * stat_size(2, 2**40, 2) / 2**30:,.2f} GiB)" in message


def test_statistics_buffer_of_a_normal_fit_is_zeroed():
    stats = P.allocate_stats(3, "full", 4, 5)
    assert stats.shape == (3, expected_stat_size("full", 4, 5))
    assert stats.dtype == np.float64 and not stats.any()


def test_memory_limit_is_at_most_the_machine():
    limit = P.memory_limit_bytes()
    assert 0 < limit <= np.iinfo(np.intp).max


# ------------------------------------------ the review's two reproductions


FIT_955 = """
import warnings
import numpy as np
import fastgmm
from fastgmm import LargeMemoryWarning
K = {K}
X = np.random.default_rng(0).normal(size=(955, 3000)).astype(np.float32)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        fastgmm.GaussianMixture(K, covariance_type="full", init_params="random",
                                max_iter=1).fit(X)
        print("FITTED")
    except MemoryError as error:
        print("MEMORYERROR", error)
for w in caught:
    if issubclass(w.category, LargeMemoryWarning):
        print("WARNING", w.message)
"""


@needs_proc
@pytest.mark.parametrize("K, size", [(955, 4_301_798_456), (478, 2_153_151_479)])
def test_fit_whose_statistics_pass_2_31_raises_memory_error_not_a_crash(K, size):
    # Before: K = 955 died with SIGSEGV (the size wrapped to 6,831,160, the
    # pass wrote past the buffer); K = 478 raised "negative dimensions".
    # 4 slots of `size` float64 (128 and 64 GiB) cannot be had within 6 GiB.
    returncode, stdout, stderr = run_isolated(FIT_955.format(K=K), address_space_gib=6)
    assert_clean_exit(returncode, stdout, stderr)
    if "FITTED" in stdout:
        return
    assert "MEMORYERROR" in stdout, stdout + stderr
    error = stdout.split("MEMORYERROR", 1)[1].split("\nWARNING", 1)[0]
    assert f"4 x {size:,} float64" in error
    assert f"({8 * 4 * size / 2**30:,.2f} GiB)" in error
    assert "covariance_type='diag'" in error and "fewer components" in error
    # the warning before it reports the true figure too (it said 0.2 GiB)
    warning = stdout.split("WARNING", 1)[1]
    assert f"{8 * 4 * size / 2**30:.2f} GiB of sufficient statistics" in warning


PREDICT_HUGE_K = """
import numpy as np
import fastgmm
K = 8_388_609
gm = fastgmm.GaussianMixture(K, covariance_type="diag")
gm.weights_ = np.full(K, 1.0 / K)
gm.means_ = np.linspace(-1.0, 1.0, K)[:, None]
gm.covariances_ = np.full((K, 1), 0.01)
gm.precisions_cholesky_ = 1.0 / np.sqrt(gm.covariances_)
gm.precisions_ = 1.0 / gm.covariances_
gm.n_features_in_ = 1
gm.converged_ = True
gm.n_iter_ = 1
gm.lower_bound_ = 0.0
try:
    print("LABEL", int(gm.predict(np.array([[0.25]]))[0]))
    print("SCORE", float(gm.score_samples(np.array([[0.25], [0.5]]))[1]))
except MemoryError as error:
    print("MEMORYERROR", error)
"""


@needs_proc
def test_predict_with_2_23_plus_1_components_works_not_a_crash():
    # Before: SIGSEGV (the E-step's CHUNK_SIZE x K scratch in int arithmetic,
    # malloc unchecked). Now a chunk holds only the rows there are: one row
    # of K is 64 MiB.
    returncode, stdout, stderr = run_isolated(PREDICT_HUGE_K, address_space_gib=4)
    assert_clean_exit(returncode, stdout, stderr)
    assert "MEMORYERROR" not in stdout, stdout
    # the nearest mean to 0.25 on linspace(-1, 1, K): index 0.625 (K - 1)
    assert f"LABEL {int(0.625 * (8_388_609 - 1))}" in stdout, stdout
    # log p(0.5) of K equal-weight unit-spaced narrow components: about log of
    # the density 1/2 on [-1, 1]
    score = float(stdout.split("SCORE", 1)[1].split()[0])
    assert math.isclose(score, math.log(0.5), abs_tol=1e-3)


# --------------------------------- allocations checked inside the kernels


ESTIMATE_SCRATCH_FAILS = """
import numpy as np
from fastgmm._kernels import _estep
K = {K}
def fake(shape):
    base = np.zeros(8, dtype=np.float64)
    strides = (shape[1] * 8, 8) if len(shape) == 2 else (8,)
    return np.lib.stride_tricks.as_strided(base, shape=shape, strides=strides)
# full, D = 1: a chunk of one row needs K doubles a thread (2 GiB), more than
# the child may map; the parameters are views over 64 bytes, never read
try:
    _estep.estimate(np.zeros((5, 1)), fake((K, 1)), fake((K,)), np.empty(0),
                    np.empty((0, 0)), fake((K,)), 0, np.empty(5, np.int64),
                    np.empty(0), np.empty((0, K)), {threads})
    print("COMPUTED")
except MemoryError as error:
    print("MEMORYERROR", error)
"""


@needs_proc
@pytest.mark.parametrize("threads", [1, 2])
def test_estimate_scratch_that_cannot_be_allocated_raises_memory_error(threads):
    # Before: 256 x 2^28 in int arithmetic is 0; malloc(0) "succeeded" and
    # the E-step wrote 256 x 2^28 doubles past it (or into NULL).
    K = 2**28
    returncode, stdout, stderr = run_isolated(
        ESTIMATE_SCRATCH_FAILS.format(K=K, threads=threads), address_space_gib=1)
    assert_clean_exit(returncode, stdout, stderr)
    assert "MEMORYERROR estimate: cannot allocate a thread's scratch" in stdout, stdout + stderr
    sizes = _estep.estimate_scratch(0, K, 1, 8, 5)
    assert f"({sizes['bytes'] / 2**30:.2f} GiB a thread" in stdout


EM_PASS_SCRATCH_FAILS = """
import numpy as np
from fastgmm._kernels import _suffstats
D = {D}
# full, K = 1, D > 96, responsibilities given: the statistics (D^2 / 2
# float64, about 1.5 GiB, never touched beyond the first pages) fit in the
# child's address space, the thread's D x D partial products (3 GiB) do not
X = np.ones((3, D))
stats = np.zeros((1, _suffstats.stat_size(0, 1, D)))
try:
    _suffstats.em_pass(X, np.empty(0), np.zeros((1, D)), np.empty(1), np.empty(0),
                       np.empty((0, 0)), np.zeros(1), np.ones((3, 1)), 0, stats, 1)
    print("COMPUTED", stats[0, 1], stats[0, 2])
except MemoryError as error:
    print("MEMORYERROR", error)
"""


@needs_proc
def test_em_pass_scratch_that_cannot_be_allocated_raises_memory_error():
    # Before: the malloc was unchecked and syrk wrote into NULL (SIGSEGV).
    D = 20_000
    returncode, stdout, stderr = run_isolated(EM_PASS_SCRATCH_FAILS.format(D=D),
                                              address_space_gib=2.4)
    assert_clean_exit(returncode, stdout, stderr)
    assert "MEMORYERROR em_pass: cannot allocate a thread's scratch" in stdout, stdout + stderr
    assert "covariance_type='diag'" in stdout


TRANSPOSED_COPY_FAILS = """
import numpy as np
from fastgmm._kernels import _estep
K = D = 2**29
def fake(shape, dtype=np.float32):
    base = np.zeros(8, dtype=dtype)
    size = base.itemsize
    strides = (shape[1] * size, size) if len(shape) == 2 else (size,)
    return np.lib.stride_tricks.as_strided(base, shape=shape, strides=strides)
# diag: the transposed K x D means (2^58 float32: 1 EiB) cannot be allocated;
# the inputs are views over 32 bytes, never read
try:
    _estep.estimate(fake((1, D)), fake((K, D)), fake((K * D,)), np.empty(0, np.float32),
                    np.empty((0, 0), np.float32), fake((K,), np.float64), 2,
                    np.empty(1, np.int64), np.empty(0, np.float32),
                    np.empty((0, K), np.float32), 1)
    print("COMPUTED")
except MemoryError as error:
    print("MEMORYERROR", error)
"""


@needs_proc
def test_transposed_parameters_that_cannot_be_allocated_raise_memory_error():
    # Before: K x D = 2^58 in int arithmetic is 0, and the copy wrote 2^58
    # entries into a malloc(0) buffer.
    returncode, stdout, stderr = run_isolated(TRANSPOSED_COPY_FAILS, address_space_gib=1)
    assert_clean_exit(returncode, stdout, stderr)
    assert "MEMORYERROR cannot allocate a transposed copy" in stdout, stdout + stderr


# ------------------------------------------------ row offsets past 2^31


BIG_ROWS = """
import mmap
import numpy as np
from fastgmm._kernels._suffstats import em_pass, stat_size
from fastgmm._parameters import KernelParams, n_slots_for
D, N = 2**14, 2**17 + 1      # N D = 2^31 + 2^14 float32 entries
# 8 GiB of address space in zero pages: no memory until a page is written
flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
X = np.frombuffer(mmap.mmap(-1, N * D * 4, flags=flags), dtype=np.float32).reshape(N, D)
X[-1] = 1.0                  # the last row, past entry 2^31: only it is nonzero
kp = KernelParams(np.ones(1), np.zeros((1, D)), np.ones((1, D)), "diag", np.float32)
stats = np.zeros((n_slots_for(N, "diag", 1, D), stat_size(2, 1, D)))
em_pass(X, np.empty(0), *kp.args(), np.empty((0, 1), np.float32), kp.code, stats, 2)
total = stats.sum(axis=0)
print("LL", total[0])
print("N", total[1], "S1", total[2], total[1 + D], "S2", total[2 + D], total[-1])
"""


@pytest.mark.slow
@needs_proc
def test_rows_past_entry_2_31_are_read_where_they_are():
    # An EM pass over N x D past 2^31 entries (8 GiB of float32 in zero
    # pages); the one nonzero row is the last. Chunk offsets were already
    # 64-bit (memoryview indexing in Py_ssize_t); this keeps them so.
    # (About 5 s on two cores: every row is read.)
    returncode, stdout, stderr = run_isolated(BIG_ROWS)
    assert_clean_exit(returncode, stdout, stderr)
    D, N = 2**14, 2**17 + 1
    values = stdout.split("N", 1)[1].split()
    assert float(values[0]) == N
    # S1 and S2 are the last row's alone, exactly (sums of zeros and one 1)
    assert [float(v) for v in (values[2], values[3], values[5], values[6])] == [1.0] * 4
    # log p: N rows at the mode, the last D/2 lower
    log_mode = -0.5 * D * math.log(2 * math.pi)
    ll = float(stdout.split("LL", 1)[1].split()[0])
    assert ll == pytest.approx(N * log_mode - D / 2, rel=1e-6)
