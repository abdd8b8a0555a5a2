"""Speaker models: a universal background model and MAP-adapted speakers.

The classic GMM-UBM recipe of speaker verification (Reynolds, Quatieri &
Dunn 2000) on synthetic "MFCC-like" frames: 13 cepstral coefficients per
frame, drawn from phone-like classes shifted by each speaker's vocal
tract, smoothed over time, plus their deltas and delta-deltas (39
features). A 64-component diagonal-covariance mixture is fitted to
frames of 20 background speakers (the UBM); two target speakers get
their own models by adapting the UBM's means to a little of their speech
(MAP, relevance factor 16). Test utterances are scored by the average
log-likelihood per frame under each speaker model minus the UBM's.
Writes the scores (speaker_models.png).
"""

import copy

import matplotlib.pyplot as plt
import numpy as np

from fastgmm import GaussianMixture

rng = np.random.default_rng(0)
N_CEPSTRA, N_PHONES = 13, 24
scale = 3.0 / np.sqrt(1 + np.arange(N_CEPSTRA))            # higher coefficients vary less
phone_means = rng.normal(size=(N_PHONES, N_CEPSTRA)) * scale
phone_stds = rng.uniform(0.4, 0.8, size=(N_PHONES, N_CEPSTRA)) * scale


def new_speaker():
    """A speaker: a shift of every phone plus a small phone-specific accent."""
    return (rng.normal(size=N_CEPSTRA) * 0.6 * scale
            + rng.normal(size=(N_PHONES, N_CEPSTRA)) * 0.3 * scale)


def utterance(speaker, n_frames):
    """Frames of phones 4-12 frames long, smoothed over time, with deltas."""
    frames = np.empty((n_frames, N_CEPSTRA))
    t = 0
    while t < n_frames:
        phone, length = rng.integers(N_PHONES), rng.integers(4, 13)
        stop = min(t + length, n_frames)
        frames[t:stop] = (phone_means[phone] + speaker[phone]
                          + rng.normal(size=(stop - t, N_CEPSTRA)) * phone_stds[phone])
        t = stop
    for i in range(1, n_frames):                      # the articulators move smoothly
        frames[i] = 0.6 * frames[i] + 0.4 * frames[i - 1]
    delta = np.gradient(frames, axis=0)
    return np.hstack([frames, delta, np.gradient(delta, axis=0)])


# The UBM: 64 diagonal Gaussians over the frames of 20 background speakers.
background = np.vstack([utterance(new_speaker(), 1000) for _ in range(20)])
ubm = GaussianMixture(n_components=64, covariance_type="diag", max_iter=200,
                      random_state=0).fit(background)
print(f"UBM: {background.shape[0]:,} frames x {background.shape[1]} features, "
      f"64 diag components, {ubm.n_iter_} EM iterations, converged={ubm.converged_}")


def adapt(ubm, frames, relevance=16.0):
    """MAP adaptation of the UBM's means to a speaker's frames."""
    proba = ubm.predict_proba(frames)
    counts = proba.sum(axis=0)
    speaker_means = (proba.T @ frames) / np.maximum(counts, 1e-10)[:, None]
    alpha = (counts / (counts + relevance))[:, None]
    model = copy.deepcopy(ubm)
    model.means_ = alpha * speaker_means + (1 - alpha) * ubm.means_
    return model


speakers = {"A": new_speaker(), "B": new_speaker()}
models = {name: adapt(ubm, utterance(s, 1500)) for name, s in speakers.items()}

# Test utterances of 300 frames (3 s at 100 frames/s) from A, B and unseen impostors.
tests = [(name, utterance(speakers[name], 300)) for name in ("A", "B") for _ in range(6)]
tests += [("impostor", utterance(new_speaker(), 300)) for _ in range(6)]
print("utterance     avg log-lik: UBM     A - UBM   B - UBM   decision")
scores = []
correct = 0
for truth, frames in tests:
    base = ubm.score(frames)                          # average log-likelihood per frame
    llr = {name: model.score(frames) - base for name, model in models.items()}
    best = max(llr, key=llr.get)
    decision = best if llr[best] > 0.5 else "rejected"
    correct += decision == truth or (truth == "impostor" and decision == "rejected")
    scores.append((truth, llr["A"], llr["B"]))
    print(f"  {truth:<10}        {base:8.3f}   {llr['A']:+7.3f}   {llr['B']:+7.3f}   {decision}")
print(f"decisions right: {correct} of {len(tests)} "
      "(accept the best speaker when its score beats the UBM by 0.5 nats/frame)")

fig, ax = plt.subplots(figsize=(5.5, 4.5))
for truth, color in (("A", "tab:blue"), ("B", "tab:orange"), ("impostor", "tab:gray")):
    points = np.array([(a, b) for t, a, b in scores if t == truth])
    ax.scatter(points[:, 0], points[:, 1], color=color, label=f"spoken by {truth}")
ax.axvline(0.5, color="k", linestyle=":", linewidth=1)
ax.axhline(0.5, color="k", linestyle=":", linewidth=1)
ax.set_xlabel("score against speaker A (log-likelihood ratio per frame)")
ax.set_ylabel("score against speaker B")
ax.set_title("GMM-UBM speaker scores (64 diag components, 39-D)")
ax.legend()
fig.tight_layout()
fig.savefig("speaker_models.png", dpi=80)
print("wrote speaker_models.png")
