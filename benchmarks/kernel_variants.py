"""Time one EM pass (em_pass: E-step plus sufficient statistics) for every
kernel variant built into the installed fastgmm.

    python benchmarks/kernel_variants.py [--threads 1] [--repeats 5]

A wheel (FASTGMM_ARCH=dispatch) has "baseline" and, on x86-64, "x86-64-v3";
a source build has its own (e.g. "native"): run the script once per
installation to compare them. Prints the median over the repeats, in ms.
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastgmm._kernels._dispatch import available_variants, em_pass, use_variant
from fastgmm._kernels._suffstats import stat_size
from fastgmm._parameters import KernelParams, compute_precision_cholesky, n_slots_for

CASES = {
    # name: (n_samples, n_features, n_components, covariance_type)
    "blobs2d": (1_000_000, 2, 3, "full"),     # the fused small-D kernel
    "mid": (200_000, 16, 16, "full"),
    "speech": (500_000, 39, 64, "diag"),
    "wide": (50_000, 128, 32, "full"),        # BLAS: compare blas_roofline.py
}


def make_case(N, D, K, covariance_type, rng):
    means = rng.normal(scale=3.0, size=(K, D))
    X = means[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    weights = np.full(K, 1.0 / K)
    if covariance_type == "full":
        cov = np.broadcast_to(np.eye(D), (K, D, D)).copy()
    else:
        cov = np.ones((K, D))
    chol = compute_precision_cholesky(cov, covariance_type)
    return X, KernelParams(weights, means, chol, covariance_type, X.dtype)


def time_pass(X, kp, covariance_type, K, threads, repeats):
    N, D = X.shape
    stats = np.zeros((n_slots_for(N, covariance_type, K, D), stat_size(kp.code, K, D)))
    no_weights, no_resp = np.empty(0), np.empty((0, K), X.dtype)
    times = []
    for _ in range(repeats + 1):  # the first call warms caches and threads
        stats[:] = 0
        start = time.perf_counter()
        em_pass(X, no_weights, *kp.args(), no_resp, kp.code, stats, threads)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with threadpool_limits(1, user_api="blas"):
        for name in args.cases.split(","):
            N, D, K, covariance_type = CASES[name]
            X, kp = make_case(N, D, K, covariance_type, rng)
            for variant in available_variants():
                with use_variant(variant):
                    seconds = time_pass(X, kp, covariance_type, K, args.threads, args.repeats)
                print(f"{name:7s} {N}x{D} K={K} {covariance_type:5s} {variant:10s} "
                      f"{1e3 * seconds:8.1f} ms/pass ({args.threads} thread(s), "
                      f"median of {args.repeats})")


if __name__ == "__main__":
    main()
