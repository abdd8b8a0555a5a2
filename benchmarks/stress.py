"""Stress benchmark for fastgmm (opt-in and heavy: not run by the test suite).

    python benchmarks/stress.py                 # all three cases
    python benchmarks/stress.py big_n wide_full # some of them
    python benchmarks/stress.py --max-iter 5

Cases (issue 7):

big_n            50,000,000 x 2 float32, K=8 full: peak resident memory of
                 the process must stay under 1.2x the data.
many_components  1,000,000 x 32 float32, K=256 diag.
wide_full        8,192 x 512 float64, K=32 full: the fit needs ~1.5 GiB of
                 K x D^2 statistics and parameters and says so with a
                 fastgmm.LargeMemoryWarning before allocating them. float64:
                 with 256 rows per component (< D) each covariance is a
                 rank-deficient scatter plus reg_covar=1e-6, positive
                 definite in float64 but not once rounded to float32 (the
                 float32 fit raises scikit-learn's ValueError, as
                 scikit-learn's own float32 fit does).

Each case runs in a fresh Python process (so that one case's memory does
not count in another's) and prints one line of figures. Memory is read from
/proc/self/status (Linux): VmRSS before the data exists ("baseline", the
interpreter and libraries), VmHWM (peak resident) over the whole process.
The data are generated in place, a chunk at a time, so the generator's
temporaries stay a few MB; the peak reset before the fit
(/proc/self/clear_refs) isolates the fit's own peak where the kernel allows
it. Initialisation comes from a k-means on a 200,000-row sample for big_n
(scikit-learn's k-means copies all of X), 'random_from_data' for the
others: the figures are those of the EM iterations themselves.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

# /proc readers shared with benchmarks/compare.py
from fastgmm._bench import _proc_status_kib, _reset_peak_rss

CASES = ("big_n", "many_components", "wide_full")


def generate(n_samples, n_features, n_components, dtype, seed=0, chunk=1 << 20):
    """Mixture data written in place, chunk by chunk."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(n_components, n_features)).astype(dtype)
    X = np.empty((n_samples, n_features), dtype=dtype)
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        labels = rng.integers(n_components, size=stop - start)
        X[start:stop] = rng.standard_normal((stop - start, n_features), dtype=dtype)
        X[start:stop] += centers[labels]
    return X


def sample_initialisation(X, n_components, seed=0, n_sample=200_000):
    """weights_init, means_init, precisions_init ('full') from k-means on a sample."""
    import numpy as np
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    # integers, not choice(replace=False): no permutation of all N rows
    sample = X[np.unique(rng.integers(0, X.shape[0], size=n_sample))]
    sample = sample.astype(np.float64)
    labels = KMeans(n_components, n_init=1, random_state=seed).fit_predict(sample)
    weights, means, precisions = [], [], []
    for k in range(n_components):
        rows = sample[labels == k]
        weights.append(rows.shape[0] / sample.shape[0])
        means.append(rows.mean(axis=0))
        cov = np.cov(rows, rowvar=False) + 1e-6 * np.eye(X.shape[1])
        precisions.append(np.linalg.inv(cov))
    weights = np.asarray(weights)
    return weights / weights.sum(), np.asarray(means), np.asarray(precisions)


def run_case(case, max_iter):
    import numpy as np

    import fastgmm

    baseline_kib = _proc_status_kib("VmRSS")
    if case == "big_n":
        n, d, k, covariance_type, dtype = 50_000_000, 2, 8, "full", np.float32
    elif case == "many_components":
        n, d, k, covariance_type, dtype = 1_000_000, 32, 256, "diag", np.float32
    else:
        n, d, k, covariance_type, dtype = 8_192, 512, 32, "full", np.float64
    t0 = time.perf_counter()
    X = generate(n, d, min(k, 16), dtype)
    generate_s = time.perf_counter() - t0
    data_kib = X.nbytes / 1024
    params = dict(n_components=k, covariance_type=covariance_type, tol=0.0,
                  max_iter=max_iter, random_state=0)
    if case == "big_n":
        weights, means, precisions = sample_initialisation(X, k)
        params.update(weights_init=weights, means_init=means, precisions_init=precisions)
    else:
        params.update(init_params="random_from_data")
    before_fit_kib = _proc_status_kib("VmRSS")
    peak_reset = _reset_peak_rss()
    iteration_times = []
    last = [time.perf_counter()]

    def callback(info):
        now = time.perf_counter()
        iteration_times.append(now - last[0])
        last[0] = now

    gmm = fastgmm.GaussianMixture(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        last[0] = t0
        gmm.fit(X, callback=callback)
        fit_s = time.perf_counter() - t0
    peak_kib = _proc_status_kib("VmHWM")
    resident_kib = peak_kib - baseline_kib
    return {
        "case": case,
        "shape": [n, d],
        "dtype": np.dtype(dtype).name,
        "n_components": k,
        "covariance_type": covariance_type,
        "iterations": gmm.n_iter_,
        "threads": fastgmm._threads.n_threads_for(n),
        "data_mib": round(data_kib / 1024, 1),
        "baseline_rss_mib": round(baseline_kib / 1024, 1),
        "rss_before_fit_mib": round(before_fit_kib / 1024, 1),
        "peak_reset_before_fit": peak_reset,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_minus_baseline_over_data": round(resident_kib / data_kib, 3),
        "fit_extra_peak_mib": round((peak_kib - before_fit_kib) / 1024, 1),
        "generate_s": round(generate_s, 1),
        "fit_s": round(fit_s, 2),
        "first_iteration_s": round(iteration_times[0], 3) if iteration_times else None,
        "later_iteration_s": (round(float(np.median(iteration_times[1:])), 3)
                              if len(iteration_times) > 1 else None),
        "lower_bound": gmm.lower_bound_,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught
                     if w.category.__name__ != "ConvergenceWarning"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"any of {', '.join(CASES)} (default: all)")
    parser.add_argument("--max-iter", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child, args.max_iter)))
        return 0
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    if not sys.platform.startswith("linux"):
        print("stress.py reads /proc/self/status: Linux only", file=sys.stderr)
        return 1
    failed = False
    for case in args.cases or CASES:
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", case,
             "--max-iter", str(args.max_iter)],
            capture_output=True, text=True,
        )
        if out.returncode != 0:
            print(f"{case}: failed\n{out.stderr}", file=sys.stderr)
            failed = True
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(result, indent=1))
        if case == "big_n" and result["peak_minus_baseline_over_data"] >= 1.2:
            print("big_n: peak resident memory is NOT under 1.2x the data", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
