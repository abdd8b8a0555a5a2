"""Model selection: fit every (n_components, covariance_type) pair and keep
the one with the lowest BIC or AIC.

`select_model` returns the best fitted estimator and a `SelectionTable` of
every fit (criteria, mean log-likelihood, convergence, iterations, time),
usable as columns of numpy arrays, as rows of dicts, as text, or as a
pandas DataFrame when pandas is installed.
"""

import itertools
import math
import time
import warnings
from collections.abc import Iterable
from numbers import Integral
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state

from fastgmm._gaussian_mixture import GaussianMixture
from fastgmm._gaussian_mixture import _validate_sample_weight
from fastgmm._parameters import COVARIANCE_TYPES, CollapsedComponentError

if TYPE_CHECKING:
    import pandas

CRITERIA = ("bic", "aic")
# The most numbers of components one selection takes (each a fit per covariance type).
MAX_CANDIDATES = 10_000

# Parameters select_model sets itself for every fit.
_SET_BY_SELECTION = ("n_components", "covariance_type", "random_state", "n_init")


class SelectionTable:
    """The result of every fit in a model selection, one row per fit.

    Columns (``table.columns``): n_components, covariance_type, bic, aic,
    mean_log_likelihood, converged, n_iter, fit_time (seconds). Rows are in
    fit order; ``table.best_index`` is the row of the selected model.

    ``table["bic"]`` is a numpy array (``covariance_type`` an array of str),
    ``table[i]`` the i-th row as a dict, ``len(table)`` the number of fits,
    iterating yields the rows as dicts, ``str(table)`` is an aligned text
    table with the best row marked, and ``table.to_pandas()`` a DataFrame.
    """

    columns = ("n_components", "covariance_type", "bic", "aic", "mean_log_likelihood",
               "converged", "n_iter", "fit_time")

    _DTYPES = {"n_components": np.int64, "covariance_type": str, "bic": np.float64,
               "aic": np.float64, "mean_log_likelihood": np.float64, "converged": bool,
               "n_iter": np.int64, "fit_time": np.float64}

    def __init__(self, rows: list, best_index: int, criterion: str = "bic"):
        self._columns = {
            name: np.array([row[name] for row in rows], dtype=self._DTYPES[name])
            for name in self.columns
        }
        for column in self._columns.values():
            column.flags.writeable = False
        self.best_index = int(best_index)
        self.criterion = criterion

    def __len__(self) -> int:
        return len(self._columns["n_components"])

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self._columns:
                raise KeyError(f"no column {key!r}; the columns are {self.columns}")
            return self._columns[key]
        if isinstance(key, Integral):
            n_rows = len(self)
            if not -n_rows <= key < n_rows:
                raise IndexError(f"row {key} out of range for a table of {n_rows} rows")
            return {name: self._columns[name][key].item() for name in self.columns}
        raise TypeError(f"index a SelectionTable by column name or row number, not {key!r}")

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def best(self) -> dict:
        """The row of the selected model."""
        return self[self.best_index]

    def to_pandas(self) -> "pandas.DataFrame":
        """The table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "SelectionTable.to_pandas needs pandas: pip install pandas "
                "(or use the table directly: table['bic'] is a numpy array)"
            ) from None
        return pd.DataFrame({name: self._columns[name] for name in self.columns})

    def __str__(self) -> str:
        formats = {"n_components": "{}", "covariance_type": "{}", "bic": "{:.2f}",
                   "aic": "{:.2f}", "mean_log_likelihood": "{:.5f}", "converged": "{}",
                   "n_iter": "{}", "fit_time": "{:.3f}"}
        headers = ("", "K", "covariance", "BIC", "AIC", "mean log-lik", "converged",
                   "n_iter", "time (s)")
        lines = [headers]
        for i, row in enumerate(self):
            mark = "*" if i == self.best_index else ""
            lines.append((mark,) + tuple(formats[name].format(row[name])
                                         for name in self.columns))
        widths = [max(len(line[j]) for line in lines) for j in range(len(headers))]
        left_aligned = {0, 2}
        text = []
        for line in lines:
            cells = [cell.ljust(w) if j in left_aligned else cell.rjust(w)
                     for j, (cell, w) in enumerate(zip(line, widths))]
            text.append("  ".join(cells).rstrip())
        text.append(f"* lowest {self.criterion.upper()}")
        return "\n".join(text)

    def __repr__(self) -> str:
        return f"<SelectionTable: {len(self)} fits, best row {self.best_index}>\n{self}"


class ModelSelection(NamedTuple):
    """What :func:`select_model` returns: ``best, table = select_model(X)``."""

    best_estimator: GaussianMixture
    table: SelectionTable


def select_model(
    X: ArrayLike,
    n_components: Iterable[int] | int = range(1, 10),
    covariance_types: Iterable[str] | str = ("full", "tied", "diag", "spherical"),
    criterion: str = "bic",
    *,
    sample_weight: ArrayLike | None = None,
    random_state: int | np.random.RandomState | None = None,
    n_init: int = 1,
    **gmm_params: Any,
) -> ModelSelection:
    """Fit a GaussianMixture for every number of components and covariance
    type, and keep the one with the lowest information criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data (float32 data is fitted in float32).
    n_components : iterable of int or int, default=range(1, 10)
        The numbers of components to try, each at least 1 and at most
        n_samples.
    covariance_types : iterable of str or str, default=all four
        Among 'full', 'tied', 'diag', 'spherical'.
    criterion : {'bic', 'aic'}, default='bic'
        The criterion to minimise, computed on X (weighted by
        ``sample_weight`` when given).
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to every fit and to the criteria, as in
        :meth:`GaussianMixture.fit`.
    random_state : int, RandomState instance or None, default=None
        Every combination is fitted with the same seed, so that they are
        compared from equivalent random draws and the best one can be refit
        exactly: an int is used as is; a RandomState instance (or None, for
        numpy's global one) gives one integer seed drawn once, before the
        first fit. The best estimator's ``random_state`` is that seed.
    n_init : int, default=1
        Initialisations per combination (the best of them is kept).
    **gmm_params
        Other :class:`GaussianMixture` parameters for every fit (``tol``,
        ``max_iter``, ``reg_covar``, ``init_params``, ...).

    Returns
    -------
    ModelSelection
        A named tuple ``(best_estimator, table)``: the fitted estimator with
        the lowest criterion, and a :class:`SelectionTable` of all fits in
        fit order (covariance types in the given order, each over the given
        numbers of components).

    Raises
    ------
    ValueError
        For an unknown criterion or covariance type, empty or repeated
        ranges, numbers of components below 1 or above n_samples, bad
        sample weights or GaussianMixture parameter values.
    TypeError
        For a keyword that is not a GaussianMixture parameter.

    Notes
    -----
    A combination whose fit fails because a component collapses (too few
    distinct points for its covariance) is kept in the table with NaN criteria and a
    warning; if every fit fails the last error is raised. Fits that do not
    converge are reported in the table's ``converged`` column and in one
    ConvergenceWarning listing them.
    """
    return _select_model(X, n_components, covariance_types, criterion,
                         sample_weight=sample_weight, random_state=random_state,
                         n_init=n_init, **gmm_params)


def _select_model(X, n_components, covariance_types, criterion, *, sample_weight,
                  random_state, n_init, on_fit=None, callback=None, **gmm_params):
    """select_model with two hooks for the command line: `on_fit(i, n_fits, row)`
    after each combination, `callback` passed to every fit."""
    if not isinstance(criterion, str) or criterion.lower() not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    criterion = criterion.lower()
    covariance_types = _check_covariance_types(covariance_types)
    components = _check_n_components(n_components)
    if isinstance(n_init, bool) or not isinstance(n_init, Integral) or n_init < 1:
        raise ValueError(f"n_init must be an integer >= 1, got {n_init!r}")
    _check_gmm_params(gmm_params, n_init)

    if not hasattr(X, "columns"):
        # Validate once; a DataFrame goes to every fit as is, to keep its
        # feature names on the estimator.
        X = check_array(X, dtype=[np.float64, np.float32], order="C", ensure_min_samples=2)
    n_samples = X.shape[0]
    too_many = [k for k in components if k > n_samples]
    if too_many:
        raise ValueError(
            f"n_components {_few(too_many)} exceed the number of samples ({n_samples}): "
            "each component needs at least one sample. Try fewer components."
        )
    # Checked once here, so that bad weights are one clear error rather
    # than a failure of every fit.
    _validate_sample_weight(sample_weight, X, max(components))
    seed = _one_seed(random_state)

    rows, errors, not_converged = [], [], []
    best, best_index, best_value = None, None, math.inf
    n_fits = len(covariance_types) * len(components)
    for covariance_type in covariance_types:
        for k in components:
            gmm = GaussianMixture(n_components=k, covariance_type=covariance_type,
                                  random_state=seed, n_init=n_init, **gmm_params)
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    gmm.fit(X, sample_weight=sample_weight, callback=callback)
            except CollapsedComponentError as error:
                fit_time = time.perf_counter() - start
                errors.append((k, covariance_type, error))
                row = dict(n_components=k, covariance_type=covariance_type, bic=math.nan,
                           aic=math.nan, mean_log_likelihood=math.nan, converged=False,
                           n_iter=0, fit_time=fit_time)
            else:
                fit_time = time.perf_counter() - start
                row = dict(
                    n_components=k, covariance_type=covariance_type,
                    bic=gmm.bic(X, sample_weight=sample_weight),
                    aic=gmm.aic(X, sample_weight=sample_weight),
                    mean_log_likelihood=gmm.score(X, sample_weight=sample_weight),
                    converged=bool(gmm.converged_), n_iter=int(gmm.n_iter_),
                    fit_time=fit_time,
                )
                if not gmm.converged_ and gmm.max_iter > 0:
                    not_converged.append(f"K={k} {covariance_type}")
                value = row[criterion]
                if value < best_value or best is None:
                    best, best_index, best_value = gmm, len(rows), value
            rows.append(row)
            if on_fit is not None:
                on_fit(len(rows), n_fits, row)

    if best is None:
        k, covariance_type, error = errors[-1]
        raise ValueError(
            f"every fit failed; the last (K={k}, {covariance_type}): {error}"
        ) from error
    if errors:
        failed = ", ".join(f"K={k} {c}" for k, c, _ in errors)
        warnings.warn(
            f"{len(errors)} of {n_fits} fits failed and are left out of the selection "
            f"(NaN in the table): {failed}. First error: {errors[0][2]}",
            UserWarning, stacklevel=3,
        )
    if not_converged:
        warnings.warn(
            f"{len(not_converged)} of {n_fits} fits did not converge "
            f"({', '.join(not_converged)}); increase max_iter or tol.",
            ConvergenceWarning, stacklevel=3,
        )
    return ModelSelection(best, SelectionTable(rows, best_index, criterion))


def _check_covariance_types(covariance_types):
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    try:
        covariance_types = tuple(covariance_types)
    except TypeError:
        raise ValueError(
            f"covariance_types must be a string or an iterable of strings among "
            f"{COVARIANCE_TYPES}, got {covariance_types!r}"
        ) from None
    if not covariance_types:
        raise ValueError(f"covariance_types is empty: give at least one of {COVARIANCE_TYPES}")
    unknown = [c for c in covariance_types if c not in COVARIANCE_TYPES]
    if unknown:
        raise ValueError(
            f"unknown covariance type(s) {unknown}; choose among {COVARIANCE_TYPES}"
        )
    if len(set(covariance_types)) != len(covariance_types):
        raise ValueError(f"covariance_types has repeated entries: {list(covariance_types)}")
    return covariance_types


def _few(values, shown=10):
    """A list for a message: its first `shown` entries, then how many in all."""
    values = list(values)
    if len(values) <= shown:
        return str(values)
    return f"[{', '.join(map(str, values[:shown]))}, ...] ({len(values)} in all)"


def _check_n_components(n_components):
    if isinstance(n_components, Integral) and not isinstance(n_components, bool):
        n_components = (n_components,)
    try:
        # at most MAX_CANDIDATES taken, so that range(1, 10**9) is an error, not all memory
        components = tuple(itertools.islice(n_components, MAX_CANDIDATES + 1))
    except TypeError:
        raise ValueError(
            f"n_components must be an int or an iterable of ints, got {n_components!r}"
        ) from None
    if len(components) > MAX_CANDIDATES:
        raise ValueError(f"n_components has more than {MAX_CANDIDATES} entries (one fit "
                         "each, times the covariance types): give fewer")
    if not components:
        raise ValueError("n_components is empty: give at least one number of components")
    bad = [k for k in components
           if isinstance(k, bool) or not isinstance(k, Integral) or k < 1]
    if bad:
        raise ValueError(f"n_components must be integers >= 1, got {_few(bad)}")
    if len(set(components)) != len(components):
        raise ValueError(f"n_components has repeated entries: {_few(components)}")
    return tuple(int(k) for k in components)


def _check_gmm_params(gmm_params, n_init):
    allowed = set(GaussianMixture().get_params()) - set(_SET_BY_SELECTION)
    unknown = sorted(set(gmm_params) - allowed)
    if unknown:
        raise TypeError(
            f"unexpected GaussianMixture parameter(s) {unknown}; select_model passes on "
            f"{sorted(allowed)}"
        )
    # Bad values (tol=-1, init_params='foo') raise here, before any fit.
    GaussianMixture(n_init=n_init, **gmm_params)._validate_params()


def _one_seed(random_state):
    """An int used for every fit: the int given, or one drawn once."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
