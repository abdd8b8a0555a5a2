"""fastgmm and scikit-learn's GaussianMixture side by side, on the same data.

The code behind ``fastgmm bench`` (a small default case) and
benchmarks/compare.py (all cases at full size, see docs/benchmarks.md)::

    fastgmm bench                                      # quick: blobs2d at 1/10 size
    fastgmm bench --cases mid,speech --dtype both --scale 0.1
    python benchmarks/compare.py --cases mid,speech --dtype both --markdown

For every case (fixed names and sizes, see CASES) and dtype it prints one
row: the time of one EM iteration of each estimator, their ratio, the peak
memory each fit adds, and fastgmm's GFLOP/s, also as a fraction of what this
machine's BLAS gemm reaches ("roofline fraction"). docs/benchmarks.md
explains how to read the table. Progress goes to stderr, tables to stdout.

Method
------
Data: for a case (N, D, K), ``rng = numpy.random.default_rng(0)``,
``centers = rng.normal(scale=5, size=(K, D))``,
``X = centers[rng.integers(K, size=N)] + rng.normal(size=(N, D))``, cast to
the dtype; the initial means are K distinct random rows of X (the next draws
of the same rng): `make_blobs` and `fixed_work_params` below, which the asv
suite (benchmarks/benchmarks/common.py) loads from this file.

Time per EM iteration: both estimators get the same weights_init,
means_init and precisions_init (identity), tol=0 and random_state=0, so a
fit with max_iter=n does exactly n EM iterations, the same ones for both.
One sample is ``(t(max_iter = 1 + m) - t(max_iter = 1)) / m``: the
difference cancels everything a fit does besides its iterations (input
validation, initialisation, the final labelling E-step). Within a repeat,
scikit-learn and fastgmm run back to back, in alternating order from one
repeat to the next, so slow drifts of the machine hit both alike; the table
shows the median over --repeats samples. The lower bounds both fits reach
are compared (column "LB diff", the absolute difference of the mean
log-likelihoods) to show that both did the same work.

k-means stage (--kmeans): the default initialisation's k-means alone,
fastgmm's (`fastgmm._initialization.kmeans`, what GaussianMixture(K).fit
runs first) against ``sklearn.cluster.KMeans(n_clusters=K, n_init=1,
random_state=0).fit(X)`` (what scikit-learn's GaussianMixture runs), each
with its default threads, alternating within a repeat as above; the median
of --repeats. "labels equal" says whether the two k-means gave the same
labels (they are meant to: see docs/architecture.md, "Initialisation").

End to end (--end-to-end): a default ``fit(X)`` of each estimator (k-means
initialisation, default tol), timed the same way.

Peak memory: the increase of the resident set (RSS) of a fresh process
during one fit of 2 EM iterations, for each estimator separately (a
subprocess per measurement; the fastgmm kernels malloc their buffers, which
tracemalloc would not see). The child builds X (block by block, so nothing
but X stays behind), makes one small warm-up fit so that one-off runtime
state (the OpenMP thread pool and stacks, BLAS buffers, lazily imported
modules) is not charged to the fit, then reads VmRSS, resets the kernel's
high-water mark (``echo 5 > /proc/self/clear_refs``, Linux), fits, and reads
VmHWM: added = VmHWM - VmRSS before the fit. glibc's malloc is pinned to
return every block of 128 KiB or more to the system when it is freed
(MALLOC_MMAP_THRESHOLD_), so freed warm-up memory is not silently reused.
Where clear_refs cannot be written, RSS is sampled every millisecond by a
thread instead (this can miss a short spike; the header says which method
ran). RSS counts pages actually touched: memory that is allocated but never
written does not count, which is what the machine really had to provide.

GFLOP/s: `em_flops` below is the flop model of one EM iteration, per
covariance type; GFLOP/s = em_flops / fastgmm's time per iteration. The
roofline fraction divides that by the rate of a large square matmul of the
same dtype (dgemm for float64, sgemm for float32) on the same number of
threads, measured by this script with numpy. Only 'full' and 'tied' with
tens of features or more are dominated by gemm-like work; the other cases
are bounded by memory traffic and exp(), so a small fraction is expected.

Threads: by default both libraries use all the cores they see. --threads T
limits every thread pool in the process (OpenMP, used by fastgmm's kernels,
and BLAS, used by scikit-learn's EM) to T with threadpoolctl, so both
estimators get the same T threads.
"""

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np

# This module must stay importable from its file alone, with numpy only
# (benchmarks/benchmarks/common.py loads it by path to give the asv suite the
# same data against any commit): fastgmm and scikit-learn are imported inside
# the functions that use them.

# ------------------------------------------------------------------ data

# Rows generated per step. The data are built in blocks so that building X
# never holds more than X itself plus a few MB: the benchmark measures the
# peak memory *added* by a fit, and temporaries left from building X would
# otherwise hide it (see "Peak memory" above).
_BLOCK_ROWS = 65536

# Fixed-point step of the initial weights: multiples of 2**-20 are exact in
# float32 and float64 and so are all their partial sums, hence sum == 1.0
# exactly in either dtype, in any summation order (both estimators check it).
_WEIGHT_QUANTUM = 2**20


def make_blobs(n_samples, n_features, n_components, dtype="float64", seed=0):
    """K Gaussian blobs, exactly::

        rng = numpy.random.default_rng(seed)
        centers = rng.normal(scale=5, size=(K, D))
        X = centers[rng.integers(K, size=N)] + rng.normal(size=(N, D))

    then cast to `dtype`. Generator.normal draws the same stream whether it
    is asked for all rows at once or block by block (no cached deviates), so
    the blocked build below gives bitwise the X of the one-liner, without
    its three N x D float64 temporaries.

    Returns (X, rng): the generator, positioned after the data, draws the
    initial means (see `initial_means`).
    """
    N, D, K = int(n_samples), int(n_features), int(n_components)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(K, D))
    labels = rng.integers(K, size=N)
    X = np.empty((N, D), dtype=dtype)
    for start in range(0, N, _BLOCK_ROWS):
        stop = min(N, start + _BLOCK_ROWS)
        X[start:stop] = centers[labels[start:stop]] + rng.normal(size=(stop - start, D))
    return X, rng


def initial_means(X, n_components, rng):
    """K distinct random rows of X (in X's dtype)."""
    rows = rng.choice(X.shape[0], size=n_components, replace=False)
    return X[np.sort(rows)].copy()


def initial_weights(n_components, dtype):
    """Near-uniform weights in `dtype` whose sum is exactly 1 (see _WEIGHT_QUANTUM)."""
    K = n_components
    units = np.full(K, _WEIGHT_QUANTUM // K, dtype=np.int64)
    units[-1] = _WEIGHT_QUANTUM - units[:-1].sum()
    return (units / _WEIGHT_QUANTUM).astype(dtype)


def initial_precisions(covariance_type, n_components, n_features, dtype):
    """Identity precisions, shaped for `covariance_type`.

    The blobs have unit within-cluster noise, so the identity is the right
    scale and EM starts (and stays) well conditioned for any fixed number of
    iterations.
    """
    K, D = n_components, n_features
    if covariance_type == "full":
        return np.broadcast_to(np.eye(D, dtype=dtype), (K, D, D)).copy()
    if covariance_type == "tied":
        return np.eye(D, dtype=dtype)
    if covariance_type == "diag":
        return np.ones((K, D), dtype=dtype)
    if covariance_type == "spherical":
        return np.ones(K, dtype=dtype)
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def fixed_work_params(X, n_components, covariance_type, rng, max_iter):
    """GaussianMixture keyword arguments for a fit that does fixed work.

    - weights_init, means_init and precisions_init are all given (in X's
      dtype, so scikit-learn's float32 run is not promoted to float64 by a
      float64 initial parameter), so fastgmm skips its initialisation pass;
    - init_params='random_from_data' because scikit-learn runs its init_params
      method even when all three are given (its result is then overwritten):
      this is its cheapest method (no k-means) and keeps the fixed part of a
      fit small and steady;
    - tol=0 so that exactly `max_iter` EM iterations run; random_state=0.
    """
    D = X.shape[1]
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=max_iter,
        init_params="random_from_data",
        weights_init=initial_weights(n_components, X.dtype),
        means_init=initial_means(X, n_components, rng),
        precisions_init=initial_precisions(covariance_type, n_components, D, X.dtype),
        random_state=0,
    )


def bayesian_fixed_work_params(X, n_components, covariance_type, rng, max_iter):
    """BayesianGaussianMixture keyword arguments for a fit that does fixed work.

    It takes no initial parameters: both libraries start from
    init_params='random_from_data' with random_state=0 (the same K rows, the
    same initial posteriors; the cheapest init, no k-means), tol=0 so that
    exactly `max_iter` iterations run. The fixed part (priors from X's mean
    and covariance, the initialisation) cancels in the difference of two
    fits. `rng` is not used (the signature is fixed_work_params').
    """
    return dict(n_components=n_components, covariance_type=covariance_type, tol=0.0,
                max_iter=max_iter, init_params="random_from_data", random_state=0)


def case_spec(name):
    """(N, D, K, covariance_type, bayesian) of a case."""
    if name in BAYESIAN_CASES:
        return (*BAYESIAN_CASES[name], True)
    return (*CASES[name], False)


# ----------------------------------------------------------------- cases

# name: (n_samples, n_features, n_components, covariance_type)
CASES = {
    "blobs2d": (1_000_000, 2, 3, "full"),
    "mid": (200_000, 16, 16, "full"),
    "speech": (500_000, 39, 64, "diag"),
    "wide": (50_000, 128, 32, "full"),
    "tied": (200_000, 16, 16, "tied"),
    "spherical": (1_000_000, 8, 32, "spherical"),
}
# BayesianGaussianMixture against scikit-learn's on the same data and start
# (see `bayesian_fixed_work_params`): the variational fit of the same shapes.
BAYESIAN_CASES = {
    "bgmm-speech": (500_000, 39, 64, "diag"),
    "bgmm-mid": (200_000, 16, 16, "full"),
}
# iris (150 x 4, K=3, full): a default fit(X), end to end, to expose the
# fixed per-call overhead that the large cases hide.
IRIS = "iris"
ALL_CASES = list(CASES) + list(BAYESIAN_CASES) + [IRIS]

# EM iterations of the memory fit: the first iteration plus one steady one;
# every iteration allocates the same, so more would only take longer.
MEMORY_FIT_ITERATIONS = 2

# glibc malloc: a fixed mmap threshold (setting it also disables the dynamic
# raise that would keep freed large blocks in the heap, still resident).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}

MiB = 2.0**20


# ----------------------------------------------------------------- flops

# Per sample and component, every covariance type pays the same 7 flops to
# turn log-densities into responsibilities: log-sum-exp (compare, subtract,
# exp, add), the responsibility (subtract, exp) and N_k (add).
NORMALISE_FLOPS = 7


def em_flops(covariance_type, N, D, K):
    """Floating-point operations of one EM iteration (E-step + M-step statistics).

    Counting: +, -, *, /, compare, exp and sqrt are one flop each, a
    multiply-add is two; a product with a triangular factor and a symmetric
    rank-k update touch one triangle only, D(D+1)/2 multiply-adds per row.
    This is the arithmetic of the algorithm as fastgmm's fused pass does it,
    without the O(K D^3) parameter update (negligible for N >> D).

      full      per (i, k)  E: D centre + D(D+1) (x-mu_k) U_k + 2D squared norm
                            M: D centre + 2D S1_k + D(D+1) S2_k triangle
                → N K (2 D^2 + 8 D + 7)
      tied      per i       D centre + D(D+1) projection + D centre + D(D+1) S2
                per (i, k)  3D distance to the projected mean + 3D S1_k
                → N (2 D^2 + 4 D) + N K (6 D + 7)
      diag      per (i, k)  E: 4D (subtract, square, scale, add)
                            M: 6D (subtract; S1 multiply-add; S2 two
                               multiplies and an add)
                → N K (10 D + 7)
      spherical the kernel runs it as diag with a repeated precision
                → N K (10 D + 7)

    (scikit-learn does more arithmetic for the same iteration: full gemm
    instead of triangular products, N x K arrays of logs and exps; the model
    is only used for fastgmm's rate.)
    """
    if covariance_type == "full":
        return N * K * (2 * D * D + 8 * D + NORMALISE_FLOPS)
    if covariance_type == "tied":
        return N * (2 * D * D + 4 * D) + N * K * (6 * D + NORMALISE_FLOPS)
    if covariance_type in ("diag", "spherical"):
        return N * K * (10 * D + NORMALISE_FLOPS)
    raise ValueError(covariance_type)


# --------------------------------------------------------------- helpers


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def scaled_n_samples(N, D, K, covariance_type, scale):
    """N * scale, raised to 2 K (D + 1) rows for 'full' (20 K otherwise) so
    that a 'full' D x D covariance gets more than D points per component,
    and never above N.

    This is only for quick checks: with few rows per component, the
    covariances approach singularity, and scikit-learn's float32 fit of
    'wide' (D = 128) fails at small scales (fastgmm, which forms covariances
    in float64, does not); such a case is reported as failed. At full scale
    (N = 50,000) it fits in both dtypes (checked with --iters 5)."""
    n = int(round(N * scale))
    minimum = 2 * K * (D + 1) if covariance_type == "full" else 20 * K
    return min(N, max(n, minimum))


def timed(fn, settle=0.0):
    """Wall time of fn(), with the cyclic garbage collector off (as timeit does).

    settle: seconds to sleep first, off the clock. A BLAS or OpenMP pool
    keeps its threads spinning for a while after its last call (OpenBLAS's
    idle loop about 0.1 s): a run started at once shares the cores with the
    previous run's spinning threads, the other library's as often as not
    (mid's k-means stage right after scikit-learn's KMeans: median 47 ms,
    after a 0.5 s pause 27 ms).
    """
    if settle > 0:
        time.sleep(settle)
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn()
        return time.perf_counter() - t0, result
    finally:
        if enabled:
            gc.enable()


def estimator_classes(bayesian=False):
    if bayesian:
        from sklearn.mixture import BayesianGaussianMixture as SklearnBGMM

        from fastgmm import BayesianGaussianMixture as FastBGMM

        return {"sklearn": SklearnBGMM, "fastgmm": FastBGMM}
    from sklearn.mixture import GaussianMixture as SklearnGMM

    from fastgmm import GaussianMixture as FastGMM

    return {"sklearn": SklearnGMM, "fastgmm": FastGMM}


def import_everything():
    """Load every library that starts threads before limiting them:
    threadpoolctl only limits the pools that are loaded when it is called."""
    import scipy.linalg  # noqa: F401  (the BLAS that fastgmm's kernels call)
    import sklearn.cluster  # noqa: F401  (k-means: OpenMP, used by default fits)
    import sklearn.mixture  # noqa: F401

    import fastgmm  # noqa: F401


def limit_threads(n_threads):
    """Limit OpenMP and BLAS to n_threads for the rest of the process (None: no limit)."""
    if n_threads is None:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n_threads)  # kept alive by the caller


def fastgmm_threads():
    from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads

    return openmp_effective_n_threads()


# ---------------------------------------------------------------- timing


def time_per_iteration(X, kwargs, iters, repeats, bayesian=False, settle=0.0):
    """Median seconds per EM iteration of each estimator, by difference.

    Returns {name: {"median": s, "samples": [...], "lower_bound": lb, "dtype": str}}.
    """
    classes = estimator_classes(bayesian)
    short = dict(kwargs, max_iter=1)
    long = dict(kwargs, max_iter=1 + iters)
    # Warm-up: first calls pay imports, thread start-up and page faults.
    for name, cls in classes.items():
        try:
            cls(**short).fit(X)
        except Exception as exc:
            raise RuntimeError(f"{name} {type(exc).__name__}") from exc
    out = {name: {"samples": []} for name in classes}
    for r in range(repeats):
        order = list(classes) if r % 2 == 0 else list(reversed(classes))
        for name in order:
            cls = classes[name]
            try:
                t_short, _ = timed(lambda: cls(**short).fit(X), settle)
                t_long, model = timed(lambda: cls(**long).fit(X), settle)
            except Exception as exc:
                raise RuntimeError(f"{name} {type(exc).__name__}") from exc
            out[name]["samples"].append((t_long - t_short) / iters)
            out[name]["lower_bound"] = float(np.ravel(model.lower_bound_)[0])
            out[name]["dtype"] = str(model.means_.dtype)
    for name, res in out.items():
        res["median"] = statistics.median(res["samples"])
        if res["dtype"] != str(X.dtype):
            log(f"  warning: {name} computed in {res['dtype']} for {X.dtype} input")
    return out


def time_end_to_end(X, n_components, covariance_type, repeats, settle=0.0):
    """Median seconds of a default fit(X) (k-means init, tol=1e-3) of each estimator."""
    classes = estimator_classes()
    kwargs = dict(n_components=n_components, covariance_type=covariance_type, random_state=0)
    for cls in classes.values():
        cls(**kwargs).fit(X)
    out = {name: {"samples": []} for name in classes}
    for r in range(repeats):
        order = list(classes) if r % 2 == 0 else list(reversed(classes))
        for name in order:
            cls = classes[name]
            t, model = timed(lambda: cls(**kwargs).fit(X), settle)
            out[name]["samples"].append(t)
            out[name]["n_iter"] = int(model.n_iter_)
    for res in out.values():
        res["median"] = statistics.median(res["samples"])
    return out


def time_kmeans(X, n_components, repeats, settle=0.0):
    """Median seconds of the k-means stage of a default fit, each side's own.

    Returns {name: {"median": s, "samples": [...]}, "labels_equal": bool}.
    """
    from sklearn.cluster import KMeans

    from fastgmm._initialization import kmeans

    runs = {
        "sklearn": lambda: KMeans(n_clusters=n_components, n_init=1,
                                  random_state=0).fit(X).labels_,
        "fastgmm": lambda: kmeans(X, n_components, np.random.RandomState(0))[0],
    }
    labels = {name: run() for name, run in runs.items()}     # warm-up
    out = {name: {"samples": []} for name in runs}
    for r in range(repeats):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            t, labels[name] = timed(runs[name], settle)
            out[name]["samples"].append(t)
    for name in runs:
        out[name]["median"] = statistics.median(out[name]["samples"])
    out["labels_equal"] = bool(np.array_equal(labels["sklearn"], labels["fastgmm"]))
    return out


def gemm_gflops(dtype, n, n_threads, repeats=5):
    """Best GFLOP/s of an n x n x n matmul (2 n^3 flops) on n_threads BLAS threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    with threadpool_limits(limits=n_threads, user_api="blas"):
        a @ b  # warm-up: BLAS buffers, thread start-up
        best = min(timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


# ---------------------------------------------------------------- memory


def _proc_status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _RssSampler:
    """Fallback peak-RSS monitor: a thread polling VmRSS every millisecond."""

    def __init__(self):
        self.peak_kib = _proc_status_kib("VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, _proc_status_kib("VmRSS"))
            time.sleep(0.001)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, _proc_status_kib("VmRSS"))


def memory_child(spec):
    """Body of the subprocess that measures one fit (see "Peak memory" above).

    Prints one JSON line: added_bytes, baseline_bytes, peak_bytes, method.
    """
    warnings.simplefilter("ignore")
    import_everything()
    limiter = limit_threads(spec["threads"])  # noqa: F841  (held for the process)
    bayesian = spec.get("bayesian", False)
    cls = estimator_classes(bayesian)[spec["impl"]]
    N, D, K, cov = spec["N"], spec["D"], spec["K"], spec["covariance_type"]
    X, rng = make_blobs(N, D, K, spec["dtype"], seed=0)
    params = bayesian_fixed_work_params if bayesian else fixed_work_params
    kwargs = params(X, K, cov, rng, MEMORY_FIT_ITERATIONS)

    # Warm-up on a slice big enough to reach every code path (the BLAS path
    # of the kernels, a well-conditioned covariance for every component).
    n_warm = min(N, max(4096, 4 * K * (D + 1)))
    cls(**dict(kwargs, max_iter=1)).fit(X[:n_warm])
    gc.collect()

    baseline_kib = _proc_status_kib("VmRSS")
    if _reset_peak_rss():
        method = "VmHWM after clear_refs"
        cls(**kwargs).fit(X)
        peak_kib = _proc_status_kib("VmHWM")
    else:
        method = "sampled VmRSS (1 ms)"
        with _RssSampler() as sampler:
            cls(**kwargs).fit(X)
        peak_kib = sampler.peak_kib
    print(json.dumps({
        "added_bytes": max(0, peak_kib - baseline_kib) * 1024,
        "baseline_bytes": baseline_kib * 1024,
        "peak_bytes": peak_kib * 1024,
        "method": method,
    }))


def measure_memory(impl, N, D, K, covariance_type, dtype, threads, bayesian=False):
    """Run memory_child in a fresh interpreter; returns its result dict."""
    import fastgmm

    spec = dict(impl=impl, N=N, D=D, K=K, covariance_type=covariance_type,
                dtype=dtype, threads=threads, bayesian=bayesian)
    env = dict(os.environ, **MALLOC_ENV)
    # The child must import the same fastgmm as this process (an in-place
    # build found through PYTHONPATH, or the installed one).
    fastgmm_root = os.path.dirname(os.path.dirname(os.path.abspath(fastgmm.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [fastgmm_root, env.get("PYTHONPATH", "")] if p
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fastgmm._bench", "--memory-child", json.dumps(spec)],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        log(proc.stderr[-2000:])
        raise RuntimeError(f"{impl} memory child exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- output


def machine_info(n_threads):
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import fastgmm

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    pools = [
        f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads, "
        f"{os.path.basename(p['filepath'])})"
        for p in threadpool_info()
    ]
    return {
        "cpu": cpu,
        "cpus_usable": usable,
        "threads": n_threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "fastgmm": fastgmm.__version__,
        "thread_pools": pools,
    }


def format_table(headers, rows, markdown):
    cells = [[str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join("---:" if i else ":---" for i in range(len(headers))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    fmt = lambda row: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
    )
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells])


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.3g}" if abs(ms) < 100 else f"{ms:.0f}"


def fmt_mib(nbytes):
    return "-" if nbytes is None else f"{nbytes / MiB:.3g}"


# ------------------------------------------------------------------ main


# Defaults of the two front ends: benchmarks/compare.py measures every case
# at full size; `fastgmm bench` one small case, in seconds.
FULL_DEFAULTS = dict(cases=",".join(ALL_CASES), scale=1.0, memory=True, iris_repeats=100,
                     settle=0.2)
QUICK_DEFAULTS = dict(cases="blobs2d", scale=0.1, memory=False, iris_repeats=20, settle=0.0)


def cases_epilog():
    return "Cases: " + ", ".join(
        f"{n} (N={c[0]:,} D={c[1]} K={c[2]} {c[3]})" for n, c in CASES.items()
    ) + ", " + ", ".join(
        f"{n} (BayesianGaussianMixture, N={c[0]:,} D={c[1]} K={c[2]} {c[3]})"
        for n, c in BAYESIAN_CASES.items()
    ) + ", iris (150 x 4, K=3 full, end-to-end only)."


def add_arguments(p, defaults):
    """The benchmark's options, on `p`, with the front end's defaults."""
    p.add_argument("--cases", default=defaults["cases"],
                   help=f"comma-separated case names (default: {defaults['cases']})")
    p.add_argument("--dtype", choices=["float64", "float32", "both"], default="float64")
    p.add_argument("--repeats", type=int, default=3,
                   help="timing samples per measurement, median reported (>= 3)")
    p.add_argument("--iters", type=int, default=5,
                   help="m: per-iteration time is (t(1+m) - t(1)) / m")
    p.add_argument("--scale", type=float, default=defaults["scale"],
                   help=f"multiply every N by this (default {defaults['scale']}), e.g. 0.01")
    p.add_argument("--threads", type=int, default=None,
                   help="limit OpenMP and BLAS to this many threads (threadpoolctl)")
    p.add_argument("--end-to-end", action="store_true",
                   help="also time a default fit(X) of both (k-means init, default tol)")
    p.add_argument("--kmeans", action="store_true",
                   help="also time the default init's k-means alone: fastgmm's against "
                        "KMeans(n_init=1)")
    p.add_argument("--settle", type=float, default=defaults["settle"], metavar="SECONDS",
                   help="sleep this long before every timed run, off the clock, so that "
                        "the previous run's spinning BLAS/OpenMP threads are idle "
                        f"(default {defaults['settle']})")
    p.add_argument("--iris-repeats", type=int, default=defaults["iris_repeats"],
                   help=f"fits per estimator for the iris case (default "
                        f"{defaults['iris_repeats']})")
    p.add_argument("--memory", dest="memory", action="store_true",
                   help="measure the peak memory of each fit (2 subprocesses per row)"
                        + (" (default)" if defaults["memory"] else ""))
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the peak-memory subprocesses"
                        + ("" if defaults["memory"] else " (default)"))
    p.set_defaults(memory=defaults["memory"])
    p.add_argument("--gemm-size", type=int, default=None,
                   help="matrix size of the gemm reference (default 2048, 1024 with --scale < 0.1)")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument("--json", metavar="PATH", help="also write every measurement to PATH")


def check_args(p, args):
    """Turn --cases into a list and refuse settings that cannot give a result."""
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in ALL_CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {ALL_CASES}")
    if not args.cases:
        p.error(f"no case given; choose from {ALL_CASES}")
    if args.repeats < 3:
        p.error("--repeats must be at least 3 (the median of fewer is not robust)")
    if args.iters < 1:
        p.error("--iters must be at least 1")
    if not args.scale > 0:
        p.error("--scale must be positive")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if not args.settle >= 0:
        p.error("--settle must be at least 0")
    if args.iris_repeats < 1:
        p.error("--iris-repeats must be at least 1")
    if args.gemm_size is not None and args.gemm_size < 1:
        p.error("--gemm-size must be at least 1")
    if args.json:
        # checked before the run, not after it (an outside audit: a missing
        # folder failed only once every case had been measured)
        from fastgmm._files import unwritable_reason

        reason = unwritable_reason(args.json)
        if reason is not None:
            p.error(f"--json {args.json}: {reason}")


def parse_args(argv, prog=None, defaults=FULL_DEFAULTS):
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=cases_epilog(),
    )
    add_arguments(p, defaults)
    p.add_argument("--memory-child", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child is None:
        check_args(p, args)
    return args


def run_case(name, N, D, K, cov, dtype, args, gemm_rate, bayesian=False):
    """Measure one case and dtype: (table row, end-to-end row or None,
    k-means row or None, record for --json, peak-memory method or None)."""
    X, rng = make_blobs(N, D, K, dtype, seed=0)
    params = bayesian_fixed_work_params if bayesian else fixed_work_params
    kwargs = params(X, K, cov, rng, max_iter=1)
    t = time_per_iteration(X, kwargs, args.iters, args.repeats, bayesian, args.settle)
    sk, fast = t["sklearn"]["median"], t["fastgmm"]["median"]
    flops = em_flops(cov, N, D, K)
    # A median below zero means the noise exceeds m iterations: raise --iters.
    gflops = flops / fast / 1e9 if fast > 0 else float("nan")
    roofline = gflops / gemm_rate
    mem, method = {"sklearn": None, "fastgmm": None}, None
    if args.memory:
        for impl in mem:
            res = measure_memory(impl, N, D, K, cov, dtype, args.threads, bayesian)
            mem[impl], method = res["added_bytes"], res["method"]
    dlb = abs(t["sklearn"]["lower_bound"] - t["fastgmm"]["lower_bound"])
    row = [
        name, N, D, K, cov, dtype, fmt_ms(sk), fmt_ms(fast),
        # a difference of two timings can come out <= 0 when noise beats a
        # tiny case's work: no ratio then
        f"{sk / fast:.2f}x" if fast > 0 and sk > 0 else "n/a",
        fmt_mib(mem["sklearn"]), fmt_mib(mem["fastgmm"]),
        f"{gflops:.2f}", f"{100 * roofline:.1f}%", f"{dlb:.1e}",
    ]
    record = dict(case=name, N=N, D=D, K=K, covariance_type=cov, dtype=dtype,
                  per_iteration=t, em_flops=flops, gflops=gflops,
                  roofline_fraction=roofline, peak_memory_added_bytes=mem)
    e2e = None
    if args.end_to_end and not bayesian:
        e = time_end_to_end(X, K, cov, args.repeats, args.settle)
        e2e = e2e_row(name, N, D, K, cov, dtype, e)
        record["end_to_end"] = e
    km = None
    if args.kmeans and not bayesian:     # the same k-means as the GaussianMixture case's
        k = time_kmeans(X, K, args.repeats, args.settle)
        sk_km, fast_km = k["sklearn"]["median"], k["fastgmm"]["median"]
        km = [name, N, D, K, dtype, fmt_ms(sk_km), fmt_ms(fast_km), f"{sk_km / fast_km:.2f}x",
              "yes" if k["labels_equal"] else "no"]
        record["kmeans"] = k
    return row, e2e, km, record, method


def main(argv=None, prog=None):
    """benchmarks/compare.py: every case at full size by default."""
    args = parse_args(argv, prog)
    if args.memory_child is not None:
        memory_child(json.loads(args.memory_child))
        return 0
    return run(args)


def run(args):
    """Measure the cases of `args` (from `add_arguments` + `check_args`) and
    print the report; returns 0, or 1 if a case failed."""
    warnings.simplefilter("ignore")  # tol=0 fits never "converge"
    import_everything()
    limiter = limit_threads(args.threads)  # noqa: F841  (held for the process)
    n_threads = fastgmm_threads()
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    info = machine_info(n_threads)
    log(f"fastgmm {info['fastgmm']} vs scikit-learn {info['scikit-learn']} "
        f"on {info['cpu']}, {n_threads} thread(s)")

    # gemm reference: single thread, and the thread count fastgmm uses.
    gemm_n = args.gemm_size or (2048 if args.scale >= 0.1 else 1024)
    gemm = {}
    for dtype in dtypes:
        for t in sorted({1, n_threads}):
            gemm[(dtype, t)] = gemm_gflops(dtype, gemm_n, t)
            log(f"  {'dgemm' if dtype == 'float64' else 'sgemm'} n={gemm_n} "
                f"{t} thread(s): {gemm[(dtype, t)]:.1f} GFLOP/s")

    memory_method = None
    iteration_rows, e2e_rows, kmeans_rows, records = [], [], [], []
    for name in [c for c in args.cases if c != IRIS]:
        N0, D, K, cov, bayesian = case_spec(name)
        N = scaled_n_samples(N0, D, K, cov, args.scale)
        for dtype in dtypes:
            log(f"{name}: N={N} D={D} K={K} {cov} {dtype}")
            try:
                row, e2e, km, record, method = run_case(name, N, D, K, cov, dtype, args,
                                                        gemm[(dtype, n_threads)], bayesian)
            except Exception as exc:  # noqa: BLE001  one failed case must not lose the others
                cause = exc.__cause__ or exc
                log(f"  FAILED: {exc}" + (f": {cause}" if cause is not exc else ""))
                iteration_rows.append([name, N, D, K, cov, dtype]
                                      + [f"failed ({exc})"] + [""] * 7)
                records.append(dict(case=name, N=N, D=D, K=K, covariance_type=cov,
                                    dtype=dtype, error=f"{exc}: {cause}" if cause is not exc
                                    else str(exc)))
                continue
            iteration_rows.append(row)
            records.append(record)
            memory_method = method or memory_method
            if e2e is not None:
                e2e_rows.append(e2e)
            if km is not None:
                kmeans_rows.append(km)

    if IRIS in args.cases:
        from sklearn.datasets import load_iris

        X = np.ascontiguousarray(load_iris().data)
        log(f"iris: {args.iris_repeats} default fits of each")
        e = time_end_to_end(X, 3, "full", args.iris_repeats, args.settle)
        e2e_rows.append(e2e_row(IRIS, 150, 4, 3, "full", "float64", e))
        records.append(dict(case=IRIS, N=150, D=4, K=3, covariance_type="full",
                            dtype="float64", end_to_end=e))

    print_report(args, info, gemm, gemm_n, n_threads, memory_method,
                 iteration_rows, e2e_rows, kmeans_rows)
    if args.json:
        from fastgmm._files import atomic_write   # never half a file, as every output

        with atomic_write(args.json, binary=False) as f:
            json.dump(dict(args=_settings(args),
                           machine=info, memory_method=memory_method,
                           gemm_gflops={f"{d}/{t}": v for (d, t), v in gemm.items()},
                           results=records), f, indent=1)
        log(f"wrote {args.json}")
    return 1 if any("error" in record for record in records) else 0


def _settings(args):
    """The options of a run, for --json (not the front end's own objects)."""
    plain = (str, int, float, bool, list, type(None))
    return {k: v for k, v in vars(args).items()
            if k != "memory_child" and isinstance(v, plain)}


def e2e_row(name, N, D, K, cov, dtype, e):
    sk, fast = e["sklearn"]["median"], e["fastgmm"]["median"]
    return [name, N, D, K, cov, dtype, fmt_ms(sk), fmt_ms(fast), f"{sk / fast:.2f}x",
            e["sklearn"]["n_iter"], e["fastgmm"]["n_iter"]]


def print_report(args, info, gemm, gemm_n, n_threads, memory_method, iteration_rows, e2e_rows,
                 kmeans_rows=()):
    md = args.markdown
    bullet = "- " if md else ""
    lines = [
        f"{bullet}machine: {info['cpu']}, {info['cpus_usable']} usable CPUs, "
        f"{n_threads} thread(s)" + (f" (--threads {args.threads})" if args.threads else ""),
        f"{bullet}versions: python {info['python']}, numpy {info['numpy']}, "
        f"scipy {info['scipy']}, scikit-learn {info['scikit-learn']}, "
        f"fastgmm {info['fastgmm']}",
        f"{bullet}thread pools: " + "; ".join(info["thread_pools"]),
        f"{bullet}gemm reference (numpy matmul, n={gemm_n}): " + ", ".join(
            f"{'dgemm' if d == 'float64' else 'sgemm'} {v:.1f} GFLOP/s on {t} thread(s)"
            for (d, t), v in gemm.items()
        ),
        f"{bullet}per-iteration time: median of {args.repeats} samples of "
        f"(t(max_iter={1 + args.iters}) - t(max_iter=1)) / {args.iters}; "
        f"every timed run after {args.settle:g} s idle; "
        f"peak memory: {memory_method or 'not measured'}",
        f"{bullet}flop model per EM iteration (em_flops): full N K (2D^2 + 8D + 7); "
        f"tied N (2D^2 + 4D) + N K (6D + 7); diag and spherical N K (10D + 7)",
    ]
    if args.scale != 1.0:
        lines.append(f"{bullet}N scaled by {args.scale} (raised where a case needs more rows)")
    print("\n".join(lines))
    if iteration_rows:
        print()
        print("Per EM iteration" + (":" if not md else ""))
        print()
        print(format_table(
            ["case", "N", "D", "K", "covariance", "dtype",
             "sklearn ms/it", "fastgmm ms/it", "speedup",
             "sklearn MiB", "fastgmm MiB", "fastgmm GFLOP/s", "of gemm", "LB diff"],
            iteration_rows, md,
        ))
    if e2e_rows:
        print()
        print("End to end, default fit(X)" + (":" if not md else ""))
        print()
        print(format_table(
            ["case", "N", "D", "K", "covariance", "dtype",
             "sklearn ms", "fastgmm ms", "speedup", "sklearn n_iter", "fastgmm n_iter"],
            e2e_rows, md,
        ))
    if kmeans_rows:
        print()
        print("k-means stage of the default init, KMeans(n_init=1) against fastgmm"
              + (":" if not md else ""))
        print()
        print(format_table(
            ["case", "N", "D", "K", "dtype", "sklearn ms", "fastgmm ms", "speedup",
             "labels equal"],
            kmeans_rows, md,
        ))


if __name__ == "__main__":
    sys.exit(main())
