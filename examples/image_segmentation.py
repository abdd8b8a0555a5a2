"""Segmenting a photo by pixel colour.

Fits an 8-component mixture to the RGB colours of a random subsample of
the pixels of a photo that scikit-learn ships (china.jpg), then labels
every pixel with its most probable component and paints it with that
component's mean colour: a segmentation into 8 colour regions. Writes the
photo and its segmentation side by side (image_segmentation.png).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image

from fastgmm import GaussianMixture

n_colours = 8
image = load_sample_image("china.jpg")          # (427, 640, 3) uint8
pixels = image.reshape(-1, 3).astype(np.float64) / 255.0

# The fit needs only a sample of the colours; labelling all pixels is one pass.
rng = np.random.default_rng(0)
sample = pixels[rng.choice(len(pixels), size=5000, replace=False)]
gmm = GaussianMixture(n_components=n_colours, covariance_type="full", random_state=0)
gmm.fit(sample)
labels = gmm.predict(pixels)
segmented = gmm.means_[labels].clip(0, 1).reshape(image.shape)

print(f"{len(pixels):,} pixels, fitted on a sample of {len(sample):,} "
      f"({gmm.n_iter_} EM iterations, converged={gmm.converged_})")
print("region  share of pixels  mean colour (RGB 0-255)")
shares = np.bincount(labels, minlength=n_colours) / len(labels)
for k in np.argsort(-shares):
    rgb = ", ".join(f"{v:3.0f}" for v in 255 * gmm.means_[k])
    print(f"  {k}        {shares[k]:6.1%}        ({rgb})")
error = np.sqrt(np.mean((segmented.reshape(-1, 3) - pixels) ** 2)) * 255
print(f"root mean square colour error of the segmentation: {error:.1f} / 255")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
left.imshow(image)
left.set_title("photo")
right.imshow(segmented)
right.set_title(f"{n_colours} colour regions (GMM on pixel colours)")
for ax in (left, right):
    ax.axis("off")
fig.tight_layout()
fig.savefig("image_segmentation.png", dpi=80)
print("wrote image_segmentation.png")
