"""`python -m fastgmm`: fit a built-in example and print what was found.

Three Gaussian blobs with known labels; the fit's weights, means, accuracy
against the true labels (best matching of components to blobs) and time.
"""

import argparse
import itertools
import sys
import time

import numpy as np

from fastgmm import GaussianMixture, __version__
from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads, openmp_enabled


def make_blobs(n_samples=300_000, random_state=0):
    """Three 2-D Gaussian blobs with different shapes and weights."""
    rng = np.random.default_rng(random_state)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    covariances = np.array(
        [[[1.0, 0.6], [0.6, 1.5]], [[0.7, -0.3], [-0.3, 0.5]], [[2.0, 0.0], [0.0, 0.4]]]
    )
    labels = rng.choice(3, size=n_samples, p=weights)
    X = np.empty((n_samples, 2))
    for k in range(3):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covariances[k], size=rows.sum())
    return X, labels, (weights, means, covariances)


def matched_accuracy(true_labels, found_labels, n_components):
    """Accuracy under the best one-to-one matching of found components to true ones."""
    best = 0.0
    for perm in itertools.permutations(range(n_components)):
        best = max(best, np.mean(np.asarray(perm)[found_labels] == true_labels))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastgmm", description=__doc__)
    parser.add_argument("--n-samples", type=int, default=300_000)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    X, true_labels, (true_weights, true_means, _) = make_blobs(args.n_samples, args.random_state)
    print(f"fastgmm {__version__}: OpenMP {'on' if openmp_enabled() else 'off'}, "
          f"{openmp_effective_n_threads()} threads")
    print(f"data: {X.shape[0]:,} points in {X.shape[1]} dimensions from 3 Gaussian blobs")
    start = time.perf_counter()
    gmm = GaussianMixture(n_components=3, covariance_type="full",
                          random_state=args.random_state)
    labels = gmm.fit_predict(X)
    elapsed = time.perf_counter() - start
    order = np.argsort(gmm.means_[:, 0] + 10 * gmm.means_[:, 1])
    true_order = np.argsort(true_means[:, 0] + 10 * true_means[:, 1])
    print(f"fit: {elapsed:.3f} s, {gmm.n_iter_} EM iterations, converged={gmm.converged_}, "
          f"mean log-likelihood {gmm.lower_bound_:.4f}")
    print("component  weight (true)   mean (true)")
    for k, t in zip(order, true_order):
        mean = ", ".join(f"{v:6.3f}" for v in gmm.means_[k])
        tmean = ", ".join(f"{v:6.3f}" for v in true_means[t])
        print(f"    {k}      {gmm.weights_[k]:.3f} ({true_weights[t]:.3f})   "
              f"[{mean}] ([{tmean}])")
    accuracy = matched_accuracy(true_labels, labels, 3)
    print(f"accuracy against the true labels: {accuracy:.4f}")
    return 0 if accuracy > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
