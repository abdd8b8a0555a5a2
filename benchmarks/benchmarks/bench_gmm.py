"""asv benchmarks of fastgmm.GaussianMixture on fixed work.

Every benchmark runs on blobs from `common.make_blobs` (seed 0) and starts
from the same given weights, means (K distinct rows of X) and identity
precisions, with tol=0 and random_state=0, so a fit always does exactly the
same EM iterations: timings of two commits differ only by the code.

The grid is deliberately small (16 combinations, `asv run --quick` takes a
few minutes on 2 cores). It covers the two code paths of the full kernel
(D <= 4: row-wise vectorised loops; larger D: BLAS gemm/syrk per chunk),
the four covariance types and both dtypes. compare.py has the large,
realistic cases.
"""

import functools
import warnings

from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

from .common import fixed_work_params, make_blobs

# EM iterations of a fixed-work fit (time_fit, peakmem_fit, track_lower_bound).
MAX_ITER = 10


@functools.lru_cache(maxsize=1)
def _problem(n_samples, n_features, n_components, covariance_type, dtype):
    """X and the fixed-work keyword arguments, built once per process.

    asv calls setup() before every repeat; caching keeps the (deterministic)
    data build out of the loop. X is made read-only so no benchmark can
    change what the next one sees.
    """
    X, rng = make_blobs(n_samples, n_features, n_components, dtype, seed=0)
    X.flags.writeable = False
    kwargs = fixed_work_params(X, n_components, covariance_type, rng, MAX_ITER)
    return X, kwargs


class _GMMBenchmark:
    params = (
        [50_000],                                    # n_samples
        [4, 32],                                     # n_features: row-wise path, BLAS path
        [16],                                        # n_components
        ["full", "tied", "diag", "spherical"],       # covariance_type
        ["float64", "float32"],                      # dtype
    )
    param_names = ["n_samples", "n_features", "n_components", "covariance_type", "dtype"]
    timeout = 600

    def setup(self, n_samples, n_features, n_components, covariance_type, dtype):
        # tol=0 means "never converged": silence the warning every fit raises.
        warnings.simplefilter("ignore", ConvergenceWarning)
        self.X, self.kwargs = _problem(
            n_samples, n_features, n_components, covariance_type, dtype
        )


class Fit(_GMMBenchmark):
    """A whole fixed-work fit: validation, MAX_ITER EM iterations, final labels."""

    def time_fit(self, *params):
        GaussianMixture(**self.kwargs).fit(self.X)

    def peakmem_fit(self, *params):
        # asv reports the peak RSS of the whole benchmark process: it
        # includes the interpreter, the imports and X; compare it between
        # commits, not as the fit's own footprint (compare.py measures that).
        GaussianMixture(**self.kwargs).fit(self.X)

    def track_lower_bound(self, *params):
        # The same work must give the same answer: a change here with no
        # change of algorithm is a numerical regression.
        return GaussianMixture(**self.kwargs).fit(self.X).lower_bound_

    track_lower_bound.unit = "mean log-likelihood"


class EMIteration(_GMMBenchmark):
    """One EM iteration per call, through the public API.

    A warm-started estimator with max_iter=1 does exactly one EM iteration
    per fit() from where the previous call left off (the work per iteration
    is the same whatever the parameters). Like any fit() it also validates X
    and runs one E-step for the returned labels, so this is one EM iteration
    plus about half an iteration of fixed cost; compare.py reports the pure
    per-iteration time by difference.
    """

    def setup(self, *params):
        super().setup(*params)
        self.model = GaussianMixture(**dict(self.kwargs, max_iter=1, warm_start=True))
        # The first fit starts from the given initial parameters; later ones
        # are the warm-started single iterations that are timed.
        self.model.fit(self.X)

    def time_em_iteration(self, *params):
        self.model.fit(self.X)


class PredictProba(_GMMBenchmark):
    """One E-step pass that returns the N x K responsibilities."""

    def setup(self, *params):
        super().setup(*params)
        self.model = GaussianMixture(**self.kwargs).fit(self.X)

    def time_predict_proba(self, *params):
        self.model.predict_proba(self.X)
