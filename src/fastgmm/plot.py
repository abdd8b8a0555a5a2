"""Plots of a fitted Gaussian mixture (matplotlib, an optional extra).

``pip install "fastgmm[plot]"``, then::

    import fastgmm.plot as gp

    gp.ellipses(gmm, X)                 # components over the data
    gp.responsibilities(gmm, X)         # soft assignment of every point as colour
    gp.convergence(gmm)                 # mean log-likelihood per EM iteration
    gp.criterion(table)                 # BIC/AIC against n_components
    gp.animate_em(X, "em.gif")          # EM from its initialisation, as a GIF

Every function draws on ``ax`` (a new figure's axes when None) and returns
the Axes (``animate_em``: the Figure); none calls ``plt.show()``. They work
with any estimator that has scikit-learn's GaussianMixture attributes
(``weights_``, ``means_``, ``covariances_``, ``covariance_type``): both of
fastgmm's, and scikit-learn's own estimators.

Scatter plots draw at most ``max_points`` rows of X (default 5000), a
uniform random subsample drawn with a fixed seed, so that a plot of a
million rows stays quick and the same from run to run; labels and
responsibilities are computed for the drawn rows only.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    import matplotlib
    from matplotlib.patches import Ellipse
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'fastgmm.plot needs matplotlib, an optional dependency: pip install "fastgmm[plot]"'
    ) from exc

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

__all__ = ["animate_em", "convergence", "criterion", "ellipses", "responsibilities"]

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_DEFAULT_MAX_POINTS = 5000
_SUBSAMPLE_SEED = 0


# ------------------------------------------------------------------ helpers


def _new_axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _check_mixture(gmm) -> None:
    """A fitted mixture with scikit-learn's attributes, or a clear error."""
    if not hasattr(gmm, "covariance_type") or not hasattr(gmm, "fit"):
        raise TypeError(
            f"expected a fitted GaussianMixture, got {type(gmm).__name__}; "
            "fit a fastgmm.GaussianMixture (or scikit-learn's) first."
        )
    check_is_fitted(gmm, ["weights_", "means_", "covariances_"])
    if gmm.covariance_type not in _COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type {gmm.covariance_type!r} is not one of {_COVARIANCE_TYPES}"
        )


def _check_features(features, n_features: int) -> tuple[int, int]:
    """Two different column indices of the model's features."""
    try:
        i, j = (operator.index(f) for f in features)
    except (TypeError, ValueError):
        raise ValueError(
            f"features must be a pair of column indices such as (0, 1), got {features!r}"
        ) from None
    for f in (i, j):
        if not 0 <= f < n_features:
            raise ValueError(
                f"feature index {f} is out of range: the model has {n_features} features, "
                f"so features must be between 0 and {n_features - 1}."
            )
    if i == j:
        raise ValueError(
            f"features must be two different columns, got ({i}, {j}); "
            "pass a pair such as (0, 1)."
        )
    return i, j


def _model_rows(X_given, X: np.ndarray, rows):
    """The drawn rows as the model should see them: a DataFrame keeps its
    column names (so predict does not warn about missing feature names)."""
    if hasattr(X_given, "iloc") and hasattr(X_given, "columns"):
        return X_given.iloc[rows]
    return X[rows]


def _check_X(X, n_features: int, name: str = "X") -> np.ndarray:
    X = check_array(X, dtype=[np.float64, np.float32])
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features but the model was fitted on {n_features}."
        )
    return X


def _check_n_std(n_std) -> tuple[float, ...]:
    values = (n_std,) if np.isscalar(n_std) else tuple(n_std)
    if not values or not all(
        isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v > 0
        for v in values
    ):
        raise ValueError(
            f"n_std must be a positive number or a sequence of them, such as (1, 2, 3); "
            f"got {n_std!r}"
        )
    return tuple(float(v) for v in values)


def _subsample(n_samples: int, max_points: int) -> np.ndarray | slice:
    """The rows a scatter draws: all of them, or max_points chosen uniformly
    at random with a fixed seed (kept in their original order)."""
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) \
            or max_points < 1:
        raise ValueError(f"max_points must be a positive integer, got {max_points!r}")
    if n_samples <= max_points:
        return slice(None)
    rng = np.random.default_rng(_SUBSAMPLE_SEED)
    return np.sort(rng.choice(n_samples, size=int(max_points), replace=False))


def _component_colors(n_components: int) -> np.ndarray:
    """One RGBA row per component: a qualitative palette, a continuous one past 20."""
    if n_components <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return np.array([cmap(k) for k in range(n_components)])
    if n_components <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return np.array([cmap(k) for k in range(n_components)])
    return matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n_components))


def _projected_covariances(covariances, covariance_type: str, n_components: int,
                           features: tuple[int, int]) -> np.ndarray:
    """The (n_components, 2, 2) covariances of the two chosen features: the
    marginal covariance of those features under each component."""
    cov = np.asarray(covariances, dtype=np.float64)
    i, j = features
    if covariance_type == "full":
        return cov[:, [i, j]][:, :, [i, j]]
    if covariance_type == "tied":
        return np.broadcast_to(cov[np.ix_([i, j], [i, j])], (n_components, 2, 2)).copy()
    out = np.zeros((n_components, 2, 2))
    if covariance_type == "diag":
        out[:, 0, 0], out[:, 1, 1] = cov[:, i], cov[:, j]
    else:  # spherical
        out[:, 0, 0] = out[:, 1, 1] = cov
    return out


def _full_covariances(covariances, covariance_type: str, n_components: int,
                      n_features: int) -> np.ndarray:
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (n_components, n_features, n_features))
    if covariance_type == "diag":
        return cov[:, :, None] * np.eye(n_features)
    return cov[:, None, None] * np.eye(n_features)


def _ellipse_geometry(cov2: np.ndarray) -> tuple[float, float, float]:
    """(width, height, angle in degrees) of the 1-standard-deviation ellipse
    {x : x^T cov2^-1 x = 1}: axes along the eigenvectors, half-lengths the
    square roots of the eigenvalues."""
    eigenvalues, eigenvectors = np.linalg.eigh(cov2)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    major = eigenvectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return 2.0 * np.sqrt(eigenvalues[1]), 2.0 * np.sqrt(eigenvalues[0]), angle


def _relative_weights(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    return weights / max(float(weights.max()), np.finfo(float).tiny)


# Opacities follow the square root of each weight relative to the heaviest:
# the components of a GaussianMixture (relative weights 0.2 to 1) keep
# outlines of 0.45 to 1, while those a Bayesian mixture leaves unused (1e-3
# to 1e-2 of the heaviest) fade to 0.05-0.1 (and their fills to ~0.02): they
# sit together at the prior, so their ellipses stack, and faint ones still
# read as faint when several are drawn on each other.


def _weight_alpha(weights: np.ndarray) -> np.ndarray:
    """Fill opacity per component, growing with its weight (0.33 the heaviest)."""
    return 0.33 * np.sqrt(np.clip(_relative_weights(weights), 0.0, 1.0))


def _edge_alpha(weights: np.ndarray) -> np.ndarray:
    """Outline (and centre marker) opacity per component: 1 for the heaviest
    (components of equal weight stay opaque), 0.02 at weight 0."""
    return 0.02 + 0.98 * np.sqrt(np.clip(_relative_weights(weights), 0.0, 1.0))


def _faded(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The RGBA rows of `colors` with the opacities `alpha`."""
    faded = np.array(colors, dtype=np.float64)
    faded[:, 3] = alpha
    return faded


def _draw_centres(ax, means2, colors, weights) -> None:
    """A cross at each component's mean, faded as its outline."""
    alpha = _edge_alpha(weights)
    ax.scatter(means2[:, 0], means2[:, 1], marker="X", s=70, c=_faded(colors, alpha),
               edgecolors=_faded(np.zeros((len(alpha), 4)), alpha), linewidths=0.8,
               zorder=4)


def _axis_names(gmm, features) -> list[str]:
    names = getattr(gmm, "feature_names_in_", None)
    return [str(names[f]) if names is not None else f"feature {f}" for f in features]


def _log_responsibilities(X, weights, means, covariances, covariance_type) -> np.ndarray:
    """log p(k | x) for a few rows, computed directly (numpy/scipy), for
    parameters that need not belong to a fitted estimator."""
    from scipy.stats import multivariate_normal

    n_components, n_features = np.shape(means)
    full = _full_covariances(covariances, covariance_type, n_components, n_features)
    log_prob = np.column_stack([
        np.log(weights[k]) + multivariate_normal(means[k], full[k], allow_singular=True).logpdf(X)
        for k in range(n_components)
    ]).reshape(len(X), n_components)
    return log_prob - logsumexp(log_prob, axis=1, keepdims=True)


def _point_colors(labels: np.ndarray, n_components: int) -> np.ndarray:
    """Component colours for labels in range(n_components); otherwise one
    palette colour per distinct label value."""
    labels = np.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer) and labels.size and (
        labels.min() >= 0 and labels.max() < n_components
    ):
        return _component_colors(n_components)[labels]
    values, codes = np.unique(labels, return_inverse=True)
    return _component_colors(len(values))[codes.ravel()]


def _draw_ellipses(ax, means2, cov2, weights, n_std, colors) -> list:
    patches = []
    fill_alpha = _weight_alpha(weights)
    edge_alpha = _edge_alpha(weights)
    for k in range(len(means2)):
        width, height, angle = _ellipse_geometry(cov2[k])
        for n in n_std:
            patch = Ellipse(
                xy=means2[k], width=n * width, height=n * height, angle=angle,
                facecolor=(*colors[k][:3], fill_alpha[k] / len(n_std) * 1.5),
                edgecolor=(*colors[k][:3], edge_alpha[k]), linewidth=1.5, zorder=3,
            )
            ax.add_patch(patch)
            patches.append(patch)
    return patches


# ------------------------------------------------------------------ ellipses


def ellipses(
    gmm,
    X=None,
    *,
    features: Sequence[int] = (0, 1),
    n_std: float | Sequence[float] = (1, 2, 3),
    ax=None,
    labels=None,
    max_points: int = _DEFAULT_MAX_POINTS,
    point_size: float = 6.0,
):
    """Draw each component as ellipses over a scatter of the data.

    Each component k is drawn as one ellipse per entry of ``n_std``: the
    curve at Mahalanobis distance n from its mean under the marginal
    covariance of the two chosen features (any covariance type; for D > 2
    this is the projection of the component onto those two features). The
    fill, the outline and the cross marking the mean grow more opaque with
    the component's weight, so the components a BayesianGaussianMixture
    leaves unused (weights near 0) fade. The points of X (at most ``max_points``, a fixed
    random subsample) are coloured by the component that ``gmm.predict``
    assigns them, or by ``labels`` when given.

    For a model of one feature, draws the mixture's density instead: a
    histogram of X, each weighted component and their sum (``features`` and
    ``n_std`` are then not used).

    Parameters
    ----------
    gmm : fitted GaussianMixture or BayesianGaussianMixture
    X : array-like of shape (n_samples, n_features), default=None
        Data to scatter under the ellipses; None draws the ellipses alone.
    features : pair of int, default=(0, 1)
        The columns drawn on the x and y axes.
    n_std : float or sequence of float, default=(1, 2, 3)
        The Mahalanobis radii of the ellipses, in standard deviations.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's axes when None.
    labels : array-like of shape (n_samples,), default=None
        Colours for the points (for example the true classes) instead of
        ``gmm.predict(X)``.
    max_points : int, default=5000
        At most this many points are drawn.
    point_size : float, default=6
        Marker size of the points.

    Returns
    -------
    ax : matplotlib Axes
    """
    _check_mixture(gmm)
    means = np.asarray(gmm.means_, dtype=np.float64)
    n_components, n_features = means.shape
    X_given = X
    if X is not None:
        X = _check_X(X, n_features)
    if labels is not None:
        if X is None:
            raise ValueError("labels colour the points of X: pass X too.")
        labels = np.asarray(labels)
        if labels.shape != (X.shape[0],):
            raise ValueError(
                f"labels must have one entry per row of X ({X.shape[0]}), "
                f"got shape {labels.shape}"
            )
    if n_features == 1:
        return _density_1d(gmm, X, ax, max_points)
    features = _check_features(features, n_features)
    n_std = _check_n_std(n_std)
    ax = _new_axes(ax)
    colors = _component_colors(n_components)

    if X is not None and X.shape[0]:
        rows = _subsample(X.shape[0], max_points)
        shown = X[rows]
        point_labels = (labels[rows] if labels is not None
                        else gmm.predict(_model_rows(X_given, X, rows)))
        ax.scatter(shown[:, features[0]], shown[:, features[1]], s=point_size,
                   c=_point_colors(point_labels, n_components), alpha=0.6,
                   linewidths=0, zorder=2)

    cov2 = _projected_covariances(gmm.covariances_, gmm.covariance_type, n_components,
                                  features)
    means2 = means[:, features]
    _draw_ellipses(ax, means2, cov2, gmm.weights_, n_std, colors)
    _draw_centres(ax, means2, colors, gmm.weights_)
    ax.autoscale_view()
    xname, yname = _axis_names(gmm, features)
    ax.set_xlabel(xname)
    ax.set_ylabel(yname)
    ax.set_title(f"{n_components} components, {gmm.covariance_type} covariance")
    return ax


def _density_1d(gmm, X, ax, max_points):
    """The one-feature case of ellipses(): histogram, weighted components, sum."""
    from scipy.stats import norm

    ax = _new_axes(ax)
    n_components = gmm.means_.shape[0]
    means = np.asarray(gmm.means_, dtype=np.float64)[:, 0]
    variances = _projected_covariances(gmm.covariances_, gmm.covariance_type,
                                       n_components, (0, 0))[:, 0, 0]
    stds = np.sqrt(variances)
    weights = np.asarray(gmm.weights_, dtype=np.float64)
    lo, hi = float(np.min(means - 4 * stds)), float(np.max(means + 4 * stds))
    if X is not None and X.shape[0]:
        shown = X[_subsample(X.shape[0], max_points), 0]
        lo, hi = min(lo, float(shown.min())), max(hi, float(shown.max()))
        ax.hist(shown, bins="auto", density=True, color="0.8", zorder=1)
    grid = np.linspace(lo, hi, 400)
    colors = _component_colors(n_components)
    parts = weights[:, None] * norm.pdf(grid[None, :], means[:, None], stds[:, None])
    for k in range(n_components):
        ax.plot(grid, parts[k], color=colors[k], linewidth=1.5, zorder=3)
        ax.axvline(means[k], color=colors[k], linestyle=":", linewidth=1, zorder=2)
    ax.plot(grid, parts.sum(axis=0), color="black", linewidth=2, label="mixture", zorder=4)
    ax.set_xlabel(_axis_names(gmm, (0,))[0])
    ax.set_ylabel("density")
    ax.set_title(f"{n_components} components, {gmm.covariance_type} covariance")
    ax.legend(loc="upper right")
    return ax


# ---------------------------------------------------------- responsibilities


def responsibilities(
    gmm,
    X,
    *,
    features: Sequence[int] = (0, 1),
    ax=None,
    mode: str = "mix",
    max_points: int = _DEFAULT_MAX_POINTS,
    point_size: float = 8.0,
):
    """Colour every point by its responsibilities p(k | x).

    Parameters
    ----------
    gmm : fitted GaussianMixture
    X : array-like of shape (n_samples, n_features)
    features : pair of int, default=(0, 1)
        The columns drawn on the x and y axes (responsibilities use all of them).
    ax : matplotlib Axes, default=None
    mode : {'mix', 'max'}, default='mix'
        'mix': each point's colour is the average of the component colours
        weighted by its responsibilities, so points between components take
        a blended colour. 'max': the colour of its most responsible
        component, with an opacity that grows from 0 at a uniform
        responsibility 1/K to 1 at certainty.
    max_points : int, default=5000
        At most this many points are drawn.
    point_size : float, default=8

    Returns
    -------
    ax : matplotlib Axes
    """
    _check_mixture(gmm)
    n_components, n_features = np.shape(gmm.means_)
    X_given, X = X, _check_X(X, n_features)
    if n_features == 1:
        raise ValueError(
            "responsibilities() draws two features; this model has one. "
            "Use ellipses(gmm, X) for a density plot of a one-feature model."
        )
    features = _check_features(features, n_features)
    if mode not in ("mix", "max"):
        raise ValueError(f"mode must be 'mix' or 'max', got {mode!r}")
    ax = _new_axes(ax)
    colors = _component_colors(n_components)
    rows = _subsample(X.shape[0], max_points)
    shown = X[rows]
    proba = gmm.predict_proba(_model_rows(X_given, X, rows)).astype(np.float64)
    point_colors = _responsibility_colors(proba, colors, mode)
    ax.scatter(shown[:, features[0]], shown[:, features[1]], s=point_size, c=point_colors,
               linewidths=0, zorder=2)
    means2 = np.asarray(gmm.means_, dtype=np.float64)[:, features]
    _draw_centres(ax, means2, colors, gmm.weights_)
    xname, yname = _axis_names(gmm, features)
    ax.set_xlabel(xname)
    ax.set_ylabel(yname)
    ax.set_title("responsibilities" + (" (blended colours)" if mode == "mix"
                                       else " (opacity: max responsibility)"))
    return ax


def _responsibility_colors(proba: np.ndarray, colors: np.ndarray, mode: str) -> np.ndarray:
    n_samples, n_components = proba.shape
    out = np.ones((n_samples, 4))
    if mode == "mix":
        out[:, :3] = proba @ colors[:, :3]
    else:
        best = proba.argmax(axis=1)
        out[:, :3] = colors[best, :3]
        if n_components > 1:
            certainty = (proba.max(axis=1) - 1 / n_components) / (1 - 1 / n_components)
            out[:, 3] = np.clip(certainty, 0.0, 1.0)
    return np.clip(out, 0.0, 1.0)


# ----------------------------------------------------------------- criterion


def _column(table, key) -> np.ndarray:
    try:
        return np.asarray(table[key])
    except (KeyError, IndexError, ValueError, TypeError):
        raise ValueError(
            f"the table has no column {key!r}; criterion() needs 'n_components', "
            "'covariance_type' and the criteria to draw (a fastgmm.select_model "
            "table, a dict of arrays or a pandas DataFrame)."
        ) from None


def criterion(
    table: Any,
    *,
    criteria: str | Sequence[str] = ("bic", "aic"),
    ax=None,
):
    """Information criteria against the number of components.

    One line per covariance type and criterion (colour: covariance type;
    solid BIC, dashed AIC, dotted any other), and a star at the lowest
    (best) value of each criterion.

    Parameters
    ----------
    table : fastgmm.select_model's table, a mapping of arrays or a DataFrame
        Indexing it by ``"n_components"``, ``"covariance_type"`` and each
        criterion gives one entry per fitted model. Non-finite values (a
        failed fit) are left out.
    criteria : str or sequence of str, default=("bic", "aic")
        The columns to draw; lower is better.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    criteria = (criteria,) if isinstance(criteria, str) else tuple(criteria)
    if not criteria:
        raise ValueError("criteria must name at least one column, such as 'bic'")
    n_components = _column(table, "n_components").astype(np.float64)
    covariance_type = _column(table, "covariance_type").astype(str)
    values = {name: _column(table, name).astype(np.float64) for name in criteria}
    for name, column in values.items():
        if column.shape != n_components.shape or covariance_type.shape != n_components.shape:
            raise ValueError(
                f"the table's columns differ in length: n_components has "
                f"{n_components.size} rows, covariance_type {covariance_type.size}, "
                f"{name} {column.size}."
            )
    if n_components.size == 0:
        raise ValueError("the table is empty: nothing to draw")
    ax = _new_axes(ax)
    types = [t for t in _COVARIANCE_TYPES if t in set(covariance_type)]
    types += sorted(set(covariance_type) - set(types))
    type_colors = dict(zip(types, _component_colors(len(types))))
    styles = {"bic": "-", "aic": "--"}
    for name, column in values.items():
        style = styles.get(name, ":")
        for cov_type in types:
            rows = (covariance_type == cov_type) & np.isfinite(column)
            order = np.argsort(n_components[rows], kind="stable")
            ax.plot(n_components[rows][order], column[rows][order], style, marker="o",
                    markersize=3, color=type_colors[cov_type],
                    label=f"{name.upper()} {cov_type}")
        finite = np.isfinite(column)
        if finite.any():
            best = int(np.flatnonzero(finite)[np.argmin(column[finite])])
            ax.plot(n_components[best], column[best], marker="*", markersize=16,
                    color=type_colors[covariance_type[best]], markeredgecolor="black",
                    linestyle="none", zorder=5,
                    label=f"best {name.upper()}: K={n_components[best]:g}, "
                          f"{covariance_type[best]}")
    ax.set_xlabel("number of components")
    ax.set_ylabel(" / ".join(name.upper() for name in criteria) + " (lower is better)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small", ncol=2 if len(types) * len(criteria) > 4 else 1)
    return ax


# --------------------------------------------------------------- convergence


def convergence(gmm, *, ax=None):
    """The mean log-likelihood at each EM iteration of the kept fit.

    Draws ``gmm.lower_bounds_`` against the iteration number, and on a
    second (log) y axis the absolute change from one iteration to the next
    with ``gmm.tol`` as a horizontal line: EM stops at the first change
    below it. The title says whether and when the fit converged.

    Parameters
    ----------
    gmm : fitted GaussianMixture
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
        The axes of the log-likelihood curve (the change is on ``ax``'s twin).
    """
    _check_mixture(gmm)
    if not hasattr(gmm, "lower_bounds_"):
        raise ValueError(
            f"{type(gmm).__name__} has no lower_bounds_ (scikit-learn adds it in 1.7); "
            "fit a fastgmm.GaussianMixture to draw its convergence."
        )
    bounds = np.asarray(gmm.lower_bounds_, dtype=np.float64)
    if bounds.size == 0:
        raise ValueError("the fit ran no EM iteration (max_iter=0): nothing to draw")
    ax = _new_axes(ax)
    iterations = np.arange(1, bounds.size + 1)
    ax.plot(iterations, bounds, marker="o", markersize=3, color="tab:blue",
            label="mean log-likelihood")
    converged = bool(getattr(gmm, "converged_", False))
    ax.plot(iterations[-1], bounds[-1], marker="*", markersize=14,
            color="tab:green" if converged else "tab:red", markeredgecolor="black",
            linestyle="none", zorder=5,
            label="converged" if converged else "stopped at max_iter")
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood (lower bound)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    tol = getattr(gmm, "tol", None)
    if bounds.size > 1:
        change = np.abs(np.diff(bounds))
        positive = change > 0
        twin = ax.twinx()
        twin.semilogy(iterations[1:][positive], change[positive], linestyle="--",
                      color="tab:gray", marker=".", label="|change|")
        if tol is not None and tol > 0:
            twin.axhline(tol, color="tab:orange", linestyle=":", label=f"tol = {tol:g}")
        twin.set_ylabel("|change| of the mean log-likelihood")
        twin.legend(loc="center right", fontsize="small")
    ax.legend(loc="lower right", fontsize="small")
    n_iter = getattr(gmm, "n_iter_", bounds.size)
    ax.set_title(f"converged after {n_iter} iterations" if converged
                 else f"not converged after {n_iter} iterations")
    return ax


# ---------------------------------------------------------------- animation


def animate_em(
    X,
    path,
    *,
    n_components: int = 3,
    covariance_type: str = "full",
    features: Sequence[int] = (0, 1),
    max_iter: int = 50,
    random_state=None,
    init_params: str = "kmeans",
    fps: float = 4,
    n_std: float | Sequence[float] = (1, 2),
    max_points: int = 2000,
    dpi: int = 80,
    **gmm_params,
):
    """Fit a GaussianMixture to X and save its EM iterations as an animated GIF.

    Frame 0 shows the initialisation (``init_params``), frame n the
    parameters after the n-th EM iteration, recorded through the fit's
    callback: ellipses at ``n_std`` standard deviations over the points of
    X (at most ``max_points``), each point coloured by its current
    responsibilities. The fit is the one
    ``GaussianMixture(n_components, ..., **gmm_params).fit(X)`` makes, so
    the last frame is that fit's result; it stops at convergence or after
    ``max_iter`` iterations, and the GIF has one frame more than the fit's
    iterations. A frame's title gives the mean log-likelihood that its
    iteration's E-step computed (under the previous frame's parameters),
    as ``lower_bounds_`` records it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), n_features >= 2
    path : str or os.PathLike
        Where to write the GIF (its name must end in .gif).
    n_components, covariance_type, max_iter, random_state, init_params
        As for :class:`fastgmm.GaussianMixture`.
    features : pair of int, default=(0, 1)
        The columns drawn (the fit uses all of them).
    fps : float, default=4
        Frames per second of the GIF.
    n_std : float or sequence of float, default=(1, 2)
    max_points : int, default=2000
    dpi : int, default=80
        Resolution of the frames (the figure is 6 x 5 inches).
    **gmm_params
        Other parameters of the estimator (tol, reg_covar, ...). ``n_init``
        is not accepted: an animation follows one initialisation.

    Returns
    -------
    fig : matplotlib Figure
        Showing the last frame; not registered with pyplot.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.figure import Figure

    from fastgmm import GaussianMixture

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"animate_em writes a GIF: path must end in .gif, got {str(path)!r}")
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if "n_init" in gmm_params or "warm_start" in gmm_params:
        raise ValueError("animate_em follows one initialisation: n_init and warm_start "
                         "cannot be set.")
    n_std = _check_n_std(n_std)
    X = check_array(X, dtype=[np.float64, np.float32])
    if X.shape[1] < 2:
        raise ValueError(
            f"animate_em draws two features; X has {X.shape[1]}. "
            "Use ellipses() on a fitted model for a one-feature density plot."
        )
    features = _check_features(features, X.shape[1])
    shown = X[_subsample(X.shape[0], max_points)]

    # Frame 0 is the initialisation: a fit with max_iter=0 draws it and sets
    # it as the parameters; a warm start then runs EM from exactly there
    # (the same iterations as a single fit with this random_state).
    gmm = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0,
                          random_state=random_state, init_params=init_params, **gmm_params)
    gmm.fit(X)
    frames = [(0, None, gmm.weights_.copy(), gmm.means_.copy(), gmm.covariances_.copy())]

    def record(info):
        frames.append((info.n_iter, info.lower_bound, info.weights.copy(), info.means.copy(),
                       info.covariances.copy()))

    gmm.set_params(warm_start=True, max_iter=max_iter)
    if max_iter > 0:
        gmm.fit(X, callback=record)

    colors = _component_colors(n_components)
    fig = Figure(figsize=(6, 5), dpi=dpi)
    ax = fig.add_subplot()
    points = ax.scatter(shown[:, features[0]], shown[:, features[1]], s=6, linewidths=0,
                        zorder=2)
    x_lo, x_hi = np.min(shown[:, features[0]]), np.max(shown[:, features[0]])
    y_lo, y_hi = np.min(shown[:, features[1]]), np.max(shown[:, features[1]])
    pad_x, pad_y = 0.1 * (x_hi - x_lo or 1.0), 0.1 * (y_hi - y_lo or 1.0)
    ax.set_xlim(x_lo - pad_x, x_hi + pad_x)
    ax.set_ylim(y_lo - pad_y, y_hi + pad_y)
    xname, yname = [f"feature {f}" for f in features]
    ax.set_xlabel(xname)
    ax.set_ylabel(yname)
    patches = [
        Ellipse((0.0, 0.0), 1.0, 1.0, edgecolor=colors[k], linewidth=1.5, zorder=3)
        for k in range(n_components) for _ in n_std
    ]
    for patch in patches:
        ax.add_patch(patch)
    centres = ax.scatter(np.zeros(n_components), np.zeros(n_components), marker="X", s=70,
                         c=colors, edgecolors="black", linewidths=0.8, zorder=4)

    def draw(frame_index):
        n_iter, lower_bound, weights, means, covariances = frames[frame_index]
        cov2 = _projected_covariances(covariances, covariance_type, n_components, features)
        means2 = np.asarray(means, dtype=np.float64)[:, features]
        fill_alpha = _weight_alpha(weights)
        edge_alpha = _edge_alpha(weights)
        for k in range(n_components):
            width, height, angle = _ellipse_geometry(cov2[k])
            for s, n in enumerate(n_std):
                patch = patches[k * len(n_std) + s]
                patch.set_center(means2[k])
                patch.set_width(n * width)
                patch.set_height(n * height)
                patch.set_angle(angle)
                patch.set_facecolor((*colors[k][:3], fill_alpha[k] / len(n_std)))
                patch.set_edgecolor((*colors[k][:3], edge_alpha[k]))
        centres.set_offsets(means2)
        proba = np.exp(_log_responsibilities(shown, np.asarray(weights, dtype=np.float64),
                                             np.asarray(means, dtype=np.float64),
                                             covariances, covariance_type))
        points.set_facecolors(_responsibility_colors(proba, colors, "mix"))
        if n_iter == 0:
            ax.set_title(f"initialisation ({init_params})")
        else:
            ax.set_title(f"EM iteration {n_iter}: mean log-likelihood {lower_bound:.4f}")
        return [*patches, centres, points]

    animation = FuncAnimation(fig, draw, frames=len(frames), blit=False, repeat=False)
    animation.save(str(path), writer=PillowWriter(fps=fps), dpi=dpi)
    draw(len(frames) - 1)
    return fig
