"""How many threads the native core will use, and whether it has OpenMP."""

from fastgmm._kernels._openmp cimport FASTGMM_HAS_OPENMP, omp_get_max_threads

cdef extern from *:
    """
    #ifndef FASTGMM_BUILD_ARCH
    #define FASTGMM_BUILD_ARCH "unknown"
    #endif
    """
    const char *FASTGMM_BUILD_ARCH


def build_arch():
    """The -march the kernels were compiled for ("none": the compiler's baseline)."""
    return FASTGMM_BUILD_ARCH.decode()


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(FASTGMM_HAS_OPENMP)


def openmp_effective_n_threads():
    """Threads a parallel kernel will use now.

    omp_get_max_threads() already honours OMP_NUM_THREADS and any limit set
    through threadpoolctl (which calls omp_set_num_threads on the runtime
    this extension is linked against).
    """
    return max(1, omp_get_max_threads())
