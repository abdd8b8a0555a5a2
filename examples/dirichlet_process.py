"""Letting a Dirichlet process choose the number of components.

Draws data from four Gaussians, fits a BayesianGaussianMixture with room for
ten components (a Dirichlet-process prior on the weights) and counts the
components that keep a weight above 1%; beside it, picks the number of
components of a GaussianMixture by BIC over 1 to 10 with
fastgmm.select_model. One variational fit against ten EM fits: both find
four. The figure (dirichlet_process.png) shows the ten weights of the
Bayesian fit, its ellipses (the pruned components fade away) and BIC's.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastgmm.plot as gp
from fastgmm import BayesianGaussianMixture, select_model

rng = np.random.default_rng(1)
centres = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0], [7.0, 7.0]])
shapes = [np.array([[1.0, 0.6], [0.6, 1.0]]), np.array([[0.4, 0.0], [0.0, 1.6]]),
          np.array([[1.3, -0.5], [-0.5, 0.7]]), np.eye(2) * 0.6]
X = np.concatenate([rng.multivariate_normal(c, s, size=500) for c, s in zip(centres, shapes)])

dpgmm = BayesianGaussianMixture(
    n_components=10, weight_concentration_prior_type="dirichlet_process",
    weight_concentration_prior=0.01, max_iter=500, random_state=0,
).fit(X)
active = dpgmm.weights_ > 0.01
print("Dirichlet-process weights:", np.array2string(dpgmm.weights_, precision=3))
print(f"Dirichlet process: {active.sum()} of 10 components carry weight above 1% "
      f"({100 * dpgmm.weights_[active].sum():.1f}% of the mass; the data has 4 clusters)")

best, table = select_model(X, n_components=range(1, 11), covariance_types="full",
                           random_state=0)
print(f"BIC over 1..10 full-covariance GaussianMixtures picks {best.n_components} "
      "components")

fig, (bars, left, right) = plt.subplots(1, 3, figsize=(15, 4.5))
bars.bar(np.arange(10), dpgmm.weights_, color=["C0" if a else "0.7" for a in active])
bars.set_xticks(np.arange(10))
bars.set_xlabel("component")
bars.set_ylabel("weight")
bars.set_title("BayesianGaussianMixture, n_components=10")
gp.ellipses(dpgmm, X, ax=left)
left.set_title(f"Dirichlet process: {active.sum()} active components")
gp.ellipses(best, X, ax=right)
right.set_title(f"GaussianMixture chosen by BIC: K={best.n_components}")
fig.tight_layout()
fig.savefig("dirichlet_process.png", dpi=80)
print("wrote dirichlet_process.png")
