"""The installed native core: OpenMP present, configuration reported."""

import io

import fastgmm
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
