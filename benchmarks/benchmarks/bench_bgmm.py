"""asv benchmarks of fastgmm.BayesianGaussianMixture on fixed work.

The same blobs as bench_gmm.py (`common.make_blobs`, seed 0); every fit
starts from init_params='random_from_data' with random_state=0 (the same K
rows, the same initial posteriors) and runs exactly MAX_ITER variational
iterations (tol=0). A smaller grid than GaussianMixture's: the pass is the
same kernel; what is new is the variational M-step, the digamma terms and
the lower bound around it.
"""

import functools
import warnings

from sklearn.exceptions import ConvergenceWarning

from .common import bayesian_fixed_work_params, make_blobs

try:
    from fastgmm import BayesianGaussianMixture
except ImportError:  # a commit from before the Bayesian mixture
    BayesianGaussianMixture = None

MAX_ITER = 10


@functools.lru_cache(maxsize=1)
def _problem(n_samples, n_features, n_components, covariance_type, dtype):
    X, rng = make_blobs(n_samples, n_features, n_components, dtype, seed=0)
    X.flags.writeable = False
    kwargs = bayesian_fixed_work_params(X, n_components, covariance_type, rng, MAX_ITER)
    return X, kwargs


class _BGMMBenchmark:
    params = (
        [50_000],                                    # n_samples
        [4, 32],                                     # n_features
        [16],                                        # n_components
        ["full", "diag"],                            # covariance_type
        ["float64", "float32"],                      # dtype
    )
    param_names = ["n_samples", "n_features", "n_components", "covariance_type", "dtype"]
    timeout = 600

    def setup(self, n_samples, n_features, n_components, covariance_type, dtype):
        if BayesianGaussianMixture is None or bayesian_fixed_work_params is None:
            raise NotImplementedError("no BayesianGaussianMixture at this commit")
        warnings.simplefilter("ignore", ConvergenceWarning)
        self.X, self.kwargs = _problem(
            n_samples, n_features, n_components, covariance_type, dtype
        )


class BayesianFit(_BGMMBenchmark):
    """A whole fixed-work variational fit: priors, initialisation, MAX_ITER iterations."""

    def time_fit(self, *params):
        BayesianGaussianMixture(**self.kwargs).fit(self.X)

    def peakmem_fit(self, *params):
        BayesianGaussianMixture(**self.kwargs).fit(self.X)

    def track_lower_bound(self, *params):
        return BayesianGaussianMixture(**self.kwargs).fit(self.X).lower_bound_

    track_lower_bound.unit = "lower bound"


class BayesianIteration(_BGMMBenchmark):
    """One variational iteration per call (a warm-started fit with max_iter=1)."""

    def setup(self, *params):
        super().setup(*params)
        self.model = BayesianGaussianMixture(**dict(self.kwargs, max_iter=1, warm_start=True))
        self.model.fit(self.X)

    def time_iteration(self, *params):
        self.model.fit(self.X)
