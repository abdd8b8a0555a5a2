# The _kmeans kernels again, as their own module, which setup.py compiles
# with -march=x86-64-v3 (AVX2 + FMA) under FASTGMM_ARCH=dispatch; the
# variant is chosen at import by fastgmm._kernels._dispatch.
include "_kmeans.pyx"
