"""Build the native core of fastgmm.

The metadata lives in pyproject.toml; this file only describes the Cython
extensions: it probes the compiler for OpenMP (building serially, with a
warning, where there is none) and sets the Cython directives once for the
whole build. FASTGMM_DEBUG_CHECKS=1 turns bounds, wraparound and
initialisation checks back on for debugging.

FASTGMM_ARCH chooses the instruction set of the kernels: "native" (the
default: the CPU doing the build, e.g. AVX2/AVX-512, which the vectorised
loops need to be fast), "none" (the compiler's portable baseline, for
binaries that must run on any CPU of the architecture), "dispatch" (for
wheels: the kernels built twice on x86-64, once for the baseline and once
for x86-64-v3 (AVX2 + FMA), the variant chosen at import from the CPU; see
src/fastgmm/_kernels/_dispatch.py), or any value of -march (e.g.
"x86-64-v2"). An unsupported value falls back to the baseline with a
warning.
"""

import os
import shlex
import sys
import sysconfig
import tempfile
import textwrap
import warnings

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HELPERS = ["_openmp_helpers", "_cpu", "_columns"]   # always built for the baseline
KERNELS = ["_suffstats", "_estep", "_kmeans"]      # built for FASTGMM_ARCH
# FASTGMM_ARCH=dispatch on x86-64 adds these variants, each built from a
# checked-in stub (`<kernel>_<suffix>.pyx`) that includes the kernel's source.
# (variant, module suffix, gcc/clang flags, MSVC flags)
X86_VARIANTS = [("x86-64-v3", "x86_64_v3", ["-march=x86-64-v3"], ["/arch:AVX2"])]
ROLES = {}  # extension name -> "helper", "kernel" or a variant's (name, flags, msvc flags)

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
    if compiler.compiler_type != "msvc":
        # distutils links executables without LDFLAGS (it adds them to shared
        # links only); without them a libomp outside the default paths (macOS)
        # would fail the probe while the real build would find it.
        link_flags = link_flags + shlex.split(os.environ.get("LDFLAGS", ""))
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
        msvc = self.compiler.compiler_type == "msvc"
        arch_flags, arch = self._arch_flags()
        for ext in list(self.extensions):
            role = ROLES[ext.name]
            if role == "helper":
                # Baseline code (the CPU check must run on any CPU); reports the
                # main kernels' arch (_openmp_helpers.build_arch).
                ext_flags, ext_arch = [], arch
            elif role == "kernel":
                ext_flags, ext_arch = arch_flags, arch
            else:  # a dispatch variant: (name, flags, msvc flags)
                ext_arch, gnu_flags, msvc_flags = role
                ext_flags = msvc_flags if msvc else gnu_flags
                if not _compiler_accepts(self.compiler, "int main(void){return 0;}",
                                         ext_flags, []):
                    warnings.warn(
                        f"fastgmm: the compiler rejects {' '.join(ext_flags)}; not "
                        f"building the {ext_arch} kernels (the baseline ones will run).",
                        stacklevel=1,
                    )
                    self.extensions.remove(ext)
                    continue
            if has_openmp:
                ext.extra_compile_args += compile_flags
                ext.extra_link_args += link_flags
            if not msvc:
                # -fno-math-errno lets sqrt inline; -fno-trapping-math lets GCC
                # turn a select (x < c ? a : b) into a blend: without it, and
                # without AVX-512's masked arithmetic, every loop calling the
                # kernels' exp stayed scalar (x86-64-v3 and the baseline). We
                # never unmask floating-point traps; no result changes (the
                # tests' bitwise checks across builds).
                ext.extra_compile_args += ["-O3", "-fno-math-errno", "-fno-trapping-math"]
                if role == "helper":
                    # _columns reproduces numpy's rounding step by step: no
                    # FMA contraction (clang and GCC contract by default on
                    # targets with FMA, e.g. arm64). MSVC does not contract
                    # unless told (/fp:contract).
                    ext.extra_compile_args += ["-ffp-contract=off"]
            ext.extra_compile_args += ext_flags
            ext.define_macros.append(("FASTGMM_BUILD_ARCH", f'"{ext_arch}"'))
        super().build_extensions()

    def _arch_flags(self):
        arch = _requested_arch()
        if arch in ("none", "dispatch") or self.compiler.compiler_type == "msvc":
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


def _requested_arch():
    return os.environ.get("FASTGMM_ARCH", "native").strip() or "none"


def _dispatch_variants():
    """The extra kernel variants to build: x86-64 targets under FASTGMM_ARCH=dispatch.

    The target platform, not the build machine's (cibuildwheel cross-builds
    macOS x86_64 on arm64 through _PYTHON_HOST_PLATFORM); universal2 is left
    to the baseline, since one -march cannot serve both architectures.
    """
    if _requested_arch() != "dispatch":
        return []
    platform = sysconfig.get_platform()
    if not platform.endswith(("x86_64", "amd64")):
        return []
    return X86_VARIANTS


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

    def extension(module, role):
        ext = Extension(
            f"fastgmm._kernels.{module}",
            [f"src/fastgmm/_kernels/{module}.pyx"],
            define_macros=list(macros),
            include_dirs=["src/fastgmm/_kernels"],
        )
        ROLES[ext.name] = role   # cythonize() copies extensions, not attributes
        return ext

    extensions = [extension(name, "helper") for name in HELPERS]
    extensions += [extension(name, "kernel") for name in KERNELS]
    for variant, suffix, gnu_flags, msvc_flags in _dispatch_variants():
        extensions += [
            extension(f"{name}_{suffix}", (variant, gnu_flags, msvc_flags))
            for name in KERNELS
        ]
    return cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["src"],
        compile_time_env={},
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
