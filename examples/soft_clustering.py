"""Soft clustering of two overlapping blobs.

Fits a two-component full-covariance mixture to two elongated Gaussian
blobs that overlap, compares the most probable component of each point
with the true blob (accuracy under the best matching of components to
blobs), counts the points the model is unsure about, and draws the
components' ellipses beside each point's responsibilities
(soft_clustering.png).
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment

import fastgmm.plot as gp
from fastgmm import GaussianMixture


def matched_accuracy(true_labels, found_labels):
    """Accuracy under the best one-to-one matching of found to true labels."""
    confusion = np.zeros((found_labels.max() + 1, true_labels.max() + 1))
    np.add.at(confusion, (found_labels, true_labels), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return confusion[rows, cols].sum() / len(true_labels)


rng = np.random.default_rng(0)
n_samples = 2000
true_labels = (rng.random(n_samples) < 0.4).astype(int)
means = np.array([[0.0, 0.0], [3.0, 1.5]])
covariances = np.array([[[2.0, 1.2], [1.2, 1.0]], [[1.0, -0.6], [-0.6, 1.5]]])
X = np.empty((n_samples, 2))
for k in range(2):
    rows = true_labels == k
    X[rows] = rng.multivariate_normal(means[k], covariances[k], size=rows.sum())

gmm = GaussianMixture(n_components=2, covariance_type="full", random_state=0).fit(X)
proba = gmm.predict_proba(X)
accuracy = matched_accuracy(true_labels, proba.argmax(axis=1))
unsure = np.mean(proba.max(axis=1) < 0.9)
print(f"fitted in {gmm.n_iter_} EM iterations, converged={gmm.converged_}")
print("weights, largest first:", np.round(np.sort(gmm.weights_)[::-1], 3), "(true: 0.6, 0.4)")
print("means:", np.round(gmm.means_, 2).tolist())
print(f"accuracy against the true blobs: {accuracy:.3f}")
print(f"points with no component above 90% responsibility: {unsure:.1%}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
gp.ellipses(gmm, X, ax=left)
gp.responsibilities(gmm, X, ax=right)
left.set_title(f"components at 1, 2, 3 std (accuracy {accuracy:.1%})")
right.set_title("responsibilities: blended colours where unsure")
fig.tight_layout()
fig.savefig("soft_clustering.png", dpi=80)
print("wrote soft_clustering.png")
