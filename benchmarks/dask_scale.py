#!/usr/bin/env python
"""EM on a Dask array on a LocalCluster against the in-memory fit of the same data.

    python benchmarks/dask_scale.py                      # 20M x 16 float32, K=16, diag and full
    python benchmarks/dask_scale.py --n-samples 2000000  # a quicker check

Method
------
Data: ``da.random.default_rng(0).standard_normal((N, D), chunks=(chunk_rows, D),
dtype=float32)``, generated lazily: nothing exists until a task computes a
block, and a lazy fit regenerates every block on every pass (the worst case
for Dask: generation is part of each iteration's cost).

Cluster: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``
on this machine; the in-memory fit runs in the client process on the same
2 cores (OpenMP, 2 threads), while the workers sit idle.

Start: every fit starts from the same parameters (as benchmarks/compare.py):
weights 1/K, the first K rows of X as means, identity precisions, tol=0.

Time per EM iteration: the fit's callback records a time stamp after each
iteration; a fit runs 1 + R iterations and the median of the last R gaps
is reported (the first gap also holds the set-up: validation pass, etc.).
Three variants:
  lazy        the Dask array as generated: every iteration regenerates the data;
  persisted   X.persist() first: the blocks stay in the workers' memory;
  in-memory   X materialised with .compute() and fitted with numpy input.
The generation alone (one pass computing X.sum(axis=0)) is timed too.

Worker memory: the peak resident set of each worker process
(getrusage ru_maxrss) after the lazy fits, against the chunk size; the
persisted variant runs after it (it holds the data by design).
"""

import argparse
import resource
import warnings
import statistics
import sys
import time

import numpy as np


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_fit(estimator_factory, X, init, repeats):
    """Median seconds of the last `repeats` of 1 + repeats EM iterations, and the fit."""
    stamps = []
    gm = estimator_factory(max_iter=1 + repeats, **init)
    start = time.perf_counter()
    gm.fit(X, callback=lambda info: stamps.append(time.perf_counter()))
    gaps = np.diff([start] + stamps)
    return float(statistics.median(gaps[1:])), gm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=20_000_000)
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--covariance-types", default="diag,full")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Best performing initialization")

    import dask.array as da
    from distributed import Client, LocalCluster, wait

    from fastgmm import GaussianMixture

    N, D, K = args.n_samples, args.n_features, args.n_components
    X = da.random.default_rng(0).standard_normal((N, D), chunks=(args.chunk_rows, D),
                                                 dtype=np.float32)
    chunk_mib = args.chunk_rows * D * 4 / 2**20
    print(f"# {N} x {D} float32 ({N * D * 4 / 2**30:.2f} GiB), K={K}, "
          f"{X.numblocks[0]} blocks of {args.chunk_rows} rows ({chunk_mib:.0f} MiB)",
          file=sys.stderr)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        client.run(lambda: __import__("fastgmm._dask"))
        base_rss = client.run(peak_rss_mib)
        t = time.perf_counter()
        X.sum(axis=0).compute()
        generation = time.perf_counter() - t

        covariance_types = args.covariance_types.split(",")
        first_rows = X[:K].compute().astype(np.float64)
        inits = {
            cov: dict(weights_init=np.full(K, 1.0 / K), means_init=first_rows,
                      precisions_init=np.stack([np.eye(D)] * K) if cov == "full"
                      else np.ones((K, D)))
            for cov in covariance_types
        }

        def factory(covariance_type):
            return lambda **kw: GaussianMixture(K, covariance_type=covariance_type, tol=0,
                                                random_state=0, **kw)

        rows, fits = [], {}
        for cov in covariance_types:
            seconds, fits[cov] = timed_fit(factory(cov), X, inits[cov], args.repeats)
            rows.append([cov, "lazy", seconds])
        worker_rss = client.run(peak_rss_mib)

        Xp = X.persist()
        wait(Xp)
        for cov in covariance_types:
            seconds, _ = timed_fit(factory(cov), Xp, inits[cov], args.repeats)
            rows.append([cov, "persisted", seconds])
        del Xp
        X_local = X.compute()
        for cov in covariance_types:
            seconds, memory_fit = timed_fit(factory(cov), X_local, inits[cov], args.repeats)
            rows.append([cov, "in-memory", seconds])
            diff = abs(memory_fit.lower_bound_ - fits[cov].lower_bound_)
            print(f"# {cov}: |lower bound (in-memory) - lower bound (Dask)| = {diff:.2e}",
                  file=sys.stderr)

    print(f"data generation alone (one pass, 2 workers): {generation:.2f} s")
    print("worker peak RSS after the lazy fits (MiB): "
          + ", ".join(f"{v:.0f}" for v in worker_rss.values())
          + " (at start: " + ", ".join(f"{v:.0f}" for v in base_rss.values())
          + f"); chunk {chunk_mib:.0f} MiB")
    print()
    print("| covariance | variant | s / iteration | ns / row | vs in-memory |")
    print("|---|---|---:|---:|---:|")
    for cov in covariance_types:
        memory = next(r[2] for r in rows if r[0] == cov and r[1] == "in-memory")
        for name, variant, seconds in rows:
            if name == cov:
                print(f"| {name} | {variant} | {seconds:.2f} | {seconds / N * 1e9:.0f} | "
                      f"{seconds / memory:.2f}x |")


if __name__ == "__main__":
    main()
