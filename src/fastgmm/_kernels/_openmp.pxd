# OpenMP shim: the real runtime where the extension was compiled with
# OpenMP, single-threaded stand-ins where it was not, so the kernels compile
# either way.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTGMM_HAS_OPENMP 1
    #else
    #define FASTGMM_HAS_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    bint FASTGMM_HAS_OPENMP
    int omp_get_max_threads() noexcept nogil
