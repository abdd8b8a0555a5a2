"""What the CPU running this process can execute, for choosing the kernels.

Built for the compiler's baseline whatever FASTGMM_ARCH says: this check
runs before anything else is known about the CPU.
"""

cdef extern from "_cpu_features.h":
    int fastgmm_cpu_x86_64_v3() noexcept nogil


def supports_x86_64_v3():
    """True when the CPU and OS run x86-64-v3 code (AVX2, FMA, BMI1/2, ...)."""
    return bool(fastgmm_cpu_x86_64_v3())
