"""Build the native core of fastgmm.

The metadata lives in pyproject.toml; this file only describes the Cython
extensions: it probes the compiler for OpenMP (building serially, with a
warning, where there is none) and sets the Cython directives once for the
whole build. FASTGMM_DEBUG_CHECKS=1 turns bounds, wraparound and
initialisation checks back on for debugging.

FASTGMM_ARCH chooses the instruction set of the kernels: "native" (the
default: the CPU doing the build, e.g. AVX2/AVX-512, which the vectorised
loops need to be fast), "none" (the compiler's portable baseline, for
binaries that must run on any CPU of the architecture), or any value of
-march (e.g. "x86-64-v3"). An unsupported value falls back to the baseline
with a warning.
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


def _compiler_accepts(compiler, program, compile_flags, link_flags):
    """Try to build and link `program` with the real build compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(program)
        try:
            objects = compiler.compile(
                [source], output_dir=tmp, extra_postargs=compile_flags
            )
            compiler.link_executable(
                objects, "probe", output_dir=tmp, extra_postargs=link_flags
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
            has_openmp = _compiler_accepts(
                self.compiler, OPENMP_TEST_PROGRAM, compile_flags, link_flags
            )
        if not has_openmp:
            warnings.warn(
                "fastgmm: the compiler does not support OpenMP; building the "
                "native core without it. Fits will run on a single thread. "
                "Install an OpenMP runtime (libgomp, libomp) to fix this.",
                stacklevel=1,
            )
        arch_flags, arch = self._arch_flags()
        for ext in self.extensions:
            if has_openmp:
                ext.extra_compile_args += compile_flags
                ext.extra_link_args += link_flags
            if self.compiler.compiler_type != "msvc":
                # -fno-math-errno lets sqrt inline; no result changes.
                ext.extra_compile_args += ["-O3", "-fno-math-errno"] + arch_flags
            ext.define_macros.append(("FASTGMM_BUILD_ARCH", f'"{arch}"'))
        super().build_extensions()

    def _arch_flags(self):
        arch = os.environ.get("FASTGMM_ARCH", "native").strip() or "none"
        if arch == "none" or self.compiler.compiler_type == "msvc":
            return [], "none"
        flags = [f"-march={arch}"]
        if _compiler_accepts(self.compiler, "int main(void){return 0;}", flags, []):
            return flags, arch
        warnings.warn(
            f"fastgmm: the compiler rejects -march={arch}; building for its baseline "
            "instruction set (slower kernels). Set FASTGMM_ARCH=none to silence this.",
            stacklevel=1,
        )
        return [], "none"


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
            include_dirs=["src/fastgmm/_kernels"],
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
