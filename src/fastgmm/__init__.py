"""fastgmm: Gaussian mixture models on a Cython/OpenMP core.

A drop-in for ``sklearn.mixture.GaussianMixture``::

    from fastgmm import GaussianMixture
"""

from fastgmm._config import show_config
from fastgmm._gaussian_mixture import GaussianMixture, IterationInfo
from fastgmm._io import ModelFileError, load, save
from fastgmm._progress import ProgressBar
from fastgmm._reliability import ComponentRecoveryWarning, LargeMemoryWarning
from fastgmm._selection import ModelSelection, SelectionTable, select_model
from fastgmm._version import __version__

__all__ = [
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
