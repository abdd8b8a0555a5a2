"""Data and fixed-work initial parameters shared by the asv suite and compare.py.

Everything here is deterministic: the same (N, D, K, dtype) always gives the
same X and the same initial parameters, so fastgmm and scikit-learn (and two
commits of fastgmm) are always timed on identical work.
"""

import numpy as np

# Rows generated per step. The data are built in blocks so that building X
# never holds more than X itself plus a few MB: compare.py measures the peak
# memory *added* by a fit, and temporaries left from building X would
# otherwise hide it (see compare.py, "Peak memory").
_BLOCK_ROWS = 65536

# Fixed-point step of the initial weights: multiples of 2**-20 are exact in
# float32 and float64 and so are all their partial sums, hence sum == 1.0
# exactly in either dtype, in any summation order (both estimators check it).
_WEIGHT_QUANTUM = 2**20


def make_blobs(n_samples, n_features, n_components, dtype="float64", seed=0):
    """K Gaussian blobs, exactly::

        rng = numpy.random.default_rng(seed)
        centers = rng.normal(scale=5, size=(K, D))
        X = centers[rng.integers(K, size=N)] + rng.normal(size=(N, D))

    then cast to `dtype`. Generator.normal draws the same stream whether it
    is asked for all rows at once or block by block (no cached deviates), so
    the blocked build below gives bitwise the X of the one-liner, without
    its three N x D float64 temporaries.

    Returns (X, rng): the generator, positioned after the data, draws the
    initial means (see `initial_means`).
    """
    N, D, K = int(n_samples), int(n_features), int(n_components)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(K, D))
    labels = rng.integers(K, size=N)
    X = np.empty((N, D), dtype=dtype)
    for start in range(0, N, _BLOCK_ROWS):
        stop = min(N, start + _BLOCK_ROWS)
        X[start:stop] = centers[labels[start:stop]] + rng.normal(size=(stop - start, D))
    return X, rng


def initial_means(X, n_components, rng):
    """K distinct random rows of X (in X's dtype)."""
    rows = rng.choice(X.shape[0], size=n_components, replace=False)
    return X[np.sort(rows)].copy()


def initial_weights(n_components, dtype):
    """Near-uniform weights in `dtype` whose sum is exactly 1 (see _WEIGHT_QUANTUM)."""
    K = n_components
    units = np.full(K, _WEIGHT_QUANTUM // K, dtype=np.int64)
    units[-1] = _WEIGHT_QUANTUM - units[:-1].sum()
    return (units / _WEIGHT_QUANTUM).astype(dtype)


def initial_precisions(covariance_type, n_components, n_features, dtype):
    """Identity precisions, shaped for `covariance_type`.

    The blobs have unit within-cluster noise, so the identity is the right
    scale and EM starts (and stays) well conditioned for any fixed number of
    iterations.
    """
    K, D = n_components, n_features
    if covariance_type == "full":
        return np.broadcast_to(np.eye(D, dtype=dtype), (K, D, D)).copy()
    if covariance_type == "tied":
        return np.eye(D, dtype=dtype)
    if covariance_type == "diag":
        return np.ones((K, D), dtype=dtype)
    if covariance_type == "spherical":
        return np.ones(K, dtype=dtype)
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def fixed_work_params(X, n_components, covariance_type, rng, max_iter):
    """GaussianMixture keyword arguments for a fit that does fixed work.

    - weights_init, means_init and precisions_init are all given (in X's
      dtype, so scikit-learn's float32 run is not promoted to float64 by a
      float64 initial parameter), so fastgmm skips its initialisation pass;
    - init_params='random_from_data' because scikit-learn runs its init_params
      method even when all three are given (its result is then overwritten):
      this is its cheapest method (no k-means) and keeps the fixed part of a
      fit small and steady;
    - tol=0 so that exactly `max_iter` EM iterations run; random_state=0.
    """
    D = X.shape[1]
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=max_iter,
        init_params="random_from_data",
        weights_init=initial_weights(n_components, X.dtype),
        means_init=initial_means(X, n_components, rng),
        precisions_init=initial_precisions(covariance_type, n_components, D, X.dtype),
        random_state=0,
    )
