#!/usr/bin/env python
"""fastgmm's time per EM iteration on 1, 2, ... threads, measured in one process.

    python benchmarks/thread_scaling.py                         # mid and speech, 1 and all cores
    python benchmarks/thread_scaling.py --threads 1,2,4,8,12,16 --cases speech --markdown

The thread counts take turns within every repeat (in an order that reverses
from one repeat to the next), so a drift of the machine, or another process
taking a core for a while, hits every count alike; separate runs with
`compare.py --threads T` do not have that property. Each sample is the
estimator's time per EM iteration by difference, as in compare.py
((t(1 + m iterations) - t(1)) / m, same data, fixed initial parameters,
tol=0; see fastgmm/_bench.py). OpenMP and BLAS are limited to T threads with
threadpoolctl. Prints the median ms per iteration, the speed-up over the
first count and the parallel efficiency (speed-up / threads).
"""

import argparse
import os
import statistics
import sys
import warnings

from threadpoolctl import threadpool_limits

from fastgmm._bench import (CASES, fixed_work_params, format_table, import_everything, log,
                            machine_info, make_blobs, scaled_n_samples, timed)


def per_iteration_by_threads(X, kwargs, thread_counts, iters, repeats):
    """{threads: [seconds per EM iteration, one per repeat]}."""
    from fastgmm import GaussianMixture

    short = dict(kwargs, max_iter=1)
    long = dict(kwargs, max_iter=1 + iters)
    samples = {t: [] for t in thread_counts}
    for t in thread_counts:  # warm-up: thread pools, page faults
        with threadpool_limits(limits=t):
            GaussianMixture(**short).fit(X)
    for r in range(repeats):
        order = thread_counts if r % 2 == 0 else thread_counts[::-1]
        for t in order:
            with threadpool_limits(limits=t):
                t_short, _ = timed(lambda: GaussianMixture(**short).fit(X))
                t_long, _ = timed(lambda: GaussianMixture(**long).fit(X))
            samples[t].append((t_long - t_short) / iters)
    return samples


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="mid,speech",
                   help=f"comma-separated, from {', '.join(CASES)} (default: mid,speech)")
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default: 1 and every core)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--repeats", type=int, default=5, help="samples per count (median)")
    p.add_argument("--iters", type=int, default=3, help="m in the difference above")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every N by this")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.threads is None:
        thread_counts = sorted({1, os.cpu_count() or 1})
    else:
        try:
            thread_counts = [int(t) for t in args.threads.split(",")]
        except ValueError:
            p.error(f"--threads takes comma-separated integers, got {args.threads!r}")
        if not thread_counts or min(thread_counts) < 1:
            p.error("--threads: every count must be >= 1")
    if args.repeats < 3 or args.iters < 1 or args.scale <= 0:
        p.error("--repeats must be >= 3, --iters >= 1 and --scale > 0")

    warnings.simplefilter("ignore")  # tol=0 fits never "converge"
    import_everything()
    info = machine_info(max(thread_counts))
    log(f"fastgmm {info['fastgmm']} on {info['cpu']}, {os.cpu_count()} CPUs; "
        f"threads {thread_counts}")
    rows = []
    for name in cases:
        N0, D, K, cov = CASES[name]
        N = scaled_n_samples(N0, D, K, cov, args.scale)
        log(f"{name}: N={N} D={D} K={K} {cov} {args.dtype}")
        X, rng = make_blobs(N, D, K, args.dtype, seed=0)
        kwargs = fixed_work_params(X, K, cov, rng, max_iter=1)
        samples = per_iteration_by_threads(X, kwargs, thread_counts, args.iters, args.repeats)
        base = statistics.median(samples[thread_counts[0]])
        for t in thread_counts:
            median = statistics.median(samples[t])
            if base > 0 and median > 0:
                speedup = base / median
                ratio, efficiency = f"{speedup:.2f}x", f"{100 * speedup * thread_counts[0] / t:.0f}%"
            else:
                # A per-iteration time is a difference of two fits' times: on a
                # tiny case, noise can make it <= 0, and no ratio means anything.
                ratio = efficiency = "n/a"
            rows.append([name, N, D, K, cov, args.dtype, t, f"{1e3 * median:.1f}",
                         ratio, efficiency])
    headers = ["case", "N", "D", "K", "covariance", "dtype", "threads", "ms/it",
               f"speed-up vs {thread_counts[0]}", "efficiency"]
    print(f"- machine: {info['cpu']}, {os.cpu_count()} CPUs")
    print(f"- median of {args.repeats} samples of (t(max_iter={1 + args.iters}) - "
          f"t(max_iter=1)) / {args.iters}, thread counts alternating within each repeat")
    print()
    print(format_table(headers, rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
