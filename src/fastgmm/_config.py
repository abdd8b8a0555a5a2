"""What the installed native core was built with and will use."""

import sys
from typing import Any, TextIO

from threadpoolctl import threadpool_info

from fastgmm._kernels._dispatch import active_kmeans_module, active_variant, available_variants
from fastgmm._kernels._openmp_helpers import (
    build_arch,
    openmp_effective_n_threads,
    openmp_enabled,
)
from fastgmm._version import __version__


def config() -> dict[str, Any]:
    """The build and runtime configuration as a dict."""
    import numpy
    import scipy
    import sklearn
    import scipy.linalg  # noqa: F401  (loads the BLAS that the kernels call)

    pools = threadpool_info()
    blas = [p for p in pools if p.get("user_api") == "blas"]
    openmp = [p for p in pools if p.get("user_api") == "openmp"]
    return {
        "fastgmm": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "openmp": openmp_enabled(),
        "arch": build_arch(),
        "kernels": active_variant(),
        "kernel_variants": available_variants(),
        "kmeans": active_kmeans_module(),
        "threads": openmp_effective_n_threads(),
        "openmp_runtimes": [p.get("filepath") for p in openmp],
        "blas": [
            {
                "internal_api": p.get("internal_api"),
                "version": p.get("version"),
                "threading_layer": p.get("threading_layer"),
                "filepath": p.get("filepath"),
            }
            for p in blas
        ],
    }


def show_config(file: TextIO | None = None) -> dict[str, Any]:
    """Print the version, whether OpenMP is on, the kernels, threads and BLAS in use.

    Parameters
    ----------
    file : text stream, default=None
        Where to print; ``sys.stdout`` when None.

    Returns
    -------
    info : dict
        The same information: versions ("fastgmm", "python", "numpy",
        "scipy", "scikit-learn"), "openmp" (bool), "arch" (the -march of the
        main kernels), "kernels" (the variant in use) and "kernel_variants"
        (those this CPU can run, fastest first), "kmeans" (the native module
        that runs the default initialisation's k-means), "threads",
        "openmp_runtimes" and "blas".
    """
    info = config()
    out = file or sys.stdout
    print(f"fastgmm {info['fastgmm']} (python {info['python']}, numpy {info['numpy']}, "
          f"scipy {info['scipy']}, scikit-learn {info['scikit-learn']})", file=out)
    print(f"  OpenMP: {'on' if info['openmp'] else 'OFF (built without OpenMP: one thread)'}",
          file=out)
    others = [v for v in info["kernel_variants"] if v != info["kernels"]]
    print(f"  kernels: {info['kernels']}"
          + (f" (chosen for this CPU; also built: {', '.join(others)})" if others else ""),
          file=out)
    print(f"  k-means (default init): native, {info['kmeans']} (k-means++ and Lloyd, "
          "bitwise the same on any thread count)", file=out)
    print(f"  threads: {info['threads']} (OMP_NUM_THREADS / threadpoolctl limits apply)",
          file=out)
    for path in info["openmp_runtimes"]:
        print(f"  OpenMP runtime: {path}", file=out)
    for blas in info["blas"]:
        print(f"  BLAS: {blas['internal_api']} {blas['version']} "
              f"({blas['threading_layer']}) {blas['filepath']}", file=out)
    return info
