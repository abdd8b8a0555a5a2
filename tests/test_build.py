"""The installed native core: OpenMP present, configuration reported."""

import io
import os
import platform
import subprocess
import sys

import pytest

import fastgmm
from fastgmm._kernels._cpu import supports_x86_64_v3
from fastgmm._kernels._dispatch import ENV_VAR, active_variant, available_variants
from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads, openmp_enabled


def test_extension_built_with_openmp():
    # This machine's compiler has OpenMP: a serial build here is a packaging bug.
    assert openmp_enabled(), "fastgmm's native core was built without OpenMP"


def test_show_config_reports_version_openmp_threads_and_blas():
    out = io.StringIO()
    info = fastgmm.show_config(file=out)
    text = out.getvalue()
    assert info["fastgmm"] == fastgmm.__version__
    assert info["openmp"] is True
    assert info["threads"] == openmp_effective_n_threads() >= 1
    assert fastgmm.__version__ in text and "OpenMP: on" in text and "BLAS" in text
    assert info["blas"], "no BLAS library reported"
    # the default init's k-means is fastgmm's own, from the active kernel variant
    assert info["kmeans"].startswith("fastgmm._kernels._kmeans")
    assert f"k-means (default init): native, {info['kmeans']}" in text


def test_kernel_variant_reported_and_runnable():
    info = fastgmm.show_config(file=io.StringIO())
    assert info["kernels"] in info["kernel_variants"]
    assert info["kernels"] == active_variant()
    if os.environ.get(ENV_VAR, "auto") == "auto":
        # The first runnable variant (fastest) is the one chosen.
        assert info["kernels"] == info["kernel_variants"][0]


def _cpuinfo_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="/proc/cpuinfo cross-check: Linux x86-64 only",
)
def test_cpu_check_agrees_with_proc_cpuinfo():
    # The kernel's view of the x86-64-v3 features (usable ones only: the
    # kernel hides AVX when the OS does not save YMM state; "pni" is SSE3).
    flags = _cpuinfo_flags()
    v2 = {"pni", "ssse3", "cx16", "sse4_1", "sse4_2", "popcnt", "lahf_lm"}
    v3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    assert supports_x86_64_v3() == (v2 | v3 <= flags)


def _run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env},
        capture_output=True, text=True, timeout=300,
    )


def test_kernels_environment_variable_selects_each_variant():
    code = "import fastgmm, io; print(fastgmm.show_config(file=io.StringIO())['kernels'])"
    for name in available_variants():
        result = _run_python(code, **{ENV_VAR: name})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == name


@pytest.mark.parametrize("name", ["pentium-mmx", "baseline", "x86-64-v3"])
def test_kernels_environment_variable_naming_unbuilt_kernels_warns_and_imports(name):
    # The review: FASTGMM_KERNELS=baseline made `import fastgmm` raise on a
    # source install (built: native only). Import must work, warn, and
    # show_config() must say which kernels run.
    if name in available_variants():
        pytest.skip(f"{name} kernels are built and runnable here")
    code = ("import io, fastgmm; from fastgmm._kernels._dispatch import available_variants\n"
            "print(fastgmm.show_config(file=io.StringIO())['kernels'], available_variants()[0])")
    result = _run_python(code, **{ENV_VAR: name})
    assert result.returncode == 0, result.stderr
    running, fastest = result.stdout.split()
    assert running == fastest
    assert f"FASTGMM_KERNELS={name!r} names no kernels built" in result.stderr or (
        f"cannot run the {name} kernels" in result.stderr)
    assert f"Using the {running} kernels instead" in result.stderr
    assert "RuntimeWarning" in result.stderr
