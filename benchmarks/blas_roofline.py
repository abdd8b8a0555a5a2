"""The BLAS calls of the full kernel for D > 96, timed alone: the roofline of
that path on this machine.

For every 256-row chunk and component the kernel multiplies the centred
chunk by the component's precision factor (trmm) and sums the
sqrt(r)-scaled centred chunk's Gram matrix (syrk); everything else it does
is a few passes over the chunk. This script makes the same calls, on the
same shapes, through scipy.linalg.blas on one thread, and prints their time
a pass beside the flop rate in the em_flops model, to hold against
`em_pass` (benchmarks/kernel_variants.py, or compare.py with --threads 1).

    python benchmarks/blas_roofline.py [--n-samples 50000] [--n-features 128] [--n-components 32]

Python calls each routine once a chunk and component (about 12,500 calls
for the default case), a few percent of the total.
"""

import argparse
import time

import numpy as np
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

CHUNK_ROWS = 256


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-samples", type=int, default=50_000)
    p.add_argument("--n-features", type=int, default=128)
    p.add_argument("--n-components", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    N, D, K = args.n_samples, args.n_features, args.n_components
    rng = np.random.default_rng(0)
    # A row-major chunk is a column-major D x 256 matrix: BLAS sees its transpose.
    chunk = np.asfortranarray(rng.normal(size=(CHUNK_ROWS, D)))
    factor = np.triu(rng.normal(size=(D, D))) + 5 * np.eye(D)
    n_chunks = -(-N // CHUNK_ROWS)

    def one_pass():
        for _ in range(n_chunks):
            for _ in range(K):
                blas.dtrmm(1.0, factor, chunk, side=1, lower=0)
                blas.dsyrk(1.0, chunk, trans=1, lower=1)

    with threadpool_limits(1, user_api="blas"):
        one_pass()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            one_pass()
            times.append(time.perf_counter() - start)
        a = np.asfortranarray(rng.normal(size=(2048, 2048)))
        start = time.perf_counter()
        blas.dgemm(1.0, a, a)
        gemm_rate = 2 * 2048**3 / (time.perf_counter() - start) / 1e9
    seconds = float(np.median(times))
    flops = N * K * (2 * D * D + 8 * D + 7)       # fastgmm._bench.em_flops, full
    print(f"{N} x {D}, K={K}: trmm + syrk alone {seconds * 1e3:.0f} ms a pass (median of "
          f"{args.repeats}), {flops / seconds / 1e9:.1f} GFLOP/s in the em_flops model; "
          f"dgemm {gemm_rate:.1f} GFLOP/s on one thread")


if __name__ == "__main__":
    main()
