"""Data and fixed-work initial parameters shared by the asv suite, compare.py
and ``fastgmm bench``.

Everything here is deterministic: the same (N, D, K, dtype) always gives the
same X and the same initial parameters, so fastgmm and scikit-learn (and two
commits of fastgmm) are always timed on identical work.

The recipe lives in src/fastgmm/_bench.py. asv benchmarks older commits
too, whose installed fastgmm may not have that module, so it is loaded here
from this checkout's source file (it needs numpy only), not imported from
the installed package.
"""

import importlib.util
import os

_BENCH_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                             "src", "fastgmm", "_bench.py")
_spec = importlib.util.spec_from_file_location("_fastgmm_bench_recipe", _BENCH_SOURCE)
_recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_recipe)

make_blobs = _recipe.make_blobs
initial_means = _recipe.initial_means
initial_weights = _recipe.initial_weights
initial_precisions = _recipe.initial_precisions
fixed_work_params = _recipe.fixed_work_params
# Older checkouts of the recipe have no Bayesian mixture.
bayesian_fixed_work_params = getattr(_recipe, "bayesian_fixed_work_params", None)

__all__ = ["bayesian_fixed_work_params", "fixed_work_params", "initial_means", "initial_precisions", "initial_weights",
           "make_blobs"]
