"""Choosing the number of components and the covariance type by BIC and AIC.

Draws data from four Gaussians with different shapes, fits every number
of components from 1 to 8 with each covariance type
(fastgmm.select_model), prints the table and the model BIC picks, and
draws both criteria against the number of components beside the chosen
model (choosing_k.png).
"""

import matplotlib.pyplot as plt
import numpy as np

import fastgmm.plot as gp
from fastgmm import select_model

rng = np.random.default_rng(0)
centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]])
shapes = [np.array([[1.0, 0.8], [0.8, 1.0]]), np.array([[0.3, 0.0], [0.0, 1.5]]),
          np.array([[1.2, -0.5], [-0.5, 0.6]]), np.eye(2) * 0.5]
X = np.concatenate([rng.multivariate_normal(c, s, size=400) for c, s in zip(centres, shapes)])

best, table = select_model(X, n_components=range(1, 9),
                           covariance_types=("full", "tied", "diag", "spherical"),
                           criterion="bic", random_state=0)
print(table)
aic_best = table[int(np.nanargmin(table["aic"]))]
print(f"BIC picks {best.n_components} components, {best.covariance_type} covariance "
      "(the data has 4 full-covariance components)")
print(f"AIC picks {aic_best['n_components']} components, {aic_best['covariance_type']} "
      "covariance")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
gp.criterion(table, ax=left)
gp.ellipses(best, X, ax=right)
fig.tight_layout()
fig.savefig("choosing_k.png", dpi=80)
print("wrote choosing_k.png")
