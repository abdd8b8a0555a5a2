"""Stars, galaxies and quasars from four colours and one shape measurement.

A sky survey measures every object's brightness in five filters (u, g, r,
i, z, as the Sloan Digital Sky Survey does) and how extended it is. This
example simulates such a catalogue with realistic shapes in feature space
and classifies it with a mixture:

- stars lie along the curved stellar locus (hot blue stars to cool red M
  dwarfs, whose r-i rises steeply), and are point sources;
- quasars are point sources, most with an ultraviolet excess (blue u-g),
  some at redshifts whose colours approach the blue end of the locus;
- galaxies are extended (a few of them compact), in a red sequence and a
  broader blue cloud.

Features: the colours u-g, g-r, r-i, i-z and the concentration
psfMag - modelMag (0 for point sources, larger for extended ones), with
photometric errors that grow towards the survey's faint limit, so faint
stars and compact galaxies mix. A ten-component full-covariance mixture is
fitted to all objects without their classes. A labelled subset (the objects
with spectra, here 10%) then gives each component its mix of classes,
P(class | component), and every object gets the class with the highest
sum_k P(component k | object) P(class | k). Prints the components with
their classes, the accuracy per class on the objects without labels, and
draws the u-g / g-r colour-colour diagram with the fitted components beside
the predicted classes against u-g and the concentration
(star_galaxy_quasar.png).
"""

import matplotlib.pyplot as plt
import numpy as np

import fastgmm.plot as gp
from fastgmm import GaussianMixture

CLASSES = ["star", "galaxy", "quasar"]
FEATURES = ["u-g", "g-r", "r-i", "i-z", "psf-model"]
rng = np.random.default_rng(1)


def stars(n):
    """The stellar locus: four colours as smooth functions of temperature."""
    t = rng.beta(2.0, 2.5, size=n)                  # 0: hot F stars, 1: cool M dwarfs
    g_r = 0.2 + 1.25 * t
    u_g = 0.8 + 2.1 * t - 0.6 * t ** 2
    r_i = 0.05 + 0.3 * t + 1.4 * t ** 5             # M dwarfs turn sharply red in r-i
    i_z = 0.5 * r_i
    return np.column_stack([u_g, g_r, r_i, i_z, np.zeros(n)])


def galaxies(n):
    """A red sequence and a blue cloud of extended objects, some of them compact."""
    red = rng.random(n) < 0.4
    means = np.where(red[:, None], [1.8, 0.80, 0.42, 0.32], [1.25, 0.45, 0.28, 0.18])
    spread = np.where(red[:, None], [0.15, 0.06, 0.05, 0.06], [0.25, 0.12, 0.09, 0.10])
    colours = means + spread * rng.normal(size=(n, 4))
    colours[:, 1] += 0.3 * (colours[:, 0] - means[:, 0])  # u-g and g-r redden together
    concentration = rng.lognormal(np.log(0.3), 0.8, size=n)
    return np.column_stack([colours, concentration])


def quasars(n):
    """Point sources: most with an ultraviolet excess, a fifth at redshifts whose
    colours approach the blue end of the stellar locus."""
    cov = np.array([[0.030, 0.010, 0.000, 0.000],
                    [0.010, 0.020, 0.005, 0.000],
                    [0.000, 0.005, 0.015, 0.004],
                    [0.000, 0.000, 0.004, 0.015]])
    uvx = rng.random(n) < 0.8
    colours = np.where(uvx[:, None], [0.2, 0.15, 0.15, 0.05], [0.75, 0.25, 0.1, 0.05])
    colours = colours + rng.multivariate_normal(np.zeros(4), cov, size=n)
    concentration = np.zeros(n)
    return np.column_stack([colours, concentration])


def measured(true_features):
    """Add photometric errors, growing towards the faint limit (r = 22)."""
    n = len(true_features)
    r = np.clip(22 - rng.exponential(1.5, size=n), 16, 22)
    faint = 10 ** (0.4 * (r - 22))                  # 1 at the limit, 0.004 at r = 16
    sigma = np.column_stack([0.03 + 0.30 * faint, 0.02 + 0.06 * faint, 0.02 + 0.06 * faint,
                             0.02 + 0.10 * faint, 0.02 + 0.10 * faint])
    return true_features + sigma * rng.normal(size=(n, 5))


counts = {"star": 5000, "galaxy": 4000, "quasar": 1000}
X = measured(np.concatenate([stars(counts["star"]), galaxies(counts["galaxy"]),
                             quasars(counts["quasar"])]))
truth = np.repeat(np.arange(3), list(counts.values()))

# A few components per class: the curved stellar locus alone takes several.
gmm = GaussianMixture(n_components=10, covariance_type="full", n_init=2, random_state=0)
proba = gmm.fit(X).predict_proba(X)
print(f"{len(X)} objects x {X.shape[1]} features ({', '.join(FEATURES)}); "
      f"{gmm.n_components} full components, {gmm.n_iter_} EM iterations, "
      f"converged={gmm.converged_}")

# The labelled subset gives each component its mix of classes, P(class | component);
# an object's class probabilities are then sum_k P(component k | x) P(class | k).
labelled = rng.random(len(X)) < 0.10
votes = proba[labelled].T @ np.eye(3)[truth[labelled]]      # soft counts, K x classes
class_given_component = (votes + 0.5) / (votes + 0.5).sum(axis=1, keepdims=True)
class_proba = proba @ class_given_component
predicted = class_proba.argmax(axis=1)
print(f"components and their classes among the {labelled.sum()} labelled objects:")
for k in np.lexsort((-gmm.weights_, class_given_component.argmax(axis=1))):
    mix = ", ".join(f"{name} {p:.0%}" for name, p in zip(CLASSES, class_given_component[k]))
    means = " ".join(f"{m:+.2f}" for m in gmm.means_[k])
    print(f"  weight {gmm.weights_[k]:.3f}  mean ({means})  {mix}")

unlabelled = ~labelled
accuracy = {name: np.mean(predicted[unlabelled & (truth == c)] == c)
            for c, name in enumerate(CLASSES)}
overall = np.mean(predicted[unlabelled] == truth[unlabelled])
print("accuracy per class (unlabelled objects): "
      + ", ".join(f"{name} {accuracy[name]:.3f}" for name in CLASSES))
print(f"accuracy on the unlabelled objects: {overall:.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
class_colors = ["0.3", "tab:orange", "tab:blue"]
shown = np.sort(rng.choice(len(X), size=3000, replace=False))
for ax, classes, y in ((left, truth, 1), (right, predicted, 4)):
    for c, name in enumerate(["stars", "galaxies", "quasars"]):
        rows = shown[classes[shown] == c]
        ax.scatter(X[rows, 0], X[rows, y], s=5, color=class_colors[c], alpha=0.7,
                   linewidths=0, label=name, zorder=3)
gp.ellipses(gmm, features=(0, 1), n_std=(1, 2), ax=left)     # the components, no points
left.set_title("colour-colour diagram: true classes, components at 1 and 2 std",
               fontsize=10)
wrong = shown[(predicted[shown] != truth[shown]) & unlabelled[shown]]
right.scatter(X[wrong, 0], X[wrong, 4], s=18, facecolors="none", edgecolors="red",
              linewidths=0.6, label="misclassified", zorder=4)
right.set_ylim(-0.3, 1.5)
right.set_title(f"predicted classes; point sources have psf-model near 0\n(accuracy: stars "
                f"{accuracy['star']:.0%}, galaxies {accuracy['galaxy']:.0%}, "
                f"quasars {accuracy['quasar']:.0%})", fontsize=10)
for ax, y in ((left, 1), (right, 4)):
    ax.set_xlabel("u-g")
    ax.set_ylabel(FEATURES[y])
    ax.legend(loc="upper left", fontsize=8, markerscale=2)
fig.tight_layout()
fig.savefig("star_galaxy_quasar.png", dpi=80)
print("wrote star_galaxy_quasar.png")
