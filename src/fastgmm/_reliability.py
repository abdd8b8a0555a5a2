"""Degenerate-component recovery and the memory warning of large fits.

Recovery (``fit(..., on_degenerate="reseed")``): after an M-step, a
component whose covariance is not positive definite (after reg_covar) or
whose weight has gone to nothing is re-seeded at the sample the current
model explains worst (lowest log-density), with the pooled covariance of
the healthy components, instead of ending the fit with scikit-learn's
ValueError. The worst-explained samples are found by a chunked pass over
the data (a few MB at a time), so recovery works the same for in-memory
arrays, memmaps and ``fit_batches``.
"""

import warnings

import numpy as np

from fastgmm import _parameters as P

DEGENERATE_OPTIONS = ("raise", "reseed")

# A component is empty when its summed responsibilities N_k fall below this
# fraction of an average row's weight: it explains nothing any more.
EMPTY_COMPONENT_ROWS = 1e-3

# Rows scored at a time when looking for the worst-explained samples
# (a 512 KB log-density buffer in float64).
SCAN_ROWS = 65536

# Fits whose statistics buffers and parameter-sized temporaries exceed this
# many bytes warn before allocating them.
FIT_MEMORY_WARNING_BYTES = 2**30

# float64 arrays of a parameter's size (K x D^2 for 'full') alive at once
# during the M-step: the symmetrised second moments and their temporaries,
# the scatter, covariances, precision factors, precisions and the copies in
# the data's dtype handed to the kernels (counted in compute_fit_memory).
PARAMETER_COPIES = 8


class ComponentRecoveryWarning(UserWarning):
    """A degenerate component was re-seeded during a fit (``on_degenerate="reseed"``).

    The message names the component, the iteration and initialisation, why
    it was re-seeded (collapsed covariance or empty) and where it was put.
    """


class LargeMemoryWarning(UserWarning):
    """A fit is about to allocate more memory than ``FIT_MEMORY_WARNING_BYTES``
    (1 GiB) for its sufficient statistics and parameters, besides the data.
    The message gives the figure and how to reduce it."""


def check_on_degenerate(on_degenerate):
    if on_degenerate not in DEGENERATE_OPTIONS:
        raise ValueError(
            f"on_degenerate must be 'raise' (scikit-learn's behaviour: a ValueError when "
            f"a component collapses) or 'reseed' (re-seed the component and go on), "
            f"got {on_degenerate!r}."
        )


# ---------------------------------------------------------------- memory


def compute_fit_memory(max_block_rows, covariance_type, n_components, n_features):
    """Bytes a fit allocates besides X: (statistics buffer, parameters and temporaries).

    The statistics buffer holds one row of sufficient statistics per slot
    (`_parameters.n_slots_for`: 16 to 64 slots, so that results do not
    depend on the thread count); the parameters term counts
    `PARAMETER_COPIES` float64 arrays of a covariance's size.
    """
    n_slots = P.n_slots_for(max_block_rows, covariance_type, n_components, n_features)
    stats_bytes = 8 * n_slots * P.stat_size(
        P.KERNEL_COV_CODE[covariance_type], n_components, n_features
    )
    per_component = {
        "full": n_features * n_features,
        "tied": n_features * n_features / max(n_components, 1),
        "diag": n_features,
        "spherical": 1,
    }[covariance_type]
    param_bytes = int(8 * PARAMETER_COPIES * (n_components * per_component
                                               + n_components * n_features))
    return stats_bytes, param_bytes


def warn_if_large(max_block_rows, covariance_type, n_components, n_features):
    """Warn (LargeMemoryWarning) before a fit that needs more than
    FIT_MEMORY_WARNING_BYTES besides the data; returns the bytes it needs."""
    stats_bytes, param_bytes = compute_fit_memory(
        max_block_rows, covariance_type, n_components, n_features
    )
    total = stats_bytes + param_bytes
    if total > FIT_MEMORY_WARNING_BYTES:
        n_slots = P.n_slots_for(max_block_rows, covariance_type, n_components, n_features)
        shape = {"full": f"{n_components} x {n_features} x {n_features}",
                 "tied": f"{n_features} x {n_features}",
                 "diag": f"{n_components} x {n_features}",
                 "spherical": f"{n_components}"}[covariance_type]
        advice = (
            "covariance_type='diag' needs D instead of D^2 numbers per component; "
            "fewer components or features also reduce it."
            if covariance_type in ("full", "tied")
            else "Fewer components or features reduce it."
        )
        warnings.warn(
            f"This fit needs about {_gib(total)} of memory besides X: {_gib(stats_bytes)} "
            f"of sufficient statistics ({n_slots} slots of {shape} second moments in "
            f"float64, one slot per run of rows so that the result does not depend on "
            f"the thread count) and {_gib(param_bytes)} for the {shape} parameters and "
            f"the M-step's temporaries ({covariance_type!r}, K={n_components}, "
            f"D={n_features}). {advice}",
            LargeMemoryWarning,
            stacklevel=4,
        )
    return total


def _gib(n_bytes):
    return f"{n_bytes / 2**30:.2f} GiB"


# -------------------------------------------------------------- recovery


def degenerate_components(nk, covariances, covariance_type, dtype, row_weight,
                          empty=True):
    """{k: reason} for the components an M-step left degenerate.

    'empty': N_k below EMPTY_COMPONENT_ROWS of an average row's weight
    (`row_weight`). 'collapsed': the covariance (reg_covar included) is not
    positive definite, as `compute_precision_cholesky` judges it (in the
    data's dtype). A 'tied' covariance is shared: only empty components are
    reported, and a non-positive-definite tied covariance still raises.
    With `empty` False, empty components are not reported (a Bayesian
    mixture empties the components it does not need, on purpose).
    """
    bad = {}
    if empty:
        for k in np.flatnonzero(~(nk >= EMPTY_COMPONENT_ROWS * row_weight)):
            bad[int(k)] = "empty"
    if covariance_type == "tied":
        return bad
    for k in range(covariances.shape[0]):
        if k in bad:
            continue
        try:
            P.compute_precision_cholesky(covariances[k : k + 1], covariance_type, dtype)
        except P.CollapsedComponentError:
            bad[k] = "collapsed"
    return bad


def worst_explained_rows(data, params, covariance_type, n_rows, n_threads, estimate):
    """The `n_rows` samples of lowest log-density under `params`.

    Scans the data in blocks of SCAN_ROWS rows (no N-sized temporary);
    rows of zero sample weight are skipped; ties go to the earlier row.
    Returns (row indices, rows as a (n, D) float64 array).
    """
    if hasattr(data, "worst_explained_rows"):
        # A distributed source (Dask) scans its blocks where they live.
        return data.worst_explained_rows(params, covariance_type, n_rows)
    best_values = np.empty(0)
    best_index = np.empty(0, dtype=np.int64)
    best_rows = np.empty((0, data.n_features))
    buffer = np.empty(min(SCAN_ROWS, max(1, data.max_block_rows)), dtype=data.dtype)
    offset = 0
    for X, sample_weight in data.passes():
        for start in range(0, X.shape[0], SCAN_ROWS):
            rows = X[start : start + SCAN_ROWS]
            log_prob = buffer[: rows.shape[0]]
            estimate(rows, params, covariance_type, n_threads, log_prob=log_prob)
            values = log_prob.astype(np.float64)
            if sample_weight is not None:
                values[sample_weight[start : start + rows.shape[0]] == 0] = np.inf
            take = min(n_rows, values.shape[0])
            candidates = np.argpartition(values, take - 1)[:take]
            best_values = np.concatenate([best_values, values[candidates]])
            best_index = np.concatenate([best_index, offset + start + candidates])
            best_rows = np.vstack([best_rows, rows[candidates].astype(np.float64)])
            keep = np.lexsort((best_index, best_values))[:n_rows]
            best_values, best_index, best_rows = (
                best_values[keep], best_index[keep], best_rows[keep]
            )
        offset += X.shape[0]
    finite = np.isfinite(best_values)
    return best_index[finite], best_rows[finite]


class DegenerateRecovery:
    """Re-seeds degenerate components between the M-step and the precision
    factors; `init` and `n_iter` name the place in the fit for the warning."""

    def __init__(self, covariance_type, n_threads, estimate, reseed_empty=True):
        self.covariance_type = covariance_type
        self.reseed_empty = reseed_empty
        self.n_threads = n_threads
        self.estimate = estimate
        self.init = 0
        self.n_iter = 0
        self.reseeded = []          # components re-seeded at the current iteration

    def at(self, init, n_iter):
        self.init, self.n_iter = init, n_iter
        self.reseeded = []

    def _where(self):
        return "at the start" if self.n_iter == 0 else f"at iteration {self.n_iter}"

    def repair(self, data, params, nk, weights, means, covariances):
        """(weights, means, covariances) with every degenerate component re-seeded.

        `params` are the parameters the iteration's E-step used (all
        positive definite), or None at initialisation (no model yet: the
        worst-explained samples are then those of the healthy components
        alone); `nk`, `weights`, `means`, `covariances` the M-step's (or
        the initialisation's) output, float64.
        """
        cov_type = self.covariance_type
        bad = degenerate_components(
            nk, covariances, cov_type, data.dtype, data.total_weight / data.n_samples,
            empty=self.reseed_empty,
        )
        if not bad:
            return weights, means, covariances
        n_components = means.shape[0]
        healthy = np.array([k not in bad for k in range(n_components)])
        if not healthy.any():
            raise P.CollapsedComponentError(
                P.ESTIMATE_PRECISION_ERROR
                + f" on_degenerate='reseed' cannot recover: all {n_components} components "
                f"are degenerate {self._where()} (the data has too little "
                "spread for this many components at this reg_covar)."
            )
        components = sorted(bad)
        if params is None:
            keep = np.flatnonzero(healthy)
            kept_cov = covariances if cov_type == "tied" else covariances[keep]
            params = tuple(np.asarray(p, dtype=data.dtype) for p in (
                weights[keep] / weights[keep].sum(), means[keep], kept_cov,
                P.compute_precision_cholesky(kept_cov, cov_type, data.dtype),
            ))
        index, rows = worst_explained_rows(
            data, params, cov_type, len(components), self.n_threads, self.estimate
        )
        if rows.shape[0] < len(components):
            raise P.CollapsedComponentError(
                P.ESTIMATE_PRECISION_ERROR
                + " on_degenerate='reseed' found no sample to re-seed at."
            )
        weights, means, covariances = weights.copy(), means.copy(), covariances.copy()
        if cov_type != "tied":
            w = nk[healthy] / nk[healthy].sum()
            pooled = np.tensordot(w, covariances[healthy], axes=1)
        for k, i, row in zip(components, index, rows):
            means[k] = row
            weights[k] = 1.0 / n_components
            if cov_type != "tied":
                covariances[k] = pooled
            self.reseeded.append(k)
            reason = (
                "its covariance is not positive definite after reg_covar (it collapsed "
                "onto too few distinct samples)"
                if bad[k] == "collapsed"
                else f"it holds almost no samples (N_k = {nk[k]:.3g})"
            )
            warnings.warn(
                f"Component {k} degenerated {self._where()} of initialisation "
                f"{self.init}: {reason}. Re-seeded it at the worst-explained sample "
                f"(row {int(i)}) with the pooled covariance of the other components.",
                ComponentRecoveryWarning,
                stacklevel=2,
            )
        weights /= weights.sum()
        return weights, means, covariances



# ------------------------------------------------------------ far queries

# Rows handled at a time by far_row_responsibilities (n x K x D float64 each).
FAR_BLOCK_ROWS = 4096


def far_row_responsibilities(rows, log_weights, means, precisions_cholesky, covariance_type):
    """Responsibilities (float64) of rows whose log-densities overflow float64.

    Such a row x = s * u (s = max |x_d|, far beyond the model's scale) has
    log-densities log w_k + log det U_k - q_k / 2 with squared distances
    q_k = s^2 a_k - 2 s b_k + c_k, a_k = |u U_k|^2, b_k = (u U_k).(mu_k U_k),
    c_k = |mu_k U_k|^2, all finite. The quadratic term decides between
    components of different shapes along u (a_k differ); between components
    of the same shape there (equal a_k) the s^2 terms cancel and the rest,
    s b_k - c_k / 2 + log w_k + log det U_k, are their log-densities up to a
    common constant: a softmax over them (their odds do not depend on s).
    `log_weights` are the log w_k, or any per-component constant of the
    E-step (the Bayesian mixture's, see `_parameters.KernelParams`).
    """
    rows = np.asarray(rows, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    chol = np.asarray(precisions_cholesky, dtype=np.float64)
    n_components, n_features = means.shape
    if covariance_type == "full":
        projected_means = np.einsum("kd,kde->ke", means, chol)
    elif covariance_type == "tied":
        projected_means = means @ chol
    elif covariance_type == "diag":
        projected_means = means * chol
    else:
        projected_means = means * chol[:, None]
    with np.errstate(invalid="ignore"):
        log_const = (np.asarray(log_weights, dtype=np.float64)
                     + P.log_det_cholesky(chol, covariance_type, n_features)
                     - 0.5 * np.einsum("kd,kd->k", projected_means, projected_means))
    # log_const + s b_k: the log-density of a same-shape component, up to a common constant
    out = np.empty((rows.shape[0], n_components))
    for start in range(0, rows.shape[0], FAR_BLOCK_ROWS):
        block = rows[start : start + FAR_BLOCK_ROWS]
        u = block / np.abs(block).max(axis=1, keepdims=True)
        if covariance_type == "full":
            y = np.einsum("nd,kde->nke", u, chol)
        elif covariance_type == "tied":
            y = np.broadcast_to((u @ chol)[:, None, :], (u.shape[0], n_components, n_features))
        elif covariance_type == "diag":
            y = u[:, None, :] * chol[None]
        else:
            y = u[:, None, :] * chol[None, :, None]
        scale = np.abs(block).max(axis=1, keepdims=True)
        a = np.einsum("nkd,nkd->nk", y, y)
        nearest_shape = a == a.min(axis=1, keepdims=True)
        with np.errstate(over="ignore"):                  # +-inf: s b_k decides alone
            rest = scale * np.einsum("nkd,kd->nk", y, projected_means) + log_const
        logits = np.where(nearest_shape, rest, -np.inf)
        top = logits.max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            resp = np.where(np.isposinf(top), np.isposinf(logits), np.exp(logits - top))
        out[start : start + block.shape[0]] = resp / resp.sum(axis=1, keepdims=True)
    return out
