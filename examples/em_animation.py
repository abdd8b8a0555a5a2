"""EM at work: an animated GIF of the components moving from their start.

Three Gaussian blobs, a mixture started from random responsibilities
(init_params="random": every component begins near the centre of the
data, with its spread), and one frame per EM iteration: the
ellipses move and stretch, and each point's colour follows its
responsibilities (em_animation.gif). Prints the mean log-likelihood
along the way.
"""

import numpy as np

import fastgmm.plot as gp
from fastgmm import GaussianMixture

rng = np.random.default_rng(3)
X = np.concatenate([
    rng.multivariate_normal([0, 0], [[1.0, 0.6], [0.6, 1.0]], size=300),
    rng.multivariate_normal([5, 1], [[0.5, 0.0], [0.0, 1.5]], size=300),
    rng.multivariate_normal([2, 5], [[1.5, -0.4], [-0.4, 0.5]], size=300),
])
settings = dict(n_components=3, covariance_type="full", init_params="random",
                random_state=3, max_iter=60, tol=1e-5)
fig = gp.animate_em(X, "em_animation.gif", fps=5, dpi=60, max_points=600, **settings)

gmm = GaussianMixture(**settings).fit(X)        # the same fit the frames show
print(f"{gmm.n_iter_} EM iterations ({gmm.n_iter_ + 1} frames with the start), "
      f"converged={gmm.converged_}")
print("mean log-likelihood:", " ".join(f"{b:.3f}" for b in gmm.lower_bounds_[::5]), "...",
      f"{gmm.lower_bound_:.3f}")
print("means:", np.round(gmm.means_, 2).tolist())
print("wrote em_animation.gif")
