"""fastgmm: Gaussian mixture models on a Cython/OpenMP core.

A drop-in for ``sklearn.mixture.GaussianMixture`` and
``sklearn.mixture.BayesianGaussianMixture``::

    from fastgmm import BayesianGaussianMixture, GaussianMixture
"""

from fastgmm._bayesian_mixture import BayesianGaussianMixture
from fastgmm._config import show_config
from fastgmm._gaussian_mixture import GaussianMixture, IterationInfo
from fastgmm._io import ModelFileError, load, save
from fastgmm._progress import ProgressBar
from fastgmm._reliability import ComponentRecoveryWarning, LargeMemoryWarning
from fastgmm._selection import ModelSelection, SelectionTable, select_model
from fastgmm._version import __version__

__all__ = [
    "BayesianGaussianMixture",
    "ComponentRecoveryWarning",
    "GaussianMixture",
    "IterationInfo",
    "LargeMemoryWarning",
    "ModelFileError",
    "ModelSelection",
    "ProgressBar",
    "SelectionTable",
    "__version__",
    "load",
    "save",
    "select_model",
    "show_config",
]
