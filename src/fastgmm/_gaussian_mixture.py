"""fastgmm.GaussianMixture: scikit-learn's estimator on a native EM core.

The Python layer validates input once, runs the n_init / convergence loop
exactly as scikit-learn's BaseMixture.fit_predict does, and calls the
native core once per EM iteration (one fused pass over X that returns the
sufficient statistics). A fit runs on a shadow copy of the estimator's
state, which replaces the estimator's in one step only when the fit
succeeds (see `_transaction`).
"""

# Annotations stay as written (ArrayLike, not numpy's expansion of it), so
# that help() and inspect.signature show readable signatures.
from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from numbers import Integral, Real
from time import time
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastgmm import _parameters as P
from fastgmm._batches import BatchData
from fastgmm._initialization import initial_statistics
from fastgmm._kernels._dispatch import em_pass, estimate
from fastgmm._reliability import (
    DegenerateRecovery,
    check_on_degenerate,
    LargeMemoryWarning,
    far_row_responsibilities,
    warn_if_large,
)
from fastgmm._threads import blas_single_threaded, n_threads_for

_PRECISION_SHAPES = {
    "full": lambda K, D: (K, D, D),
    "tied": lambda K, D: (D, D),
    "diag": lambda K, D: (K, D),
    "spherical": lambda K, D: (K,),
}


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


class GaussianMixture(DensityMixin, BaseEstimator):
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
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random", "random_from_data", "k-means++"})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
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

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike,
        y: object = None,
        sample_weight: ArrayLike | None = None,
        callback: Callable[[IterationInfo], object] | None = None,
        on_degenerate: str = "raise",
    ) -> GaussianMixture:
        """Estimate model parameters with the EM algorithm.

        Fits ``n_init`` times and keeps the parameters with the largest
        mean log-likelihood; each trial iterates until the gain is below
        ``tol`` or ``max_iter`` is reached (then a ConvergenceWarning is
        raised). If the fit fails, the estimator is left as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row (beyond scikit-learn). A row of
            weight w counts as w copies of it: weights multiply the
            responsibilities in every sufficient statistic and the
            log-likelihood, and the initialisation honours them (weighted
            k-means, weighted choice of rows for 'random_from_data').
            Weights that are all equal change nothing.
        callback : callable, default=None
            Called after every EM iteration with an :class:`IterationInfo`
            (initialisation, iteration, mean log-likelihood, its change, the
            current parameters), to watch a long fit: for example
            ``fastgmm.ProgressBar()``, a bar on stderr over n_init x max_iter.
        on_degenerate : {'raise', 'reseed'}, default='raise'
            What to do when a component degenerates during EM (beyond
            scikit-learn). 'raise': scikit-learn's behaviour, a ValueError
            when a covariance is not positive definite after ``reg_covar``.
            'reseed': re-seed every component whose covariance collapsed or
            whose weight went to zero at the sample the model explains worst,
            with the pooled covariance of the other components, warn with a
            :class:`fastgmm.ComponentRecoveryWarning` naming the component
            and the iteration, and go on.

        Returns
        -------
        self : object
        """
        self._fit_or_restore(X, sample_weight, return_labels=False, callback=callback,
                             on_degenerate=on_degenerate)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(
        self,
        X: ArrayLike,
        y: object = None,
        sample_weight: ArrayLike | None = None,
        callback: Callable[[IterationInfo], object] | None = None,
        on_degenerate: str = "raise",
    ) -> NDArray[np.int64]:
        """Fit the model to X and return the most probable component of each row.

        ``sample_weight``, ``callback`` and ``on_degenerate`` as in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self._fit_or_restore(X, sample_weight, return_labels=True, callback=callback,
                                    on_degenerate=on_degenerate)

    def _fit_or_restore(self, X, sample_weight, return_labels, callback=None,
                        on_degenerate="raise"):
        with _transaction(self) as shadow:
            return shadow._fit(X, sample_weight, return_labels, callback, on_degenerate)

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
        if not hasattr(self, "means_"):
            self._fit_or_restore(X, sample_weight, return_labels=False)
            self._online_updates = 0
            return self
        with _transaction(self) as shadow:
            shadow._online_update(X, sample_weight)
        return self

    def _online_update(self, X, sample_weight):
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")
        dtype = self.means_.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        n_components, n_features = self.means_.shape
        sample_weight = _validate_sample_weight(sample_weight, X, 1)
        data = _InMemoryData(X, sample_weight)
        workspace = _Workspace(data, self.covariance_type, n_components)
        kernel = P.KernelParams(self.weights_, self.means_, self.precisions_cholesky_,
                                self.covariance_type, dtype)
        with blas_single_threaded():
            total = workspace.accumulate(X, sample_weight, kernel, n_threads_for(X.shape[0]))
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
        self._set_parameters(_cast_params(
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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_batches(
        self,
        batches: Iterable[ArrayLike] | Callable[[], Iterable[ArrayLike]],
        callback: Callable[[IterationInfo], object] | None = None,
        on_degenerate: str = "raise",
    ) -> GaussianMixture:
        """Fit on data given as batches of rows, one batch in memory at a time.

        An exact out-of-core EM: every iteration is one pass over all the
        batches, and the result equals ``fit`` on the concatenated batches
        from the same initialisation (to rounding). Use it for data larger
        than memory: files read chunk by chunk, a list of memory maps, etc.
        (A single ``numpy.memmap`` can also go straight to ``fit``, which
        streams through it without copying.)

        Parameters
        ----------
        batches : list of array-like, or callable
            Either a collection of arrays of shape (n_i, n_features) that can
            be iterated more than once, or a function returning a fresh
            iterator of such arrays at each call. The first pass validates
            every batch (shape, dtype, finite values); later passes must
            yield the same rows. float32 batches are fitted in float32.
        callback : callable, default=None
            As in :meth:`fit`.
        on_degenerate : {'raise', 'reseed'}, default='raise'
            As in :meth:`fit`; the worst-explained samples are found by one
            more pass over the batches, only at an iteration that needs it.

        Notes
        -----
        init_params 'random_from_data' and 'random' make the same random
        draws as ``fit``; 'kmeans' and 'k-means++' need the whole data and
        raise a ValueError here: pass weights_init, means_init and
        precisions_init instead (for example from a k-means on a sample).

        Returns
        -------
        self : object
        """
        with _transaction(self) as shadow:
            shadow._fit_batches(batches, callback, on_degenerate)
        return self

    def _fit_batches(self, batches, callback, on_degenerate):
        data = BatchData(batches)
        if data.n_samples < max(2, self.n_components):
            raise ValueError(
                "Expected n_samples >= max(2, n_components) "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {data.n_samples}"
            )
        self.__dict__.pop("feature_names_in_", None)
        self.n_features_in_ = data.n_features
        self._run_em(data, callback, on_degenerate)

    def _fit(self, X, sample_weight, return_labels, callback=None, on_degenerate="raise"):
        if _is_dask_array(X):
            return self._fit_dask(X, sample_weight, return_labels, callback, on_degenerate)
        self._warn_if_memmap_is_loaded(X)
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, order="C"
        )
        n_samples, n_features = X.shape
        if n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )
        sample_weight = _validate_sample_weight(sample_weight, X, self.n_components)
        data = _InMemoryData(X, sample_weight)
        params = self._run_em(data, callback, on_degenerate)
        if not return_labels:
            # scikit-learn's fit ends with an E-step for fit_predict's labels;
            # fit has no use for them (an N-long array and a pass saved).
            return None
        labels = np.empty(n_samples, dtype=np.int64)
        _estimate(X, params, self.covariance_type, n_threads_for(n_samples), labels=labels)
        return labels

    # Initialisations that hold all of X (and temporaries of its size) in
    # memory, and the size of a memory-mapped X above which a fit warns first.
    _IN_MEMORY_INITS = ("kmeans", "k-means++")
    _MEMMAP_WARNING_BYTES = 64 * 2**20

    def _warn_if_memmap_is_loaded(self, X):
        """Warn before an initialisation reads a memory-mapped X into memory.

        EM itself streams through a memmap, but 'kmeans' and 'k-means++' run
        on the whole array (k-means centres a copy of it): a file larger than
        memory would end in an out-of-memory kill, with no word of why.
        """
        if (self.init_params not in self._IN_MEMORY_INITS or not _is_memory_mapped(X)
                or X.nbytes <= self._MEMMAP_WARNING_BYTES):
            return
        if self.warm_start and hasattr(self, "converged_") or all(
            p is not None for p in (self.weights_init, self.means_init, self.precisions_init)
        ):
            return      # every initial parameter given: no initialisation runs
        warnings.warn(
            f"X is memory-mapped ({X.nbytes / 2**20:.1f} MiB), and "
            f"init_params={self.init_params!r} needs all of it in memory (k-means "
            "works on a centred copy). For data larger than memory use "
            "init_params='random_from_data' or 'random', which stream through the "
            "file, or pass weights_init, means_init and precisions_init (for "
            "example from a k-means on a sample of the rows).",
            LargeMemoryWarning,
            stacklevel=6,    # fit, via _fit_context, _fit_or_restore, _fit
        )

    def _fit_dask(self, X, sample_weight, return_labels, callback, on_degenerate):
        """fit on a Dask array: one Dask graph per EM iteration (see fastgmm._dask)."""
        from fastgmm import _dask

        X = _dask.check_array(X)
        n_samples = X.shape[0]
        if n_samples < max(2, self.n_components):
            raise ValueError(
                "Expected n_samples >= max(2, n_components) "
                f"but got n_components = {self.n_components}, n_samples = {n_samples}"
            )
        data = _dask.DaskData(X, sample_weight, self.n_components)
        self.__dict__.pop("feature_names_in_", None)
        self.n_features_in_ = data.n_features
        params = self._run_em(data, callback, on_degenerate)
        if not return_labels:
            return None
        return _dask.lazy_estimate(data.X, params, self.covariance_type, "labels")

    def _run_em(self, data, callback=None, on_degenerate="raise"):
        """The n_init / EM loop on validated data (in memory or in batches);
        sets the fitted attributes and returns the best parameters."""
        check_on_degenerate(on_degenerate)
        user_init = self._check_user_init(data.n_features)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        n_threads = n_threads_for(data.n_samples)
        n_components = self.n_components
        if not do_init:
            n_components = self._check_warm_start_parameters(data.n_features)
        warn_if_large(data.max_block_rows, self.covariance_type, n_components, data.n_features)
        workspace = _Workspace(data, self.covariance_type, n_components)
        recovery = (
            DegenerateRecovery(self.covariance_type, n_threads, _estimate)
            if on_degenerate == "reseed" else None
        )

        with blas_single_threaded():
            best, max_lower_bound = self._fit_inits(
                data, n_init, do_init, random_state, user_init, workspace, n_threads,
                callback, recovery,
            )
        params, n_iter, lower_bounds, converged = best
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
            )

        self._set_parameters(params)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = lower_bounds
        return params

    def _fit_inits(self, data, n_init, do_init, random_state, user_init, workspace, n_threads,
                   callback=None, recovery=None):
        """scikit-learn's n_init loop; returns the best (params, n_iter,
        lower_bounds, converged) and its lower bound."""
        max_lower_bound = -np.inf
        best = None
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                if recovery is not None:
                    recovery.at(init, 0)
                params = self._initial_parameters(data, random_state, user_init, n_threads,
                                                  recovery)
                lower_bound = -np.inf
            else:
                params = self._get_parameters()
                lower_bound = self.lower_bound_
            current_lower_bounds = []
            if self.max_iter == 0:
                best = (params, 0, [], False)
                continue
            converged = False
            for n_iter in range(1, self.max_iter + 1):
                prev_lower_bound = lower_bound
                if recovery is not None:
                    recovery.at(init, n_iter)
                params, lower_bound = self._em_iteration(data, params, workspace, n_threads,
                                                         recovery)
                current_lower_bounds.append(lower_bound)
                change = lower_bound - prev_lower_bound
                self._print_verbose_msg_iter_end(n_iter, change)
                # Parameters with a component just re-seeded are untried: not converged.
                if abs(change) < self.tol and not (recovery is not None and recovery.reseeded):
                    converged = True
                if callback is not None:
                    callback(IterationInfo(
                        init=init, n_init=n_init, n_iter=n_iter, max_iter=self.max_iter,
                        lower_bound=lower_bound, change=change, converged=converged,
                        weights=params[0], means=params[1], covariances=params[2],
                    ))
                if converged:
                    break
            self._print_verbose_msg_init_end(lower_bound, converged)
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best = (params, n_iter, current_lower_bounds, converged)
        return best, max_lower_bound

    def _check_warm_start_parameters(self, n_features):
        """The fitted parameters a warm start continues from must fit X and
        the covariance type; returns their number of components."""
        fitted_components, fitted_features = self.means_.shape
        if fitted_features != n_features:
            raise ValueError(
                f"X has {n_features} features, but GaussianMixture is expecting "
                f"{fitted_features} features as input (warm_start continues from the "
                "previous fit). Pass data with the same features, or set "
                "warm_start=False to start a new fit."
            )
        expected = _PRECISION_SHAPES[self.covariance_type](fitted_components, n_features)
        if self.precisions_cholesky_.shape != expected:
            raise ValueError(
                f"covariance_type={self.covariance_type!r} does not match the previous "
                f"fit's precisions of shape {self.precisions_cholesky_.shape}; "
                "warm_start cannot change the covariance type. Set warm_start=False."
            )
        return fitted_components

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
                self.init_params, self.n_components, random_state,
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
        return _cast_params((weights, means, covariances, precisions_cholesky), dtype)

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
        return _cast_params((new_weights, new_means, covariances, precisions_cholesky), dtype), float(lower_bound)

    def _get_parameters(self):
        return (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params
        self.precisions_ = P.precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        ).astype(self.precisions_cholesky_.dtype, copy=False)

    # ------------------------------------------------------------ inference

    def _lazy_estimate(self, X, output):
        """predict / predict_proba / score_samples of a Dask array: a lazy Dask array."""
        from fastgmm import _dask

        check_is_fitted(self)
        X = _dask.check_array(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but GaussianMixture is expecting "
                f"{self.n_features_in_} features as input."
            )
        return _dask.lazy_estimate(X, self._get_parameters(), self.covariance_type, output)

    def _validate_for_inference(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")
        dtype = np.result_type(X.dtype, self.means_.dtype)
        return np.ascontiguousarray(X, dtype=dtype)

    def score_samples(self, X: ArrayLike) -> NDArray[np.floating]:
        """Log-likelihood of each sample under the model.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            A lazy Dask array when X is a Dask array.
        """
        if _is_dask_array(X):
            return self._lazy_estimate(X, "log_prob")
        X = self._validate_for_inference(X)
        log_prob = np.empty(X.shape[0], dtype=X.dtype)
        _estimate(X, self._get_parameters(), self.covariance_type,
                  n_threads_for(X.shape[0]), log_prob=log_prob)
        return log_prob

    def score(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> float:
        """Per-sample average log-likelihood of X under the model
        (weighted by ``sample_weight`` when given); computed when X is a Dask array."""
        if _is_dask_array(X):
            log_likelihood, n_samples = self._total_log_likelihood(X, sample_weight)
            return log_likelihood / n_samples
        log_prob = self.score_samples(X)
        if sample_weight is None:
            return float(np.mean(log_prob))
        sample_weight = _validate_sample_weight(sample_weight, log_prob[:, None], 1)
        return float(np.average(log_prob, weights=sample_weight))

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """Most probable component of each sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            A lazy Dask array when X is a Dask array.
        """
        if _is_dask_array(X):
            return self._lazy_estimate(X, "labels")
        X = self._validate_for_inference(X)
        labels = np.empty(X.shape[0], dtype=np.int64)
        _estimate(X, self._get_parameters(), self.covariance_type,
                  n_threads_for(X.shape[0]), labels=labels)
        return labels

    def predict_proba(self, X: ArrayLike) -> NDArray[np.floating]:
        """Posterior probability of each component for each sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            A lazy Dask array when X is a Dask array.
        """
        if _is_dask_array(X):
            return self._lazy_estimate(X, "resp")
        X = self._validate_for_inference(X)
        # The fitted components, not n_components (which set_params may change).
        resp = np.empty((X.shape[0], self.means_.shape[0]), dtype=X.dtype)
        _estimate(X, self._get_parameters(), self.covariance_type,
                  n_threads_for(X.shape[0]), resp=resp)
        return resp

    def sample(self, n_samples: int = 1) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Draw samples from the fitted mixture (the same draws as scikit-learn).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (self.n_components)
            )
        _, n_features = self.means_.shape
        rng = check_random_state(self.random_state)
        n_samples_comp = rng.multinomial(n_samples, self.weights_)
        if self.covariance_type == "full":
            X = np.vstack(
                [
                    rng.multivariate_normal(mean, covariance, int(sample))
                    for (mean, covariance, sample) in zip(
                        self.means_, self.covariances_, n_samples_comp
                    )
                ]
            )
        elif self.covariance_type == "tied":
            X = np.vstack(
                [
                    rng.multivariate_normal(mean, self.covariances_, int(sample))
                    for (mean, sample) in zip(self.means_, n_samples_comp)
                ]
            )
        else:
            X = np.vstack(
                [
                    mean + rng.standard_normal(size=(sample, n_features)) * np.sqrt(covariance)
                    for (mean, covariance, sample) in zip(
                        self.means_, self.covariances_, n_samples_comp
                    )
                ]
            )
        y = np.concatenate(
            [np.full(sample, j, dtype=np.int64) for j, sample in enumerate(n_samples_comp)]
        )
        return np.asarray(X, dtype=np.float64), y

    def _n_parameters(self):
        n_components, n_features = self.means_.shape
        return P.n_parameters(self.covariance_type, n_components, n_features)

    def _total_log_likelihood(self, X, sample_weight):
        """(sum of w_i log p(x_i), the number of samples sum w_i)."""
        log_prob = self.score_samples(X)
        if _is_dask_array(log_prob):
            from fastgmm import _dask

            return _dask.total_log_likelihood(log_prob, sample_weight)
        if sample_weight is None:
            return float(np.sum(log_prob, dtype=np.float64)), log_prob.shape[0]
        sample_weight = _validate_sample_weight(sample_weight, log_prob[:, None], 1)
        return float(np.dot(sample_weight, log_prob)), float(sample_weight.sum())

    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion of the model on X (lower is better).

        With ``sample_weight``, the log-likelihood is weighted and the number
        of samples is the sum of the weights.
        """
        if sample_weight is None and not _is_dask_array(X):
            n_samples = np.shape(X)[0]  # X may be a list, as for score
            return -2 * self.score(X) * n_samples + self._n_parameters() * math.log(n_samples)
        log_likelihood, n_samples = self._total_log_likelihood(X, sample_weight)
        return -2 * log_likelihood + self._n_parameters() * math.log(n_samples)

    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion of the model on X (lower is better),
        with the log-likelihood weighted by ``sample_weight`` when given."""
        if sample_weight is None and not _is_dask_array(X):
            return -2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()
        log_likelihood, _ = self._total_log_likelihood(X, sample_weight)
        return -2 * log_likelihood + 2 * self._n_parameters()

    # ---------------------------------------------------------------- saving

    def save(self, path):
        """Write the fitted model to a pickle-free file; read it back with
        :func:`fastgmm.load`.

        The file is an .npz archive (numpy arrays plus a JSON header with the
        parameters and the fitted scalars), written under the name given and
        replaced atomically (a new file gets 0666 less the umask, a replaced
        one keeps its mode). Loading it executes no code and gives a model
        whose attributes are bitwise equal to this one's. To store a
        ``make_pipeline(StandardScaler(), GaussianMixture(...))`` with its
        standardisation, use :func:`fastgmm.save`.

        Parameters
        ----------
        path : str, path-like or binary file object

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        """
        from fastgmm._io import save_model  # _io imports this module

        save_model(self, path)

    # ---------------------------------------------------------------- verbose

    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose == 1:
            print("Initialization %d" % n_init)
        elif self.verbose >= 2:
            print("Initialization %d" % n_init)
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                cur_time = time()
                print(
                    "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                    % (n_iter, cur_time - self._iter_prev_time, diff_ll)
                )
                self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, init_has_converged):
        converged_msg = "converged" if init_has_converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(
                f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound"
                f" {lb:.5f}."
            )


@contextmanager
def _transaction(estimator):
    """Run a fit on a shadow of `estimator` and publish its state in one step.

    The block receives a new instance of the same class sharing a shallow
    copy of the estimator's attributes; the fit sets its attributes there.
    When the block completes, the shadow's attribute dict replaces the
    estimator's in a single assignment; on any exception (Ctrl-C included)
    the estimator is never touched. A predict in another thread therefore
    sees the old model or the new one, never a mixture of both, never an
    unfitted estimator in between (clearing and refilling the dict, as this
    once did, left such a window).
    """
    shadow = object.__new__(type(estimator))
    shadow.__dict__.update(estimator.__dict__)
    yield shadow
    estimator.__dict__ = shadow.__dict__


class IterationInfo(NamedTuple):
    """What a fit's ``callback`` receives after every EM iteration."""

    init: int               # index of the initialisation (0 .. n_init - 1)
    n_init: int             # initialisations this fit runs
    n_iter: int             # iteration within this initialisation (1 .. max_iter)
    max_iter: int
    lower_bound: float      # mean log-likelihood before this iteration's M-step
    change: float           # its change from the previous iteration
    converged: bool         # |change| < tol: this initialisation stops here
    weights: np.ndarray     # parameters after this iteration's M-step
    means: np.ndarray
    covariances: np.ndarray


class _Workspace:
    """The statistics buffer, allocated once per fit (sized for the largest
    block of rows) and reused by every pass."""

    def __init__(self, data, covariance_type, n_components):
        n_slots = P.n_slots_for(data.max_block_rows, covariance_type, n_components,
                                data.n_features)
        self.covariance_type = covariance_type
        # MemoryError naming the size and the way out (fewer components,
        # 'diag') rather than numpy's bare one, or none at all
        self.stats = P.allocate_stats(n_slots, covariance_type, n_components,
                                      data.n_features)
        self.no_weights = np.empty(0, dtype=np.float64)
        self.no_resp = np.empty((0, n_components), dtype=data.dtype)

    def accumulate(self, X, sample_weight, kernel, n_threads):
        """Summed sufficient statistics of one block of rows."""
        n_slots = P.n_slots_for(X.shape[0], self.covariance_type, self.no_resp.shape[1],
                                X.shape[1])
        stats = self.stats[:n_slots]
        stats.fill(0.0)
        em_pass(
            X, self.no_weights if sample_weight is None else sample_weight, *kernel.args(),
            self.no_resp, kernel.code, stats, n_threads,
        )
        return stats.sum(axis=0)


def fit_weights(sample_weight):
    """The weights a fit runs on: None when they are all equal, else the
    weights rescaled to a mean of 1.

    A fit must not depend on a common scale of the weights. Equal weights
    change nothing, so the unweighted path runs (bitwise the unweighted fit).
    Other weights are brought to a mean of one row's weight: scikit-learn's
    M-step adds 10 eps (absolute, in rows) to every N_k, which is no longer
    negligible when the weights are tiny (1e-20), and float32 k-means would
    round weights below 1e-45 to 0. `score`, `bic` and `aic` keep the
    weights as given.
    """
    if sample_weight is None:
        return None
    largest = sample_weight.max()
    if sample_weight.min() == largest:
        return None
    weights = sample_weight / largest          # in [0, 1]: the sum cannot overflow
    weights *= weights.shape[0] / weights.sum()
    return weights


class _InMemoryData:
    """X (validated, C-ordered) and its sample weights, as one block.
    The weights are those of `fit_weights` (None when all equal, else of
    mean 1)."""

    def __init__(self, X, sample_weight):
        sample_weight = fit_weights(sample_weight)
        self.X = X
        self.sample_weight = sample_weight
        self.n_samples, self.n_features = X.shape
        self.max_block_rows = self.n_samples
        self.dtype = X.dtype
        self.total_weight = (
            float(self.n_samples) if sample_weight is None else float(sample_weight.sum())
        )

    def passes(self):
        yield self.X, self.sample_weight

    def statistics(self, workspace, kernel, n_threads):
        """Summed sufficient statistics of one EM pass under `kernel`."""
        return workspace.accumulate(self.X, self.sample_weight, kernel, n_threads)

    def initial_statistics(self, init_params, n_components, random_state, covariance_type,
                           n_threads):
        return initial_statistics(
            self.X, init_params, n_components, random_state, covariance_type, n_threads,
            self.sample_weight,
        )


def _is_memory_mapped(X):
    """Whether X is a numpy.memmap or a view of one (or of an mmap.mmap)."""
    import mmap

    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return True
        X = X.base
    return isinstance(X, mmap.mmap)


def _is_dask_array(X):
    """Whether X is a dask.array.Array, without importing dask: if dask.array
    was never imported, X cannot be one."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(X, dask_array.Array)


def _validate_sample_weight(sample_weight, X, n_components) -> np.ndarray | None:
    """None, or a C-contiguous float64 array of finite non-negative weights,
    one per row of X, with at least n_components of them positive."""
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    n_positive = int(np.count_nonzero(sample_weight))
    if n_positive < n_components:
        raise ValueError(
            f"sample_weight has only {n_positive} positive weights, fewer than "
            f"n_components = {n_components}: each component needs a sample of its own. "
            "Lower n_components or give more samples a positive weight."
        )
    return np.ascontiguousarray(sample_weight)


def _cast_params(params, dtype):
    return tuple(np.asarray(p, dtype=dtype) for p in params)


def _estimate(X, params, covariance_type, n_threads, labels=None, log_prob=None, resp=None):
    """Run the chunked E-step kernel on X, filling whichever outputs are given.

    Rows so far from every component that their log-densities overflow the
    dtype's range (log p(x) = -inf) get their labels and probabilities from
    `far_row_responsibilities` (the nearest component wins); their log p(x)
    stays -inf, the value rounded to the dtype.
    """
    weights, means, _, precisions_cholesky = params
    dtype = X.dtype
    kernel = P.KernelParams(weights, means, precisions_cholesky, covariance_type, dtype)
    n_components = means.shape[0]
    if log_prob is None and (labels is not None or resp is not None):
        # To find the rows beyond the float range: N more numbers than asked for.
        row_log_prob = np.empty(X.shape[0], dtype=dtype)
    else:
        row_log_prob = log_prob
    with blas_single_threaded():
        estimate(
            X, *kernel.args(), kernel.code,
            labels if labels is not None else np.empty(0, dtype=np.int64),
            row_log_prob if row_log_prob is not None else np.empty(0, dtype=dtype),
            resp if resp is not None else np.empty((0, n_components), dtype=dtype),
            n_threads,
        )
    if labels is None and resp is None:
        return
    far = np.flatnonzero(np.isneginf(row_log_prob))
    if far.size == 0:
        return
    n_far = far.size
    far_labels = np.empty(n_far, dtype=np.int64)
    far_resp = np.empty((n_far, n_components))
    if dtype != np.float64:
        # Beyond float32's range, perhaps not float64's: the same kernel in float64.
        far_log_prob = np.empty(n_far)
        _estimate(X[far].astype(np.float64), params, covariance_type, 1,
                  labels=far_labels, log_prob=far_log_prob, resp=far_resp)
        if log_prob is not None:
            with np.errstate(over="ignore"):     # rounds to -inf in float32
                log_prob[far] = far_log_prob
    else:
        far_resp = far_row_responsibilities(X[far], weights, means, precisions_cholesky,
                                            covariance_type)
        far_labels = far_resp.argmax(axis=1)
    if resp is not None:
        resp[far] = far_resp
    if labels is not None:
        labels[far] = far_labels
