"""fastgmm.GaussianMixture: scikit-learn's estimator on a native EM core.

The fit loop, the data sources and inference live in `_base.BaseMixture`;
this module supplies the model: validation of the user's initial
parameters, the initialisation, the M-step from the fused pass's
sufficient statistics (one pass per EM iteration), online EM for
partial_fit, and BIC / AIC.
"""

# Annotations stay as written (ArrayLike, not numpy's expansion of it), so
# that help() and inspect.signature show readable signatures.
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from fastgmm import _parameters as P
from fastgmm._base import BaseMixture, IterationInfo, _transaction  # noqa: F401
from fastgmm._data import (
    InMemoryData,
    Workspace,
    cast_params,
    is_dask_array,
    validate_sample_weight,
)
# Older private names, kept for their callers (tests, _selection).
from fastgmm._data import (  # noqa: F401
    InMemoryData as _InMemoryData,
    Workspace as _Workspace,
    estimate_rows as _estimate,
    fit_weights,
    validate_sample_weight as _validate_sample_weight,
)
from fastgmm._threads import blas_single_threaded, n_threads_for

_PRECISION_SHAPES = P.PRECISION_SHAPES


def _check_shape(param, param_shape, name):
    if param.shape != param_shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s"
            % (name, param_shape, param.shape)
        )


def _check_weights(weights, n_components):
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(weights, (n_components,), "weights")
    if np.any(np.less(weights, 0.0)) or np.any(np.greater(weights, 1.0)):
        raise ValueError(
            "The parameter 'weights' should be in the range "
            "[0, 1], but got max value %.5f, min value %.5f"
            % (np.min(weights), np.max(weights))
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(np.abs(1.0 - np.sum(weights)), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = %.5f"
            % np.sum(weights)
        )
    return weights


def _check_means(means, n_components, n_features):
    means = check_array(means, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(means, (n_components, n_features), "means")
    return means


def _check_precisions(precisions, covariance_type, n_components, n_features):
    precisions = check_array(
        precisions,
        dtype=[np.float64, np.float32],
        ensure_2d=False,
        allow_nd=covariance_type == "full",
    )
    _check_shape(
        precisions,
        _PRECISION_SHAPES[covariance_type](n_components, n_features),
        "%s precision" % covariance_type,
    )
    if covariance_type in ("diag", "spherical"):
        if np.any(np.less_equal(precisions, 0.0)):
            raise ValueError("'%s precision' should be positive" % covariance_type)
    else:
        stack = precisions if covariance_type == "full" else precisions[None]
        for precision in stack:
            if not (
                np.allclose(precision, precision.T)
                and np.all(np.linalg.eigvalsh(precision) > 0.0)
            ):
                raise ValueError(
                    "'%s precision' should be symmetric, positive-definite"
                    % covariance_type
                )
    return precisions


class GaussianMixture(BaseMixture):
    """Gaussian Mixture, fitted by EM on a native multithreaded core.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the
    same parameters, defaults, attributes, methods, warnings and errors, and
    the same random draws for a given ``random_state``, so that a fit reaches
    the same optimum as scikit-learn's. Each EM iteration is a single pass
    over X in chunks (OpenMP threads, GIL released) that computes the
    responsibilities and the sufficient statistics together; no
    n_samples x n_components array is formed while fitting. float32 input is
    processed in float32 with float64 accumulators, and the result does not
    depend on the number of threads.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component has its own general covariance matrix;
        'tied': all components share one general covariance matrix;
        'diag': each component has its own diagonal covariance matrix;
        'spherical': each component has its own single variance.
    tol : float, default=1e-3
        EM stops when the gain of the mean log-likelihood is below ``tol``.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariances.
    max_iter : int, default=100
        The number of EM iterations to perform.
    n_init : int, default=1
        The number of initializations to perform. The best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the weights, means and precisions are initialized.
    weights_init : array-like of shape (n_components,), default=None
        User-provided initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        User-provided initial means.
    precisions_init : array-like, default=None
        User-provided initial precisions (inverse covariances); the shape
        depends on ``covariance_type`` as for ``precisions_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialization and :meth:`sample`, as in scikit-learn.
    warm_start : bool, default=False
        Start the next ``fit`` from the current solution (``n_init`` is then
        ignored after the first fit).
    verbose : int, default=0
        1 prints each initialization and iteration; 2 also prints the change
        of the lower bound and the time per step.
    verbose_interval : int, default=10
        Number of iterations between two prints.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
        The fitted parameters, shaped as in scikit-learn.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the training data at the best fit.
    lower_bounds_ : list of float
        Mean log-likelihood at each iteration of the best fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.
    """

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        precisions_init: ArrayLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # Step sizes of online EM (Cappe & Moulines 2009): rho_t = (t + 1)^-0.6 for
    # the t-th update after the first batch; sum rho = inf, sum rho^2 < inf.
    _ONLINE_STEP_EXPONENT = 0.6

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> GaussianMixture:
        """Update the model with one batch of rows (online, stepwise EM).

        The first call (on an unfitted estimator) fits the batch as ``fit``
        does, initialisation included. Each later call runs one E-step on
        the batch under the current parameters and moves the model's
        normalised sufficient statistics (component weights, means and
        covariances) a step ``rho_t = (t + 1) ** -0.6`` towards the batch's,
        t being the number of updates so far (stepwise EM of Cappe and
        Moulines, 2009): a stream of batches converges without keeping old
        data. Batches may differ in size and dtype (they are computed in the
        model's dtype); their feature count must not change.

        After each update, ``lower_bound_`` is the mean log-likelihood of the
        batch under the parameters before the update, appended to
        ``lower_bounds_``; ``n_iter_`` counts the updates.

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, sample_weight)

    def _online_update(self, X, sample_weight):
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")
        dtype = self.means_.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        n_components, n_features = self.means_.shape
        sample_weight = validate_sample_weight(sample_weight, X, 1)
        data = InMemoryData(X, sample_weight)
        workspace = Workspace(data, self.covariance_type, n_components)
        kernel = P.KernelParams(self.weights_, self.means_, self.precisions_cholesky_,
                                self.covariance_type, dtype)
        # the weights as fit takes them (fit_weights: None when equal, else of
        # mean 1): raw ones of 1e-100 let the M-step's 10 eps floor on N_k
        # pull a component away (an outside audit), and the bound is the
        # batch's weighted mean log-likelihood
        with blas_single_threaded():
            total = workspace.accumulate(data.X, data.sample_weight, kernel,
                                         n_threads_for(X.shape[0]))
        P.check_batch_statistics(total, dtype)
        batch_lower_bound = float(total[0] / data.total_weight)
        nk, batch_means, batch_cov = P.gaussian_parameters(
            total, kernel.means.astype(np.float64), kernel.tied_center.astype(np.float64),
            self.covariance_type, 0.0, dtype,
        )
        batch_gamma = nk / nk.sum()

        t = getattr(self, "_online_updates", 0) + 1
        rho = (t + 1.0) ** -self._ONLINE_STEP_EXPONENT
        gamma, means, cov = self._online_statistics()
        new_gamma = (1 - rho) * gamma + rho * batch_gamma
        a = (1 - rho) * gamma / new_gamma
        b = rho * batch_gamma / new_gamma
        new_means = a[:, None] * means + b[:, None] * batch_means
        shift_old, shift_new = means - new_means, batch_means - new_means
        if self.covariance_type == "full":
            new_cov = (a[:, None, None] * (cov + shift_old[:, :, None] * shift_old[:, None, :])
                       + b[:, None, None] * (batch_cov + shift_new[:, :, None] * shift_new[:, None, :]))
        elif self.covariance_type == "diag":
            new_cov = a[:, None] * (cov + shift_old**2) + b[:, None] * (batch_cov + shift_new**2)
        elif self.covariance_type == "spherical":
            new_cov = (a * (cov + (shift_old**2).mean(axis=1))
                       + b * (batch_cov + (shift_new**2).mean(axis=1)))
        else:  # tied: one within-component scatter, weights summing to one
            old_part = cov + (gamma[:, None] * shift_old).T @ shift_old
            new_part = batch_cov + (batch_gamma[:, None] * shift_new).T @ shift_new
            new_cov = (1 - rho) * old_part + rho * new_part
        covariances = P.add_to_variances(new_cov, self.covariance_type, self.reg_covar)
        precisions_cholesky = P.compute_precision_cholesky(
            covariances, self.covariance_type, dtype
        )
        self._set_parameters(cast_params(
            (new_gamma / new_gamma.sum(), new_means, covariances, precisions_cholesky), dtype
        ))
        self._online_updates = t
        self.n_iter_ = self.n_iter_ + 1
        self.lower_bound_ = batch_lower_bound
        self.lower_bounds_ = list(self.lower_bounds_) + [batch_lower_bound]

    def _online_statistics(self):
        """(component weights, means, covariances without reg_covar), float64."""
        cov = P.add_to_variances(self.covariances_, self.covariance_type, -self.reg_covar)
        return (np.asarray(self.weights_, dtype=np.float64),
                np.asarray(self.means_, dtype=np.float64), cov)

    def _prepare_fit(self, data):
        return self._check_user_init(data.n_features)

    def _check_user_init(self, n_features):
        """Validated copies of weights_init, means_init and precisions_init."""
        K = self.n_components
        weights = None if self.weights_init is None else _check_weights(self.weights_init, K)
        means = None if self.means_init is None else _check_means(self.means_init, K, n_features)
        precisions = (
            None
            if self.precisions_init is None
            else _check_precisions(self.precisions_init, self.covariance_type, K, n_features)
        )
        return weights, means, precisions

    def _initial_parameters(self, data, random_state, user_init, n_threads, recovery=None):
        weights_init, means_init, precisions_init = user_init
        dtype = data.dtype
        weights = means = covariances = None
        if weights_init is None or means_init is None or precisions_init is None:
            stats, centers, tied_center = data.initial_statistics(
                self.init_params, int(self.n_components), random_state,
                self.covariance_type, n_threads,
            )
            nk, means, covariances = P.gaussian_parameters(
                stats, centers.astype(np.float64), tied_center.astype(np.float64),
                self.covariance_type, self.reg_covar, dtype,
            )
            weights = nk / data.total_weight
            if recovery is not None and precisions_init is None:
                # A component that collapses at initialisation (a cluster of
                # identical rows at reg_covar=0, say) is re-seeded as in EM.
                weights, means, covariances = recovery.repair(
                    data, None, nk, weights, means, covariances
                )
        if weights_init is not None:
            weights = weights_init
        if means_init is not None:
            means = means_init
        if precisions_init is None:
            precisions_cholesky = P.compute_precision_cholesky(
                covariances, self.covariance_type, dtype
            )
        else:
            precisions_cholesky = P.precision_cholesky_from_precisions(
                precisions_init, self.covariance_type
            )
            covariances = P.covariances_from_precisions(
                np.asarray(precisions_init, dtype=np.float64), self.covariance_type
            )
        return cast_params((weights, means, covariances, precisions_cholesky), dtype)

    def _em_iteration(self, data, params, workspace, n_threads, recovery=None):
        """One fused E+M pass: returns the new parameters and the mean log-likelihood
        of the data under the parameters it was given (scikit-learn's lower bound).
        With a `recovery`, degenerate components are re-seeded instead of raising."""
        weights, means, _, precisions_cholesky = params
        dtype = data.dtype
        kernel = P.KernelParams(weights, means, precisions_cholesky, self.covariance_type, dtype)
        total = data.statistics(workspace, kernel, n_threads)
        lower_bound = total[0] / data.total_weight
        tied_center = kernel.tied_center.astype(np.float64)
        nk, new_means, covariances = P.gaussian_parameters(
            total, kernel.means.astype(np.float64), tied_center, self.covariance_type,
            self.reg_covar, dtype,
        )
        new_weights = nk / nk.sum()
        if recovery is not None:
            new_weights, new_means, covariances = recovery.repair(
                data, params, nk, new_weights, new_means, covariances
            )
        precisions_cholesky = P.compute_precision_cholesky(
            covariances, self.covariance_type, dtype
        )
        return cast_params((new_weights, new_means, covariances, precisions_cholesky), dtype), float(lower_bound)

    def _get_parameters(self):
        return (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params
        self._fitted_covariance_type = self.covariance_type
        self.precisions_ = P.precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        ).astype(self.precisions_cholesky_.dtype, copy=False)

    def _kernel_params(self, params, dtype):
        weights, means, _, precisions_cholesky = params
        return P.KernelParams(weights, means, precisions_cholesky, self.covariance_type, dtype)

    def _callback_parameters(self, params):
        return params[0], params[1], params[2]

    def _n_parameters(self):
        n_components, n_features = self.means_.shape
        return P.n_parameters(self.covariance_type, n_components, n_features)

    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion of the model on X (lower is better).

        With ``sample_weight``, the log-likelihood is weighted and the number
        of samples is the sum of the weights.
        """
        if sample_weight is None and not is_dask_array(X):
            n_samples = np.shape(X)[0]  # X may be a list, as for score
            return -2 * self.score(X) * n_samples + self._n_parameters() * math.log(n_samples)
        log_likelihood, n_samples = self._total_log_likelihood(X, sample_weight)
        return -2 * log_likelihood + self._n_parameters() * math.log(n_samples)

    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion of the model on X (lower is better),
        with the log-likelihood weighted by ``sample_weight`` when given."""
        if sample_weight is None and not is_dask_array(X):
            return -2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()
        log_likelihood, _ = self._total_log_likelihood(X, sample_weight)
        return -2 * log_likelihood + 2 * self._n_parameters()
