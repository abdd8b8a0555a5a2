"""Plain-numpy float64 reference for the native kernels (tests only).

Written from the definitions, not from the kernels: explicit per-component
loops and einsum over the whole data set, scipy's logsumexp. Every quantity
also comes with an "absolute scale" (the same sum taken over absolute values
of its terms), so that a comparison can bound the error relative to the size
of the terms rather than of a sum that may cancel to almost nothing.
"""

import math

import numpy as np
from scipy.special import logsumexp

COV_CODE = {"full": 0, "tied": 1, "diag": 2, "spherical": 2}


def log_prob_terms(X, weights, means, precisions_cholesky, covariance_type):
    """(log_const (K,), maha (N, K)): wlp = log_const - maha / 2."""
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    chol = np.asarray(precisions_cholesky, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    maha = np.empty((n_samples, n_components))
    log_det = np.empty(n_components)
    for k in range(n_components):
        diff = X - means[k]
        if covariance_type == "full":
            maha[:, k] = np.sum((diff @ chol[k]) ** 2, axis=1)
            log_det[k] = np.sum(np.log(np.diag(chol[k])))
        elif covariance_type == "tied":
            maha[:, k] = np.sum((diff @ chol) ** 2, axis=1)
            log_det[k] = np.sum(np.log(np.diag(chol)))
        elif covariance_type == "diag":
            maha[:, k] = diff**2 @ chol[k] ** 2
            log_det[k] = np.sum(np.log(chol[k]))
        else:  # spherical
            maha[:, k] = np.sum(diff**2, axis=1) * chol[k] ** 2
            log_det[k] = n_features * math.log(chol[k])
    log_const = np.log(np.asarray(weights, dtype=np.float64)) + log_det
    log_const -= 0.5 * n_features * math.log(2.0 * math.pi)
    return log_const, maha


def e_step(X, weights, means, precisions_cholesky, covariance_type):
    """Weighted log-probs, log-sum-exp, responsibilities and the scale of lse."""
    log_const, maha = log_prob_terms(X, weights, means, precisions_cholesky, covariance_type)
    wlp = log_const - 0.5 * maha
    lse = logsumexp(wlp, axis=1)
    resp = np.exp(wlp - lse[:, None])
    # |lse| can cancel to ~0; its error is driven by the terms it is made of.
    lse_scale = np.sum(resp * (np.abs(log_const) + 0.5 * maha), axis=1) + np.abs(lse)
    return {"wlp": wlp, "lse": lse, "resp": resp, "lse_scale": lse_scale}


def suff_stats(X, means, covariance_type, resp, lse=None, lse_scale=None,
               sample_weight=None, tied_center=None):
    """Sufficient statistics from responsibilities (before sample weights).

    Returns dicts of values and of absolute scales with keys ll, nk, s1, s2
    (s2 full: K x D x D, tied: D x D, diag/spherical: K x D; symmetric).
    """
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    n_samples = X.shape[0]
    w = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, np.float64)
    r = np.asarray(resp, dtype=np.float64) * w[:, None]
    diff = X[:, None, :] - means[None, :, :]  # N x K x D
    adiff = np.abs(diff)
    val, scale = {}, {}
    if lse is None:
        val["ll"], scale["ll"] = 0.0, 0.0
    else:
        val["ll"] = np.sum(w * lse)
        scale["ll"] = np.sum(w * lse_scale)
    val["nk"] = scale["nk"] = r.sum(axis=0)
    val["s1"] = np.einsum("nk,nkd->kd", r, diff)
    scale["s1"] = np.einsum("nk,nkd->kd", r, adiff)
    if covariance_type == "full":
        val["s2"] = np.einsum("nk,nka,nkb->kab", r, diff, diff)
        scale["s2"] = np.einsum("nk,nka,nkb->kab", r, adiff, adiff)
    elif covariance_type == "tied":
        dg = X - np.asarray(tied_center, dtype=np.float64)
        val["s2"] = np.einsum("n,na,nb->ab", w, dg, dg)
        scale["s2"] = np.einsum("n,na,nb->ab", w, np.abs(dg), np.abs(dg))
    else:
        val["s2"] = np.einsum("nk,nkd->kd", r, diff**2)
        scale["s2"] = val["s2"]
    return val, scale


def unpack_kernel_stats(total, covariance_type, n_components, n_features):
    """Split a summed kernel stats row into ll, nk, s1, s2 (s2 lower triangle only)."""
    K, D = n_components, n_features
    out = {"ll": total[0], "nk": total[1 : 1 + K], "s1": total[1 + K : 1 + K + K * D].reshape(K, D)}
    rest = total[1 + K + K * D :]
    if covariance_type == "full":
        # each component's lower triangle, packed row by row
        out["s2"] = np.zeros((K, D, D))
        rows, cols = np.tril_indices(D)
        out["s2"][:, rows, cols] = rest.reshape(K, D * (D + 1) // 2)
        assert rest.size == K * D * (D + 1) // 2
        return out
    elif covariance_type == "tied":
        out["s2"] = np.tril(rest.reshape(D, D))
    else:
        out["s2"] = rest.reshape(K, D)
    assert rest.size == out["s2"].size
    return out


def lower(a, covariance_type):
    """The part of a reference s2 the kernel fills."""
    return np.tril(a) if covariance_type in ("full", "tied") else a


def one_hot_blocks(labels, n_components, block, dtype):
    """(start, stop, resp) blocks with resp[i, labels[i]] = 1 (no 1 where the label is -1):
    the one-hot responsibilities that label statistics must equal."""
    n_samples = labels.shape[0]
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        resp = np.zeros((stop - start, n_components), dtype=dtype)
        part = labels[start:stop]
        rows = np.flatnonzero(part >= 0)
        resp[rows, part[rows]] = 1
        yield start, stop, resp
