"""Parameters of a Gaussian mixture: the M-step from sufficient statistics,
precision Cholesky factors, log-determinants and parameter counts.

All of this is O(K x D^2) (O(K x D^3) for the factorisations) and runs in
numpy/scipy in float64; only the hot O(N) pass is native. The formulas
reproduce scikit-learn's `_estimate_gaussian_parameters` and
`_compute_precision_cholesky` term by term, with the covariances formed
from sums shifted by the previous means instead of raw second moments.
"""

import math
import os

import numpy as np
from scipy import linalg

from fastgmm._kernels._suffstats import CHUNK_ROWS, stat_size

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Shape of the precisions (and of their Cholesky factors) per covariance type.
PRECISION_SHAPES = {
    "full": lambda K, D: (K, D, D),
    "tied": lambda K, D: (D, D),
    "diag": lambda K, D: (K, D),
    "spherical": lambda K, D: (K,),
}

# Codes understood by the kernels; 'spherical' runs as 'diag' with the same
# precision repeated over the features.
KERNEL_COV_CODE = {"full": 0, "tied": 1, "diag": 2, "spherical": 2}

# Slots of sufficient statistics: every slot is summed by one thread over a
# fixed run of chunks and the slots are added in order, so the number of
# slots (never the number of threads) fixes the rounding. At least
# MIN_SLOTS, to feed 16 cores; more, up to MAX_SLOTS, while they fit in
# SLOT_BUDGET_BYTES, to balance the load.
MIN_SLOTS = 16
MAX_SLOTS = 64
SLOT_BUDGET_BYTES = 32 * 2**20

ESTIMATE_PRECISION_ERROR = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


class CollapsedComponentError(ValueError):
    """A component's covariance is no longer positive definite."""


# Added to the message when a covariance is inf or NaN: scikit-learn says
# "array must not contain infs or NaNs" there, which does not say why.
# It comes first: scikit-learn's words that follow blame singleton samples
# and suggest fewer components, which is not the cause here.
OVERFLOW_HINT = {
    "f": ("Some covariances are not finite: with float32 data, squared deviations"
          " overflow float32 (above 3.4e38, so values of about 1e19 and larger);"
          " fit on X.astype(np.float64) or rescale X. "),
    "d": ("Some covariances are not finite: the squared deviations overflow float64;"
          " rescale X. "),
}


def check_batch_statistics(total, dtype):
    """partial_fit's batch sums (log-likelihood first) must be finite: an
    inf or NaN there means rows whose squared deviations overflow the
    dtype, which would otherwise drop out of the update unnoticed."""
    total = np.asarray(total)
    if not np.isfinite(total).all():
        raise ValueError(
            # (no number: the log-likelihood itself may be finite, 677.76, while
            # the moments overflowed, which read as a meaningless figure)
            f"partial_fit: the batch's statistics are not finite: some rows are so far "
            f"from the model, or so large, that "
            f"their squared deviations overflow {np.dtype(dtype).name}; the model is "
            "unchanged. " + ("The batch is computed in the model's float32: fit the model on "
                             "float64 data, or rescale X." if np.dtype(dtype) == np.float32
                             else "Rescale X.")
        )


def n_slots_for(n_samples, covariance_type, n_components, n_features):
    """Number of statistic slots for a pass over `n_samples` rows."""
    n_chunks = max(1, -(-n_samples // CHUNK_ROWS))
    row_bytes = 8 * stat_size(KERNEL_COV_CODE[covariance_type], n_components, n_features)
    by_budget = max(MIN_SLOTS, SLOT_BUDGET_BYTES // row_bytes)
    return int(max(1, min(n_chunks, MAX_SLOTS, by_budget)))


def memory_limit_bytes():
    """The most memory one allocation could ever get here: the machine's
    physical memory, or the process's address-space or data limit where it
    is lower, and never above numpy's largest array (all that is known
    where the platform reports neither)."""
    limits = [int(np.iinfo(np.intp).max)]
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX, or not reported
        pass
    try:
        import resource
    except ImportError:  # Windows
        resource = None
    if resource is not None:
        for name in ("RLIMIT_AS", "RLIMIT_DATA"):
            which = getattr(resource, name, None)
            if which is None:
                continue
            try:
                soft, _ = resource.getrlimit(which)
            except (ValueError, OSError):
                continue
            if soft != resource.RLIM_INFINITY and soft > 0:
                limits.append(soft)
    return min(limits)


def _gib(n_bytes):
    return f"{n_bytes / 2**30:,.2f} GiB"


def stats_memory_error(n_slots, covariance_type, n_components, n_features, reason):
    """The MemoryError of a statistics buffer that cannot be allocated: its
    size, what makes it up, and the way out."""
    K, D = n_components, n_features
    size = stat_size(KERNEL_COV_CODE[covariance_type], K, D)
    total = 8 * n_slots * size
    diag_total = 8 * n_slots * stat_size(KERNEL_COV_CODE["diag"], K, D)
    per_component = {"full": "D (D + 1) / 2", "tied": "one shared D x D",
                     "diag": "D", "spherical": "D"}[covariance_type]
    if covariance_type in ("full", "tied"):
        advice = (f"Use covariance_type='diag' (D second moments per component instead "
                  f"of {per_component}: {_gib(diag_total)} here), or fewer "
                  + ("components or features." if covariance_type == "full" else "features."))
    else:
        advice = "Use fewer components or features."
    return MemoryError(
        f"This fit needs a {n_slots} x {size:,} float64 buffer of sufficient statistics "
        f"({_gib(total)}): {n_slots} slots (one per run of rows, so that the result does "
        f"not depend on the thread count) of {size:,} numbers each for K={K} components "
        f"of D={D} features with covariance_type={covariance_type!r} ({per_component} "
        f"second moments per component). {reason} {advice}"
    )


def allocate_stats(n_slots, covariance_type, n_components, n_features):
    """The zeroed (n_slots, stat_size) float64 statistics buffer of a pass.

    MemoryError, naming the size and the way out, before numpy is asked for
    more than this machine could ever give (`memory_limit_bytes`), and
    likewise when numpy cannot allocate it.
    """
    size = stat_size(KERNEL_COV_CODE[covariance_type], n_components, n_features)
    n_bytes = 8 * n_slots * size
    limit = memory_limit_bytes()
    if n_bytes > limit:
        raise stats_memory_error(
            n_slots, covariance_type, n_components, n_features,
            f"That is more than this machine or process can allocate ({_gib(limit)}).")
    try:
        return np.zeros((n_slots, size))
    except MemoryError:
        raise stats_memory_error(
            n_slots, covariance_type, n_components, n_features,
            "numpy could not allocate it.") from None


def split_stats(total, covariance_type, n_components, n_features):
    """View a summed statistics row as (log-likelihood, N_k, S1, S2)."""
    K, D = n_components, n_features
    ll = total[0]
    nk = total[1 : 1 + K]
    s1 = total[1 + K : 1 + K + K * D].reshape(K, D)
    rest = total[1 + K + K * D :]
    if covariance_type == "full":
        # each component's lower triangle, packed row by row (half the memory)
        s2 = np.zeros((K, D, D))
        rows, cols = np.tril_indices(D)
        s2[:, rows, cols] = rest.reshape(K, -1)
        s2[:, cols, rows] = s2[:, rows, cols]
    elif covariance_type == "tied":
        s2 = _symmetrize_lower(rest.reshape(D, D))
    else:
        s2 = rest.reshape(K, D)
    return ll, nk, s1, s2


def _symmetrize_lower(a):
    """The kernels fill the lower triangle only (BLAS syrk); mirror it."""
    lower = np.tril(a)
    return lower + np.swapaxes(np.tril(a, -1), -1, -2)


def gaussian_parameters(stats_total, centers, tied_center, covariance_type, reg_covar, dtype):
    """M-step: (nk, means, covariances) from summed sufficient statistics.

    `centers` (K x D) are the means the statistics were shifted by and
    `tied_center` (D,) the centre of the tied second moment. `dtype` is the
    data's: scikit-learn adds 10 * eps of it to every N_k.
    """
    n_components, n_features = centers.shape
    _, nk_raw, s1, s2 = split_stats(stats_total, covariance_type, n_components, n_features)
    nk = nk_raw + 10 * np.finfo(dtype).eps
    means = (nk_raw[:, None] * centers + s1) / nk[:, None]
    # sum_i r_ik (x_i - m_k)(x_i - m_k)^T from sums about c_k, with d = m_k - c_k:
    # S2 - S1 d^T - d S1^T + N d d^T.
    shift = means - centers
    # Squares that overflow give inf or NaN covariances, which
    # compute_precision_cholesky refuses with OVERFLOW_HINT: numpy's own
    # overflow warnings before that error said less.
    with np.errstate(over="ignore", invalid="ignore"):
        if covariance_type == "full":
            cross = s1[:, :, None] * shift[:, None, :]
            scatter = (
                s2
                - cross
                - np.swapaxes(cross, 1, 2)
                + nk_raw[:, None, None] * shift[:, :, None] * shift[:, None, :]
            )
            covariances = scatter / nk[:, None, None]
        elif covariance_type == "tied":
            offset = means - tied_center
            covariances = (s2 - (nk[:, None] * offset).T @ offset) / nk.sum()
        else:
            covariances = (s2 - 2.0 * shift * s1 + nk_raw[:, None] * shift**2) / nk[:, None]
            # A variance within twice the square of the mean's own rounding,
            # 2 (eps |mu|)^2, is zero in exact arithmetic: rows that all equal
            # the mean leave (eps mu)^2 (0.6-1.2 times it, measured) where
            # scikit-learn's E[x^2] - mu^2 gives 0 or less. Taken as 0, so
            # that with reg_covar = 0 the component is collapsed, as in
            # scikit-learn (it fitted with a variance of 1e-31 and an inflated
            # lower bound: an outside audit); with reg_covar it changes nothing.
            floor = 2.0 * (np.finfo(dtype).eps * means) ** 2
            covariances = np.where(covariances <= floor, 0.0, covariances)
            if covariance_type == "spherical":
                covariances = covariances.mean(axis=1)
    return nk, means, add_to_variances(covariances, covariance_type, reg_covar)


def add_to_variances(covariances, covariance_type, value):
    """A float64 copy of `covariances` with `value` added to every variance
    (the diagonal for full and tied, every entry for diag and spherical)."""
    covariances = np.array(covariances, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        diagonal = np.arange(covariances.shape[-1])
        covariances[..., diagonal, diagonal] += value
    else:
        covariances += value
    return covariances


def compute_precision_cholesky(covariances, covariance_type, dtype=np.float64):
    """Upper-triangular factors U with U U^T = inverse covariance, as scikit-learn."""
    message = ESTIMATE_PRECISION_ERROR
    if np.dtype(dtype) == np.float32:
        message += (
            " The numerical accuracy can also be improved by passing float64"
            " data instead of float32."
        )
    covariances = np.asarray(covariances, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = covariances.astype(dtype)
    if not np.all(np.isfinite(rounded)):
        raise CollapsedComponentError(OVERFLOW_HINT.get(np.dtype(dtype).char,
                                                        OVERFLOW_HINT["d"]) + message)
    if covariance_type in ("full", "tied"):
        stack = covariances if covariance_type == "full" else covariances[None]
        n_features = stack.shape[-1]
        identity = np.eye(n_features)
        factors = np.empty_like(stack)
        # float32 models store their covariances in float32: one positive
        # definite only before that rounding would leave covariances_ that
        # are not, so the rounded matrix must factor too.
        check_rounded = np.dtype(dtype) != np.float64
        for k, covariance in enumerate(stack):
            try:
                cov_chol = linalg.cholesky(covariance, lower=True)
                if check_rounded:
                    linalg.cholesky(covariance.astype(dtype).astype(np.float64), lower=True)
            except linalg.LinAlgError:
                raise CollapsedComponentError(message) from None
            factors[k] = linalg.solve_triangular(cov_chol, identity, lower=True).T
        return factors if covariance_type == "full" else factors[0]
    if np.any(rounded <= 0.0):
        raise CollapsedComponentError(message)
    return 1.0 / np.sqrt(covariances)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Factors of user-given precisions: U = J chol(J P J) J, upper-triangular."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type == "full":
        return np.stack([_flip_cholesky(p) for p in precisions])
    if covariance_type == "tied":
        return _flip_cholesky(precisions)
    return np.sqrt(precisions)


def _flip_cholesky(precision):
    flipped = precision[::-1, ::-1]
    return linalg.cholesky(flipped, lower=True)[::-1, ::-1]


def precisions_from_cholesky(precisions_cholesky, covariance_type):
    if covariance_type == "full":
        return precisions_cholesky @ np.swapaxes(precisions_cholesky, 1, 2)
    if covariance_type == "tied":
        return precisions_cholesky @ precisions_cholesky.T
    return precisions_cholesky**2


def covariances_from_precisions(precisions, covariance_type):
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(precisions)
    return 1.0 / precisions


def log_det_cholesky(precisions_cholesky, covariance_type, n_features):
    """log det of the precision factors, one value per component (or a scalar for tied)."""
    chol = np.asarray(precisions_cholesky, dtype=np.float64)
    if covariance_type == "full":
        return np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(chol)).sum()
    if covariance_type == "diag":
        return np.log(chol).sum(axis=1)
    return n_features * np.log(chol)


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of the model, as scikit-learn counts them."""
    if covariance_type == "full":
        cov_params = n_components * n_features * (n_features + 1) / 2.0
    elif covariance_type == "diag":
        cov_params = n_components * n_features
    elif covariance_type == "tied":
        cov_params = n_features * (n_features + 1) / 2.0
    else:
        cov_params = n_components
    mean_params = n_features * n_components
    return int(cov_params + mean_params + n_components - 1)


class KernelParams:
    """Parameters laid out for the native kernels, in the data's dtype.

    means      K x D
    prec       flattened: full K x D x D factors, tied D x D factor,
               diag/spherical K x D precisions
    tied_center, tied_proj   D and K x D for 'tied' (empty otherwise)
    log_const  K, float64: log w_k + log det U_k - D/2 log(2 pi)

    `log_weights` (K, float64), when given, stands for log w_k: any
    per-component additive constant of the E-step. The variational E-step of
    the Bayesian mixture is the Gaussian log-density under the factors of
    its `covariances_` plus such constants (expected log weights, expected
    log-determinant terms), so the same kernels run it unchanged.
    `weights` then only place the tied centre.
    """

    __slots__ = ("means", "prec", "tied_center", "tied_proj", "log_const", "code",
                 "means64", "chol64", "log_weights", "covariance_type", "weights")

    def __init__(self, weights, means, precisions_cholesky, covariance_type, dtype,
                 log_weights=None):
        means64 = np.asarray(means, dtype=np.float64)
        chol64 = np.asarray(precisions_cholesky, dtype=np.float64)
        n_components, n_features = means64.shape
        self.covariance_type = covariance_type
        self.weights = weights
        self.means64 = means64
        self.chol64 = chol64
        self.code = KERNEL_COV_CODE[covariance_type]
        self.means = np.ascontiguousarray(means64, dtype=dtype)
        if covariance_type in ("full", "tied"):
            prec = chol64
        elif covariance_type == "diag":
            prec = chol64**2
        else:
            prec = np.repeat((chol64**2)[:, None], n_features, axis=1)
        self.prec = np.ascontiguousarray(prec, dtype=dtype).ravel()
        if covariance_type == "tied":
            w = np.asarray(weights, dtype=np.float64)
            center = (w / w.sum()) @ means64
            self.tied_center = center.astype(dtype)
            centered = self.means.astype(np.float64) - self.tied_center.astype(np.float64)
            self.tied_proj = np.ascontiguousarray(centered @ chol64, dtype=dtype)
        else:
            self.tied_center = np.empty(0, dtype=dtype)
            self.tied_proj = np.empty((0, 0), dtype=dtype)
        if log_weights is None:
            with np.errstate(divide="ignore"):
                log_weights = np.log(np.asarray(weights, dtype=np.float64))
        self.log_weights = np.asarray(log_weights, dtype=np.float64)
        self.log_const = np.ascontiguousarray(
            self.log_weights
            + log_det_cholesky(chol64, covariance_type, n_features)
            - 0.5 * n_features * math.log(2 * math.pi),
            dtype=np.float64,
        )

    def args(self):
        return (self.means, self.prec, self.tied_center, self.tied_proj, self.log_const)

    @property
    def dtype(self):
        return self.means.dtype

    def astype(self, dtype):
        """The same parameters laid out for data of another dtype."""
        if np.dtype(dtype) == self.means.dtype:
            return self
        return KernelParams(self.weights, self.means64, self.chol64, self.covariance_type,
                            dtype, self.log_weights)


def as_kernel(params, covariance_type, dtype):
    """`params` as KernelParams for data of `dtype`: a KernelParams as it is
    (re-laid out for another dtype), or a Gaussian mixture's
    (weights, means, covariances, precisions_cholesky)."""
    if isinstance(params, KernelParams):
        return params.astype(dtype)
    weights, means, _, precisions_cholesky = params
    return KernelParams(weights, means, precisions_cholesky, covariance_type, dtype)
