"""Threads for the native passes, and BLAS kept single-threaded around them.

The full and tied kernels call BLAS (gemm, trmm, syrk) from inside their
OpenMP threads; a multithreaded BLAS would start its own threads on top of
ours and oversubscribe the cores (measured: score_samples 30x slower on 2
cores), and an idle BLAS pool woken by the M-step's small factorisations
spins on the cores the kernels need. threadpoolctl's `threadpool_limits`
rescans the loaded libraries on every call (~10 ms), so one controller is
created on first use and reused (~0.1 ms a call).
"""

from threadpoolctl import ThreadpoolController

from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads
from fastgmm._kernels._suffstats import CHUNK_ROWS

# Below this many rows per thread, waking a thread costs more than it saves
# (and on small data it contends with the threads KMeans just used).
MIN_ROWS_PER_THREAD = 4 * CHUNK_ROWS

_controller = None


def n_threads_for(n_samples):
    """Threads for a pass over n_samples rows: the OpenMP limit, fewer on small data.

    The result of a pass never depends on this number (see _suffstats.pyx).
    """
    return max(1, min(openmp_effective_n_threads(), n_samples // MIN_ROWS_PER_THREAD))


def blas_single_threaded():
    """Context manager limiting BLAS to one thread.

    Needed wherever the kernels call BLAS from their OpenMP threads, and
    worth it around every fit: an idle OpenBLAS pool woken by the M-step's
    tiny factorisations spins on the cores our threads need (measured:
    1M x 2 x 3 full at 36 ms an iteration on 2 threads against 23 ms on one).
    """
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (the BLAS the kernels call is loaded)

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
