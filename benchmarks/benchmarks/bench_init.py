"""asv benchmarks of the default initialisation: the k-means a default fit starts with.

`GaussianMixture(K, max_iter=0).fit(X)` runs the initialisation and stops
(no EM iteration), through the public API, so any commit can be timed: the
k-means (k-means++ seeding and Lloyd iterations), the statistics of its
labels and the first M-step. The data are `common.make_blobs` (seed 0) and
random_state is fixed, so every run does the same work. scikit-learn's
KMeans(n_init=1) runs alongside on the same data, the reference the k-means
stage is measured against (compare.py --kmeans has the full-size cases).
"""

import functools
import warnings

from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

from .common import make_blobs


@functools.lru_cache(maxsize=1)
def _data(n_samples, n_features, n_components, dtype):
    X, _ = make_blobs(n_samples, n_features, n_components, dtype, seed=0)
    X.flags.writeable = False
    return X


# compare.py's cases at 100,000 rows: (n_features, n_components)
SHAPES = {"blobs2d": (2, 3), "mid": (16, 16), "speech": (39, 64)}
N_SAMPLES = 100_000


class DefaultInit:
    """The default initialisation alone, fastgmm's and scikit-learn's KMeans."""

    params = (list(SHAPES), ["float64", "float32"])
    param_names = ["case", "dtype"]
    timeout = 600

    def setup(self, case, dtype):
        # max_iter=0 never converges: silence the warning every fit raises
        warnings.simplefilter("ignore", ConvergenceWarning)
        n_features, self.n_components = SHAPES[case]
        self.X = _data(N_SAMPLES, n_features, self.n_components, dtype)

    def time_default_init(self, *params):
        GaussianMixture(self.n_components, covariance_type="diag", max_iter=0,
                        random_state=0).fit(self.X)

    def peakmem_default_init(self, *params):
        # the whole process's peak RSS (interpreter, imports, X): compare
        # between commits; compare.py measures the fit's own footprint
        GaussianMixture(self.n_components, covariance_type="diag", max_iter=0,
                        random_state=0).fit(self.X)

    def time_sklearn_kmeans(self, *params):
        from sklearn.cluster import KMeans

        KMeans(n_clusters=self.n_components, n_init=1, random_state=0).fit(self.X)

    def track_kmeans_labels_equal_sklearn(self, *params):
        # 1 when fastgmm's k-means labels are scikit-learn's KMeans labels
        import numpy as np
        from sklearn.cluster import KMeans

        from fastgmm import _initialization

        ours, _ = _initialization.kmeans(self.X, self.n_components, np.random.RandomState(0))
        theirs = KMeans(n_clusters=self.n_components, n_init=1, random_state=0).fit(
            self.X).labels_
        return float(np.array_equal(ours, theirs))

    track_kmeans_labels_equal_sklearn.unit = "1 if equal"
