"""fastgmm.BayesianGaussianMixture: scikit-learn's variational mixture on the
native core.

The variational E-step is the Gaussian log-density under the precision
factors of `covariances_` (the Wishart scale times the degrees of freedom)
plus one constant per component: the expected log weight (digamma terms of
the Dirichlet or stick-breaking posterior), -D/2 log(nu_k), and half the
expected log-determinant less D / kappa_k. Those constants go to the kernel
in place of log w_k (`KernelParams(log_weights=...)`), so an iteration is
the same fused pass as GaussianMixture's: N_k, S1, S2 and sum_i log p(x_i),
no N x K array. The variational M-step turns the Gaussian statistics
(`_parameters.gaussian_parameters`, scikit-learn's nk, xk, sk) into the
posteriors; the lower bound's entropy term sum r log r comes from the same
statistics (see `_entropy`).

partial_fit is stochastic variational inference (Hoffman, Blei, Wang and
Paisley, 2013); see `_online_update`.
"""

# Annotations stay as written (ArrayLike, not numpy's expansion of it), so
# that help() and inspect.signature show readable signatures.
from __future__ import annotations

import math
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, gammaln
from sklearn.base import _fit_context
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from fastgmm import _parameters as P
from fastgmm._base import BaseMixture
from fastgmm._data import InMemoryData, Workspace, cast_params, validate_sample_weight
from fastgmm._threads import blas_single_threaded, n_threads_for


def _check_shape(param, param_shape, name):
    if param.shape != param_shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s"
            % (name, param_shape, param.shape)
        )


def _check_precision_matrix(matrix, covariance_type):
    if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0.0)):
        raise ValueError(
            "'%s precision' should be symmetric, positive-definite" % covariance_type
        )


def _log_wishart_norm(degrees_of_freedom, log_det_precisions_chol, n_features):
    """log of the Wishart normalisation per component, without the log(pi) term
    (it cancels in the lower bound), as scikit-learn writes it."""
    dof = np.asarray(degrees_of_freedom, dtype=np.float64)
    half = 0.5 * (dof - np.arange(n_features)[:, np.newaxis])
    return -(
        dof * log_det_precisions_chol
        + dof * n_features * 0.5 * math.log(2.0)
        + np.sum(gammaln(half), axis=0)
    )


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian Gaussian mixture on a native multithreaded core.

    A drop-in replacement for :class:`sklearn.mixture.BayesianGaussianMixture`:
    the same parameters, defaults, attributes, methods, warnings and errors,
    and from the same ``random_state`` the same fit. A Dirichlet process (or
    a Dirichlet distribution) prior on the weights lets the fit leave the
    components it does not need with weights near zero, so ``n_components``
    is an upper bound on the number used. Each variational iteration is a
    single pass over X in chunks (OpenMP threads, GIL released); no
    n_samples x n_components array is formed while fitting. float32 input is
    processed in float32 with float64 accumulators, and the result does not
    depend on the number of threads.

    Beyond scikit-learn, as :class:`fastgmm.GaussianMixture`:
    ``sample_weight``, ``callback`` and ``on_degenerate`` in ``fit``, memmaps
    streamed through, ``fit_batches``, Dask arrays, and ``partial_fit``
    (stochastic variational inference).

    Parameters
    ----------
    n_components : int, default=1
        The largest number of mixture components; the fit may leave some
        with weights near zero.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        The fit stops when the gain of the lower bound is below ``tol``.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of the
        components' empirical covariances.
    max_iter : int, default=100
    n_init : int, default=1
        The number of initializations; the one with the highest lower
        bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
    weight_concentration_prior_type : {'dirichlet_process', \
            'dirichlet_distribution'}, default='dirichlet_process'
        The prior on the weights: a stick-breaking Dirichlet process
        (truncated at ``n_components``) or a Dirichlet distribution.
    weight_concentration_prior : float, default=None
        The concentration of the weight prior (gamma); None is
        ``1 / n_components``. Smaller values leave fewer components active.
    mean_precision_prior : float, default=None
        The precision of the prior on the means (kappa_0); None is 1.
    mean_prior : array-like of shape (n_features,), default=None
        The prior mean of the means; None is the (weighted) mean of X.
    degrees_of_freedom_prior : float, default=None
        Degrees of freedom of the Wishart prior (nu_0 > n_features - 1);
        None is n_features.
    covariance_prior : float or array-like, default=None
        The prior on the covariances: (n_features, n_features) for 'full'
        and 'tied', (n_features,) for 'diag', a float for 'spherical'. None
        is the (weighted) covariance of X.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
        The fitted parameters, shaped as in scikit-learn.
    weight_concentration_prior_, weight_concentration_
        The prior and posterior concentration of the weights (for a
        Dirichlet process, a tuple of the two Beta parameters per stick).
    mean_precision_prior_, mean_precision_, mean_prior_
    degrees_of_freedom_prior_, degrees_of_freedom_, covariance_prior_
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The lower bound (scikit-learn's, without its constant terms) of the
        best fit.
    lower_bounds_ : list of float
        The lower bound at each iteration of the best fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    """

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "weight_concentration_prior_type": [
            StrOptions({"dirichlet_process", "dirichlet_distribution"})
        ],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
    }

    # Components the Dirichlet prior empties are the model's answer, not a
    # failure: on_degenerate='reseed' re-seeds collapsed covariances only.
    _RESEED_EMPTY = False

    def __init__(
        self,
        *,
        n_components: int = 1,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: ArrayLike | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: float | ArrayLike | None = None,
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
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ---------------------------------------------------------------- priors

    def _prepare_fit(self, data):
        """The priors, as scikit-learn's `_check_parameters` sets them; the
        data-dependent defaults (mean and covariance of X, weighted when
        sample weights are given) come from the data source in one streamed
        pass pair, never a copy of X."""
        n_features = data.n_features
        covariance_type = self.covariance_type
        self.weight_concentration_prior_ = (
            1.0 / self.n_components if self.weight_concentration_prior is None
            else self.weight_concentration_prior
        )
        self.mean_precision_prior_ = (
            1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        )
        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            self.degrees_of_freedom_prior_ = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' "
                "should be greater than %d, but got %.3f."
                % (n_features - 1, self.degrees_of_freedom_prior)
            )
        moments = None
        if self.mean_prior is None or self.covariance_prior is None:
            moments = data.prior_moments(full=covariance_type in ("full", "tied"))
        if self.mean_prior is None:
            self.mean_prior_ = moments[0].astype(data.dtype)
        else:
            self.mean_prior_ = check_array(
                self.mean_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            _check_shape(self.mean_prior_, (n_features,), "means")
        if self.covariance_prior is None:
            covariance = moments[1]
            self.covariance_prior_ = {
                "full": np.atleast_2d(covariance),
                "tied": np.atleast_2d(covariance),
                "diag": covariance.astype(data.dtype),
                "spherical": covariance.astype(data.dtype).mean(),
            }[covariance_type]
        elif covariance_type in ("full", "tied"):
            self.covariance_prior_ = check_array(
                self.covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            _check_shape(self.covariance_prior_, (n_features, n_features),
                         "%s covariance_prior" % covariance_type)
            _check_precision_matrix(self.covariance_prior_, covariance_type)
        elif covariance_type == "diag":
            self.covariance_prior_ = check_array(
                self.covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            _check_shape(self.covariance_prior_, (n_features,),
                         "%s covariance_prior" % covariance_type)
            if np.any(np.less_equal(self.covariance_prior_, 0.0)):
                raise ValueError("'%s precision' should be positive" % covariance_type)
        else:
            self.covariance_prior_ = self.covariance_prior
        return None

    # ------------------------------------------------------------- M-step

    def _initial_parameters(self, data, random_state, init_spec, n_threads, recovery=None):
        stats, centers, tied_center = data.initial_statistics(
            self.init_params, int(self.n_components), random_state, self.covariance_type,
            n_threads,
        )
        nk, xk, sk = P.gaussian_parameters(
            stats, centers.astype(np.float64), tied_center.astype(np.float64),
            self.covariance_type, self.reg_covar, data.dtype,
        )
        return self._variational_parameters(nk, xk, sk, data, None, recovery)

    def _variational_parameters(self, nk, xk, sk, data, kernel=None, recovery=None):
        """The posteriors from the Gaussian statistics (nk with 10 eps, the
        components' means xk and covariances sk with reg_covar), as
        scikit-learn's `_m_step`; float64 except means, covariances and
        their factors, in the data's dtype."""
        dtype = data.dtype
        K, D = xk.shape
        prior = float(self.weight_concentration_prior_)
        if self.weight_concentration_prior_type == "dirichlet_process":
            tail = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0))
            weight_concentration = (1.0 + nk, prior + tail)
        else:
            weight_concentration = prior + nk
        kappa0 = float(self.mean_precision_prior_)
        mean_prior = np.asarray(self.mean_prior_, dtype=np.float64)
        mean_precision = kappa0 + nk
        means = (kappa0 * mean_prior + nk[:, np.newaxis] * xk) / mean_precision[:, np.newaxis]
        nu0 = float(self.degrees_of_freedom_prior_)
        covariance_prior = np.asarray(self.covariance_prior_, dtype=np.float64)
        diff = xk - mean_prior
        shrink = nk * kappa0 / mean_precision
        cov_type = self.covariance_type
        if cov_type == "full":
            dof = nu0 + nk
            covariances = (covariance_prior + nk[:, None, None] * sk
                           + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :])
            covariances /= dof[:, None, None]
        elif cov_type == "tied":
            dof = nu0 + nk.sum() / K
            covariances = (covariance_prior + sk * nk.sum() / K
                           + kappa0 / K * np.dot((nk / mean_precision) * diff.T, diff))
            covariances /= dof
        elif cov_type == "diag":
            dof = nu0 + nk
            covariances = covariance_prior + nk[:, None] * (
                sk + (kappa0 / mean_precision)[:, None] * np.square(diff))
            covariances /= dof[:, None]
        else:
            dof = nu0 + nk
            covariances = covariance_prior + nk * (
                sk + kappa0 / mean_precision * np.mean(np.square(diff), axis=1))
            covariances /= dof
        if recovery is not None:
            weights = self._weights_from(weight_concentration)
            _, means, covariances = recovery.repair(data, kernel, nk, weights, means,
                                                    covariances)
        precisions_cholesky = P.compute_precision_cholesky(covariances, cov_type, dtype)
        means, covariances, precisions_cholesky = cast_params(
            (means, covariances, precisions_cholesky), dtype)
        return (weight_concentration, mean_precision, means, dof, covariances,
                precisions_cholesky)

    # ------------------------------------------------------------- E-step

    def _weights_from(self, weight_concentration):
        """E[pi_k] under the weight posterior, normalised (scikit-learn's weights_)."""
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = weight_concentration
            total = a + b
            weights = a / total * np.hstack((1, np.cumprod(b / total)[:-1]))
            return weights / np.sum(weights)
        return weight_concentration / np.sum(weight_concentration)

    def _expected_log_weights(self, weight_concentration):
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = weight_concentration
            digamma_sum = digamma(a + b)
            return (digamma(a) - digamma_sum
                    + np.hstack((0, np.cumsum(digamma(b) - digamma_sum)[:-1])))
        return digamma(weight_concentration) - digamma(np.sum(weight_concentration))

    def _component_constants(self, params):
        """Per-component constants of the variational E-step, standing for
        log w_k in the kernel: E[log pi_k] - D/2 log nu_k
        + (E[log det Lambda_k] - D / kappa_k) / 2 (scikit-learn's
        `_estimate_log_weights` plus the terms `_estimate_log_prob` adds to
        the Gaussian log-density)."""
        weight_concentration, mean_precision, means, dof, _, _ = params
        n_components, n_features = np.shape(means)
        dof = np.asarray(dof, dtype=np.float64)
        log_lambda = n_features * math.log(2.0) + np.sum(
            digamma(0.5 * (dof - np.arange(n_features)[:, np.newaxis])), axis=0)
        constants = (self._expected_log_weights(weight_concentration)
                     - 0.5 * n_features * np.log(dof)
                     + 0.5 * (log_lambda - n_features / mean_precision))
        return np.broadcast_to(constants, (n_components,)).astype(np.float64)

    def _kernel_params(self, params, dtype):
        weights = self._weights_from(params[0])
        return P.KernelParams(weights, params[2], params[5], self.covariance_type, dtype,
                              log_weights=self._component_constants(params))

    # --------------------------------------------------------- iteration

    def _em_iteration(self, data, params, workspace, n_threads, recovery=None):
        """One pass under `params` (the E-step), the variational M-step, and
        scikit-learn's lower bound: the new parameters' prior terms and the
        E-step's entropy."""
        kernel = self._kernel_params(params, data.dtype)
        total = data.statistics(workspace, kernel, n_threads)
        nk, xk, sk = P.gaussian_parameters(
            total, kernel.means.astype(np.float64), kernel.tied_center.astype(np.float64),
            self.covariance_type, self.reg_covar, data.dtype,
        )
        new_params = self._variational_parameters(nk, xk, sk, data, kernel, recovery)
        lower_bound = self._lower_bound(new_params, _entropy(total, kernel))
        return new_params, lower_bound

    def _lower_bound(self, params, entropy):
        """scikit-learn's `_compute_lower_bound` (constants dropped) from the
        E-step's entropy -sum_i w_i sum_k r_ik log r_ik and `params`."""
        weight_concentration, mean_precision, means, dof, _, precisions_cholesky = params
        n_components, n_features = np.shape(means)
        dof = np.asarray(dof, dtype=np.float64)
        log_det_precisions_chol = (
            P.log_det_cholesky(precisions_cholesky, self.covariance_type, n_features)
            - 0.5 * n_features * np.log(dof))
        log_wishart = _log_wishart_norm(dof, log_det_precisions_chol, n_features)
        if self.covariance_type == "tied":
            log_wishart = n_components * float(np.squeeze(log_wishart))
        else:
            log_wishart = float(np.sum(log_wishart))
        if self.weight_concentration_prior_type == "dirichlet_process":
            log_norm_weight = -np.sum(betaln(*weight_concentration))
        else:
            log_norm_weight = (gammaln(np.sum(weight_concentration))
                               - np.sum(gammaln(weight_concentration)))
        return float(entropy - log_wishart - log_norm_weight
                     - 0.5 * n_features * np.sum(np.log(mean_precision)))

    # ------------------------------------------------------------ attributes

    def _get_parameters(self):
        return (self.weight_concentration_, self.mean_precision_, self.means_,
                self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        (self.weight_concentration_, self.mean_precision_, self.means_,
         self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_) = params
        dtype = self.precisions_cholesky_.dtype
        self.weights_ = self._weights_from(self.weight_concentration_).astype(dtype)
        self._fitted_covariance_type = self.covariance_type
        self.precisions_ = P.precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        ).astype(dtype, copy=False)

    def _callback_parameters(self, params):
        dtype = params[2].dtype
        return self._weights_from(params[0]).astype(dtype), params[2], params[4]

    # ------------------------------------------------------------ partial_fit

    # Step sizes of stochastic variational inference: rho_t = (t + TAU)^-KAPPA
    # for the t-th update after the first batch (Hoffman et al. 2013, eq. 26:
    # sum rho = inf, sum rho^2 < inf for KAPPA in (0.5, 1]). KAPPA = 0.6 as
    # GaussianMixture's online EM; TAU = 1 lets the second batch weigh 2^-0.6
    # = 0.66 against the first, whose statistics come from a full fit.
    _SVI_KAPPA = 0.6
    _SVI_TAU = 1.0

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> BayesianGaussianMixture:
        """Update the model with one batch of rows (stochastic variational
        inference, Hoffman, Blei, Wang and Paisley 2013).

        The first call (on an unfitted estimator) fits the batch as ``fit``
        does, priors and initialisation included. Each later call runs one
        variational E-step on the batch under the current posteriors, and
        moves the global variational parameters a step
        ``rho_t = (t + 1) ** -0.6`` towards the batch's estimate: the
        natural parameters the whole stream would give if every row were
        like the batch's. The natural parameters of the Dirichlet (or
        stick-breaking) and Normal-Wishart posteriors are the prior's plus
        the expected sufficient statistics N_k, sum r x and sum r x x^T, so
        the step is taken on the per-row statistics, and the stream's size is
        the number of rows seen so far (the weight of all batches): a stream
        of unknown length scaled to what has arrived, so that after the last
        batch the posteriors count every row once, as the batch fit's do.

        After each update, ``lower_bound_`` is the batch's estimate of the
        stream's lower bound (its entropy term scaled to the rows seen, plus
        the prior terms of the new posteriors), appended to
        ``lower_bounds_``; ``n_iter_`` counts the updates.

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, sample_weight)

    def _start_stream(self, X, sample_weight):
        # the first batch's statistics, in the same transaction as its fit
        with blas_single_threaded():
            self._svi_state = self._svi_start(X, sample_weight)

    def _svi_batch(self, X, sample_weight):
        """(batch weight, per-row statistics about mean_prior_, entropy of the
        batch, kernel) of one E-step pass over the batch under the current
        posteriors."""
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")
        dtype = self.means_.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        n_components = self.means_.shape[0]
        sample_weight = validate_sample_weight(sample_weight, X, 1)
        data = InMemoryData(X, sample_weight)
        kernel = self._kernel_params(self._get_parameters(), dtype)
        total = Workspace(data, self.covariance_type, n_components).accumulate(
            data.X, data.sample_weight, kernel, n_threads_for(X.shape[0]))
        P.check_batch_statistics(total, dtype)
        # fit_weights scaled the weights to a mean of 1: the batch counts its rows.
        weight = float(data.total_weight)
        moments = _raw_moments(total, kernel, np.asarray(self.mean_prior_, dtype=np.float64))
        return weight, tuple(m / weight for m in moments), _entropy(total, kernel), data

    def _svi_start(self, X, sample_weight):
        weight, moments, _, _ = self._svi_batch(X, sample_weight)
        return {"rows": weight, "moments": moments, "updates": 0}

    def _online_update(self, X, sample_weight):
        with blas_single_threaded():
            self._svi_step(X, sample_weight)

    def _svi_step(self, X, sample_weight):
        weight, batch, entropy, data = self._svi_batch(X, sample_weight)
        # A model fitted by fit (no stream yet): the stream starts at this batch.
        state = getattr(self, "_svi_state", None) or {"rows": 0.0, "moments": batch,
                                                      "updates": 0}
        t = state["updates"] + 1
        rho = (t + self._SVI_TAU) ** -self._SVI_KAPPA
        moments = tuple((1.0 - rho) * old + rho * new
                        for old, new in zip(state["moments"], batch))
        rows = state["rows"] + weight
        nk, xk, sk = _gaussian_from_moments(
            moments, rows, np.asarray(self.mean_prior_, dtype=np.float64),
            self.covariance_type, self.reg_covar, data.dtype)
        params = self._variational_parameters(nk, xk, sk, data)
        lower_bound = self._lower_bound(params, entropy * rows / weight)
        self._set_parameters(params)
        self._svi_state = {"rows": rows, "moments": moments, "updates": t}
        self.n_iter_ = self.n_iter_ + 1
        self.lower_bound_ = lower_bound
        self.lower_bounds_ = list(self.lower_bounds_) + [lower_bound]


def _raw_moments(total, kernel, origin):
    """(N_k, sum_i r_ik (x_i - o), second moments about o) from a pass's
    statistics (S1, S2 about the kernel's means; tied's S2 about its centre):
    moments about one fixed origin o add across batches. The second moments
    are per component (K x D x D full, K x D diag / spherical) or, for tied,
    the one D x D matrix over all components."""
    n_components, n_features = kernel.means.shape
    cov_type = kernel.covariance_type
    _, nk, s1, s2 = P.split_stats(total, cov_type, n_components, n_features)
    shift = kernel.means.astype(np.float64) - origin            # c_k - o
    first = s1 + nk[:, None] * shift
    if cov_type == "full":
        cross = s1[:, :, None] * shift[:, None, :]
        second = (s2 + cross + np.swapaxes(cross, 1, 2)
                  + nk[:, None, None] * shift[:, :, None] * shift[:, None, :])
    elif cov_type == "tied":
        g = kernel.tied_center.astype(np.float64) - origin       # g - o
        about_g = first.sum(axis=0) - nk.sum() * g                # sum_i (x_i - g)
        second = (s2 + np.outer(about_g, g) + np.outer(g, about_g)
                  + nk.sum() * np.outer(g, g))
    else:
        second = s2 + 2.0 * shift * s1 + nk[:, None] * shift**2
    return nk.copy(), first, second


def _gaussian_from_moments(moments, rows, origin, covariance_type, reg_covar, dtype):
    """scikit-learn's (nk, xk, sk) from per-row moments about `origin`
    scaled to `rows` rows (nk with 10 eps, sk with reg_covar)."""
    nk_raw, first, second = (m * rows for m in moments)
    nk = nk_raw + 10 * np.finfo(dtype).eps
    offset = first / nk[:, None]                                 # xk - o
    means = origin + offset
    if covariance_type == "full":
        covariances = (second / nk[:, None, None]
                       - offset[:, :, None] * offset[:, None, :])
    elif covariance_type == "tied":
        covariances = (second - (nk[:, None] * offset).T @ offset) / nk.sum()
    else:
        covariances = second / nk[:, None] - offset**2
        if covariance_type == "spherical":
            covariances = covariances.mean(axis=1)
    return nk, means, P.add_to_variances(covariances, covariance_type, reg_covar)


def _entropy(total, kernel):
    """-sum_i w_i sum_k r_ik log r_ik of the pass that summed `total` under `kernel`.

    With log r_ik = c_k - q_ik / 2 - lse_i (c_k the kernel's log_const,
    q_ik the squared Mahalanobis distance to the centre the pass used,
    lse_i the row's log-sum-exp), and sum_k r_ik = 1:
        sum_i w_i sum_k r_ik log r_ik = sum_k N_k c_k - Q / 2 - sum_i w_i lse_i,
    Q = sum_k tr(P_k S2_k) with S2_k the second moment about the kernel's
    means (full, diag, spherical); tied's S2 is about one centre g, so
    Q = tr(P S2_g) - 2 sum_k d_k^T P S1_k - sum_k N_k d_k^T P d_k, d_k = mu_k - g.
    Every term is a statistic the pass already returns (ll = sum w lse).
    """
    n_components, n_features = kernel.means.shape
    cov_type = kernel.covariance_type
    ll, nk, s1, s2 = P.split_stats(total, cov_type, n_components, n_features)
    prec = np.asarray(kernel.prec, dtype=np.float64)
    if cov_type == "full":
        U = prec.reshape(n_components, n_features, n_features)
        quadratic = np.einsum("kde,kdf,kfe->", U, s2, U)
    elif cov_type == "tied":
        U = prec.reshape(n_features, n_features)
        d = kernel.means.astype(np.float64) - kernel.tied_center.astype(np.float64)
        dU = d @ U
        quadratic = (np.einsum("de,df,fe->", U, s2, U)
                     - 2.0 * np.einsum("ke,ke->", dU, s1 @ U)
                     - np.einsum("k,ke,ke->", nk, dU, dU))
    else:
        quadratic = np.einsum("kd,kd->", prec.reshape(n_components, n_features), s2)
    sum_r_log_r = float(nk @ kernel.log_const) - 0.5 * quadratic - ll
    return -sum_r_log_r
