"""Threads for the native passes, and BLAS kept single-threaded around them.

The full and tied kernels call BLAS (gemm, trmm, syrk) from inside their
OpenMP threads; a multithreaded BLAS would start its own threads on top of
ours and oversubscribe the cores (measured: score_samples 30x slower on 2
cores), and an idle BLAS pool woken by the M-step's small factorisations
spins on the cores the kernels need. threadpoolctl's `threadpool_limits`
rescans the loaded libraries on every call (~10 ms), so one controller is
created on first use and reused (~0.1 ms a call).
"""

import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads
from fastgmm._kernels._suffstats import CHUNK_ROWS

# Below this many rows per thread, waking a thread costs more than it saves
# (and on small data it contends with the threads KMeans just used).
MIN_ROWS_PER_THREAD = 4 * CHUNK_ROWS

_controller = None
_lock = threading.Lock()
_depth = 0            # threads (and nested calls) inside blas_single_threaded
_active_limit = None


def n_threads_for(n_samples):
    """Threads for a pass over n_samples rows: the OpenMP limit, fewer on small data.

    The result of a pass never depends on this number (see _suffstats.pyx).
    """
    return max(1, min(openmp_effective_n_threads(), n_samples // MIN_ROWS_PER_THREAD))


@contextmanager
def blas_single_threaded():
    """Context manager limiting BLAS to one thread, safe to enter from many
    Python threads at once (concurrent predict calls release the GIL).

    Needed wherever the kernels call BLAS from their OpenMP threads, and
    worth it around every fit: an idle OpenBLAS pool woken by the M-step's
    tiny factorisations spins on the cores our threads need (measured:
    1M x 2 x 3 full at 36 ms an iteration on 2 threads against 17 ms with
    the limit). The first thread in sets the limit and the last one out
    restores it, so interleaved exits cannot restore it out of order.
    """
    global _controller, _depth, _active_limit
    with _lock:
        if _controller is None:
            import scipy.linalg  # noqa: F401  (the BLAS the kernels call is loaded)

            _controller = ThreadpoolController()
        if _depth == 0:
            _active_limit = _controller.limit(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _active_limit.restore_original_limits()
                _active_limit = None
