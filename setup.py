"""Build the native core of fastgmm.

The metadata lives in pyproject.toml; this file only describes the Cython
extensions: it probes the compiler for OpenMP (building serially, with a
warning, where there is none) and sets the Cython directives once for the
whole build. FASTGMM_DEBUG_CHECKS=1 turns bounds, wraparound and
initialisation checks back on for debugging.
"""

import os
import sys
import tempfile
import textwrap
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["_openmp_helpers", "_suffstats", "_estep"]

OPENMP_TEST_PROGRAM = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0);
        return 0;
    }
    """
)


def _openmp_flags(compiler_type):
    """Compile and link flags that enable OpenMP for this compiler family."""
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang needs libomp (e.g. from Homebrew); CPPFLAGS/LDFLAGS point to it.
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def _compiler_has_openmp(compiler, compile_flags, link_flags):
    """Try to build and link a tiny OpenMP program with the real build compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "test_openmp.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST_PROGRAM)
        try:
            objects = compiler.compile(
                [source], output_dir=tmp, extra_postargs=compile_flags
            )
            compiler.link_executable(
                objects, "test_openmp", output_dir=tmp, extra_postargs=link_flags
            )
        except Exception:  # any compile or link failure means "no OpenMP"
            return False
    return True


class BuildExtWithOpenMP(build_ext):
    """build_ext that adds the OpenMP flags when the compiler supports them."""

    def build_extensions(self):
        compile_flags, link_flags = _openmp_flags(self.compiler.compiler_type)
        if os.environ.get("FASTGMM_NO_OPENMP") == "1":
            has_openmp = False
        else:
            has_openmp = _compiler_has_openmp(self.compiler, compile_flags, link_flags)
        if not has_openmp:
            warnings.warn(
                "fastgmm: the compiler does not support OpenMP; building the "
                "native core without it. Fits will run on a single thread. "
                "Install an OpenMP runtime (libgomp, libomp) to fix this.",
                stacklevel=1,
            )
        for ext in self.extensions:
            if has_openmp:
                ext.extra_compile_args += compile_flags
                ext.extra_link_args += link_flags
            if self.compiler.compiler_type != "msvc":
                ext.extra_compile_args += ["-O3"]
        super().build_extensions()


def _extensions():
    debug_checks = os.environ.get("FASTGMM_DEBUG_CHECKS") == "1"
    directives = {
        "language_level": 3,
        "boundscheck": debug_checks,
        "wraparound": debug_checks,
        "initializedcheck": debug_checks,
        "cdivision": not debug_checks,
        "nonecheck": debug_checks,
        "embedsignature": True,
    }
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
    extensions = [
        Extension(
            f"fastgmm._kernels.{name}",
            [f"src/fastgmm/_kernels/{name}.pyx"],
            define_macros=macros,
        )
        for name in KERNELS
    ]
    return cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["src"],
        compile_time_env={},
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
