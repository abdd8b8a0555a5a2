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
