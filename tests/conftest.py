import os

import numpy as np
import pytest


def make_mixture(n_samples=600, n_features=3, n_components=3, dtype=np.float64, seed=0, scale=5.0):
    """Data of the benchmarks' form: separated centres plus unit noise."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=scale, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    X = centers[labels] + rng.normal(size=(n_samples, n_features))
    return X.astype(dtype), labels


@pytest.fixture
def mixture():
    return make_mixture


@pytest.fixture
def umask_022():
    """The umask set to 0o022 for the test (file-mode tests of test_files and test_io)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# Property tests draw the same examples on every run by default, so CI does not
# go red on a case drawn for the first time; `pytest --hypothesis-profile=explore`
# draws new ones (what found the rounding-level eigenvalue case in test_properties).
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True)
_hypothesis_settings.register_profile("explore", derandomize=False)
_hypothesis_settings.load_profile("ci")
