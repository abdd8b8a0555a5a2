"""One EM driver for every mixture estimator of fastgmm.

`BaseMixture` owns what a fit does whatever the model: the entry points
(fit, fit_predict, fit_batches, partial_fit), the data sources (in memory,
memmap, batches, Dask; see `_data`), the n_init loop, the convergence test
and scikit-learn's verbose messages, the callbacks, the degenerate-component
recovery, the one-step publish of a fit (`_transaction`), and inference
(predict, predict_proba, score_samples, score, sample) on the native
kernel's estimate. An estimator supplies only its model:

    _prepare_fit(data)            validate what the model needs before the
                                  loop (user initial parameters, priors)
    _initial_parameters(...)      parameters from the initial statistics
    _em_iteration(...)            one pass of the native core under the
                                  current parameters, its M-step, and the
                                  lower bound of the iteration
    _kernel_params(params, dtype) the E-step's terms laid out for the kernels
    _get_parameters(), _set_parameters(params)
    _callback_parameters(params)  (weights, means, covariances) for callbacks
    _online_update(X, w)          partial_fit after the first batch

The loop is scikit-learn's `BaseMixture.fit_predict`, iteration for
iteration; the N x K arrays it builds are never formed here: an iteration is
one call of the fused pass, which returns N_k, S1, S2 and sum log p(x).
"""

# Annotations stay as written (ArrayLike, not numpy's expansion of it), so
# that help() and inspect.signature show readable signatures.
from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from numbers import Integral, Real
from time import time
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from fastgmm import _parameters as P
from fastgmm._batches import BatchData
from fastgmm._data import (
    InMemoryData,
    Workspace,
    estimate_rows,
    is_dask_array,
    validate_sample_weight,
)
from fastgmm._reliability import (
    DegenerateRecovery,
    check_on_degenerate,
    warn_if_large,
)
from fastgmm._threads import blas_single_threaded, n_threads_for


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
    with _lock_of(estimator):
        shadow = object.__new__(type(estimator))
        shadow.__dict__.update(estimator.__dict__)
        yield shadow
        # The fit's results, with the hyperparameters as they are now: a
        # set_params made during the fit (another thread, a callback) was
        # undone by the copy taken before it (an outside audit).
        fitted = shadow.__dict__
        current = estimator.__dict__
        for name in estimator._get_param_names():
            if name in current:
                fitted[name] = current[name]
        estimator.__dict__ = fitted


def _read_only(array):
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def _multinomial_weights(weights):
    """The component weights as numpy's multinomial takes them: as given
    (scikit-learn's draws) unless the first K - 1 sum above 1 in float64,
    which float32 weights summing to 1 + 1e-8 do and which multinomial
    refuses (an outside audit: sample() failed after a third of float32
    Bayesian fits); then renormalised in float64."""
    p = np.asarray(weights, dtype=np.float64)
    if p[:-1].sum() > 1.0:
        p = p / p.sum()
        if p[:-1].sum() > 1.0:          # the sum's own rounding
            p[:-1] *= 1.0 - 4 * np.finfo(np.float64).eps
    return p


# One re-entrant lock per estimator, held for a whole transaction: two
# partial_fit calls from two threads each started from the same state and
# the later publication dropped the earlier update (an outside audit: 300
# calls from three threads left 99 updates). Kept beside the estimator, not
# on it, so that clone, pickle and get_params never see it.
_LOCKS: "weakref.WeakKeyDictionary[object, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_of(estimator):
    with _LOCKS_GUARD:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = threading.RLock()
        return lock


class IterationInfo(NamedTuple):
    """What a fit's ``callback`` receives after every EM iteration."""

    init: int               # index of the initialisation (0 .. n_init - 1)
    n_init: int             # initialisations this fit runs
    n_iter: int             # iteration within this initialisation (1 .. max_iter)
    max_iter: int
    lower_bound: float      # GaussianMixture: mean log-likelihood before this
                            # iteration's M-step; BayesianGaussianMixture: the
                            # variational lower bound after it (as scikit-learn)
    change: float           # its change from the previous iteration
    converged: bool         # |change| < tol: this initialisation stops here
    weights: np.ndarray     # parameters after this iteration's M-step
    means: np.ndarray
    covariances: np.ndarray


class BaseMixture(DensityMixin, BaseEstimator):
    """The fit loop, data sources and inference shared by fastgmm's mixtures.

    Not an estimator by itself: see :class:`fastgmm.GaussianMixture` and
    :class:`fastgmm.BayesianGaussianMixture`.
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
    }

    # Whether on_degenerate='reseed' re-seeds components left (almost) empty.
    # A Bayesian mixture empties components on purpose: only collapsed ones.
    _RESEED_EMPTY = True

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike,
        y: object = None,
        sample_weight: ArrayLike | None = None,
        callback: Callable[[IterationInfo], object] | None = None,
        on_degenerate: str = "raise",
    ) -> BaseMixture:
        """Estimate the model's parameters (EM, or variational EM for the
        Bayesian mixture).

        Fits ``n_init`` times and keeps the parameters with the largest
        lower bound (the mean log-likelihood for GaussianMixture); each
        trial iterates until the gain is below ``tol`` or ``max_iter`` is
        reached (then a ConvergenceWarning is raised). If the fit fails, the
        estimator is left as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A numpy.memmap is streamed through without a copy; a Dask array
            is fitted block by block on its cluster.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row (beyond scikit-learn). A row of
            weight w counts as w copies of it: weights multiply the
            responsibilities in every sufficient statistic and the
            log-likelihood, and the initialisation honours them (weighted
            k-means, weighted choice of rows for 'random_from_data').
            Weights that are all equal change nothing, and a common scale
            of the weights changes nothing either (they are rescaled to a
            mean of 1).
        callback : callable, default=None
            Called after every EM iteration with an :class:`IterationInfo`
            (initialisation, iteration, lower bound, its change, the
            current parameters), to watch a long fit: for example
            ``fastgmm.ProgressBar()``, a bar on stderr over n_init x max_iter.
        on_degenerate : {'raise', 'reseed'}, default='raise'
            What to do when a component degenerates during EM (beyond
            scikit-learn). 'raise': scikit-learn's behaviour, a ValueError
            when a covariance is not positive definite after ``reg_covar``.
            'reseed': re-seed every component whose covariance collapsed or
            (GaussianMixture only) whose weight went to zero at the sample
            the model explains worst, with the pooled covariance of the
            other components, warn with a
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

    def _partial_fit(self, X, sample_weight):
        """partial_fit's driver: the first call fits the batch as ``fit``
        does; each later call is the estimator's `_online_update`, published
        in one step."""
        # Whether this is the first call is decided under the estimator's
        # lock: two threads' first calls both fitted, and one batch was lost
        # (an outside audit); the second is now the stream's first update.
        with _transaction(self) as shadow:
            if not hasattr(shadow, "means_"):
                shadow._fit(X, sample_weight, False, None, "raise")
                shadow._online_updates = 0
                shadow._start_stream(X, sample_weight)
            else:
                shadow._check_fitted_type()
                shadow._online_update(X, sample_weight)
        return self

    def _start_stream(self, X, sample_weight):
        """What a stream keeps from its first batch (fitted by fit) besides
        the model: nothing here; the Bayesian mixture's statistics."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_batches(
        self,
        batches: Iterable[ArrayLike] | Callable[[], Iterable[ArrayLike]],
        callback: Callable[[IterationInfo], object] | None = None,
        on_degenerate: str = "raise",
    ) -> BaseMixture:
        """Fit on data given as batches of rows, one batch in memory at a time.

        An exact out-of-core fit: every iteration is one pass over all the
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
            yield the same rows. The fit is in float32 when every batch is
            float32, else in float64 (as a fit of the batches'
            concatenation would be).
        callback : callable, default=None
            As in :meth:`fit`.
        on_degenerate : {'raise', 'reseed'}, default='raise'
            As in :meth:`fit`; the worst-explained samples are found by one
            more pass over the batches, only at an iteration that needs it.

        Notes
        -----
        Every init_params makes the same random draws as ``fit`` on the
        concatenated batches. 'kmeans' and 'k-means++' run over the batches
        too: k-means++ takes up to three passes per component (to fetch
        its candidates, for their potentials, and over the rows the chosen
        one comes nearer to), Lloyd one per iteration; besides one batch
        they keep 9 to 13 bytes a row (distances, labels).

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
        if is_dask_array(X):
            return self._fit_dask(X, sample_weight, return_labels, callback, on_degenerate)
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
        sample_weight = validate_sample_weight(sample_weight, X, self.n_components)
        data = InMemoryData(X, sample_weight)
        params = self._run_em(data, callback, on_degenerate)
        if not return_labels:
            # scikit-learn's fit ends with an E-step for fit_predict's labels;
            # fit has no use for them (an N-long array and a pass saved).
            return None
        labels = np.empty(n_samples, dtype=np.int64)
        estimate_rows(X, self._kernel_params(params, X.dtype), self.covariance_type,
                      n_threads_for(n_samples), labels=labels)
        return labels

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
        data = _dask.DaskData(X, sample_weight, int(self.n_components))
        self.__dict__.pop("feature_names_in_", None)
        self.n_features_in_ = data.n_features
        params = self._run_em(data, callback, on_degenerate)
        if not return_labels:
            return None
        return _dask.lazy_estimate(data.X, self._kernel_params(params, data.dtype),
                                   self.covariance_type, "labels")

    def _run_em(self, data, callback=None, on_degenerate="raise"):
        """The n_init / EM loop on validated data (any source); sets the
        fitted attributes and returns the best parameters."""
        check_on_degenerate(on_degenerate)
        init_spec = self._prepare_fit(data)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        n_threads = n_threads_for(data.n_samples)
        n_components = int(self.n_components)   # a numpy int8 would overflow sizes
        if not do_init:
            n_components = self._check_warm_start_parameters(data.n_features)
        warn_if_large(data.max_block_rows, self.covariance_type, n_components, data.n_features)
        workspace = Workspace(data, self.covariance_type, n_components)
        recovery = (
            DegenerateRecovery(self.covariance_type, n_threads, estimate_rows,
                               reseed_empty=self._RESEED_EMPTY)
            if on_degenerate == "reseed" else None
        )

        with blas_single_threaded():
            best, max_lower_bound = self._fit_inits(
                data, n_init, do_init, random_state, init_spec, workspace, n_threads,
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
        # A fit starts any online stream (partial_fit) afresh: the Bayesian
        # stream's state, the Gaussian one's update count (its step size).
        self.__dict__.pop("_svi_state", None)
        self.__dict__.pop("_online_updates", None)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = lower_bounds
        return params

    def _fit_inits(self, data, n_init, do_init, random_state, init_spec, workspace,
                   n_threads, callback=None, recovery=None):
        """scikit-learn's n_init loop; returns the best (params, n_iter,
        lower_bounds, converged) and its lower bound."""
        max_lower_bound = -np.inf
        best = None
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                if recovery is not None:
                    recovery.at(init, 0)
                params = self._initial_parameters(data, random_state, init_spec, n_threads,
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
                    # read-only views: the arrays are the fit's own (the final
                    # model's after the last iteration), and writing into them
                    # changed the model without its precisions (an outside audit)
                    weights, means, covariances = (
                        _read_only(a) for a in self._callback_parameters(params))
                    callback(IterationInfo(
                        init=init, n_init=n_init, n_iter=n_iter, max_iter=self.max_iter,
                        lower_bound=lower_bound, change=change, converged=converged,
                        weights=weights, means=means, covariances=covariances,
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
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{fitted_features} features as input (warm_start continues from the "
                "previous fit). Pass data with the same features, or set "
                "warm_start=False to start a new fit."
            )
        expected = P.PRECISION_SHAPES[self.covariance_type](fitted_components, n_features)
        if self.precisions_cholesky_.shape != expected:
            raise ValueError(
                f"covariance_type={self.covariance_type!r} does not match the previous "
                f"fit's precisions of shape {self.precisions_cholesky_.shape}; "
                "warm_start cannot change the covariance type. Set warm_start=False."
            )
        return fitted_components

    # ------------------------------------------------------------ inference

    def _lazy_estimate(self, X, output):
        """predict / predict_proba / score_samples of a Dask array: a lazy Dask array."""
        from fastgmm import _dask

        check_is_fitted(self)
        self._check_fitted_type()
        X = _dask.check_array(X)
        if X.shape[0] == 0:
            # as numpy input is refused (an empty Dask array gave empty results)
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a "
                             f"minimum of 1 is required by {type(self).__name__}.")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        dtype = np.result_type(X.dtype, self.means_.dtype)
        return _dask.lazy_estimate(X, self._kernel_params(self._get_parameters(), dtype),
                                   self.covariance_type, output)

    def _check_fitted_type(self):
        """The fitted arrays are of the covariance_type set now: set_params
        after a fit (or before a refit, from another thread) must not make
        inference read them as another type."""
        current = self.covariance_type
        fitted = getattr(self, "_fitted_covariance_type", None)
        precisions = np.shape(self.precisions_cholesky_)
        n_components, n_features = np.shape(self.means_)
        shape = P.PRECISION_SHAPES.get(current) if isinstance(current, str) else None
        if (fitted is not None and fitted != current) or shape is None \
                or shape(n_components, n_features) != precisions:
            raise ValueError(
                f"covariance_type is {current!r} but the model was fitted with "
                f"{repr(fitted) if fitted is not None else 'other'} covariances (precisions of "
                f"shape {precisions}): set_params changed it after the fit; set it back or "
                "fit again"
            )

    def _validate_for_inference(self, X) -> np.ndarray:
        check_is_fitted(self)
        self._check_fitted_type()
        # scikit-learn's inference validates with dtype="numeric": strings are
        # refused there (fit converts them, as here), and so they are here
        X = validate_data(self, X, reset=False, order="C")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)      # integers, bool, float16: as before
        dtype = np.result_type(X.dtype, self.means_.dtype)
        return np.ascontiguousarray(X, dtype=dtype)

    def _estimate(self, X, **outputs):
        estimate_rows(X, self._kernel_params(self._get_parameters(), X.dtype),
                      self.covariance_type, n_threads_for(X.shape[0]), **outputs)

    def score_samples(self, X: ArrayLike) -> NDArray[np.floating]:
        """Log-likelihood of each sample under the model (for the Bayesian
        mixture, scikit-learn's: the log-sum-exp of the variational E-step's
        log-probabilities).

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            A lazy Dask array when X is a Dask array.
        """
        if is_dask_array(X):
            return self._lazy_estimate(X, "log_prob")
        X = self._validate_for_inference(X)
        log_prob = np.empty(X.shape[0], dtype=X.dtype)
        self._estimate(X, log_prob=log_prob)
        return log_prob

    def _total_log_likelihood(self, X, sample_weight, ratios=False):
        """(sum of w_i log p(x_i), the number of samples sum w_i); with
        `ratios` (Dask only: score's mean), the weights as ratios to the
        largest."""
        log_prob = self.score_samples(X)
        if is_dask_array(log_prob):
            from fastgmm import _dask

            return _dask.total_log_likelihood(log_prob, sample_weight, ratios)
        if sample_weight is None:
            return float(np.sum(log_prob, dtype=np.float64)), log_prob.shape[0]
        sample_weight = validate_sample_weight(sample_weight, log_prob[:, None], 1)
        return float(np.dot(sample_weight, log_prob)), float(sample_weight.sum())

    def score(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> float:
        """Per-sample average log-likelihood of X under the model
        (weighted by ``sample_weight`` when given); computed when X is a Dask array."""
        if is_dask_array(X):
            log_likelihood, n_samples = self._total_log_likelihood(X, sample_weight,
                                                                   ratios=True)
            return log_likelihood / n_samples
        log_prob = self.score_samples(X)
        if sample_weight is None:
            return float(np.mean(log_prob))
        sample_weight = validate_sample_weight(sample_weight, log_prob[:, None], 1)
        # The average depends on the weights' ratios only: taken in [0, 1], so
        # that weights near the float64 limit cannot overflow their sum (inf /
        # inf = NaN) and subnormal ones (5e-324) are not rounded to a few bits.
        sample_weight = sample_weight / sample_weight.max()
        return float(np.average(log_prob, weights=sample_weight))

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """Most probable component of each sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            A lazy Dask array when X is a Dask array.
        """
        if is_dask_array(X):
            return self._lazy_estimate(X, "labels")
        X = self._validate_for_inference(X)
        labels = np.empty(X.shape[0], dtype=np.int64)
        self._estimate(X, labels=labels)
        return labels

    def predict_proba(self, X: ArrayLike) -> NDArray[np.floating]:
        """Posterior probability of each component for each sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            A lazy Dask array when X is a Dask array.
        """
        if is_dask_array(X):
            return self._lazy_estimate(X, "resp")
        X = self._validate_for_inference(X)
        # The fitted components, not n_components (which set_params may change).
        resp = np.empty((X.shape[0], self.means_.shape[0]), dtype=X.dtype)
        self._estimate(X, resp=resp)
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
        self._check_fitted_type()
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (self.n_components)
            )
        _, n_features = self.means_.shape
        rng = check_random_state(self.random_state)
        n_samples_comp = rng.multinomial(n_samples, _multinomial_weights(self.weights_))
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
        from fastgmm._io import save_model

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
