"""fastgmm.plot: every function rendered with Agg to files that are checked,
the artists' geometry against the model, and the errors for bad arguments."""

import os
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402

import fastgmm.plot as gp  # noqa: E402
from fastgmm import BayesianGaussianMixture, GaussianMixture  # noqa: E402
from conftest import make_mixture  # noqa: E402

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 40


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("fastgmm.plot must not call plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    X, labels = make_mixture(n_samples=900, n_features=3, n_components=3, seed=61)
    return X, labels


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    return {ct: GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)
            for ct in COVARIANCE_TYPES}


def check_png(fig, path):
    fig.savefig(path, dpi=DPI)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    width, height = fig.get_size_inches()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(width * DPI), round(height * DPI))
        # Not a blank canvas: something was drawn in more than one colour.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or [0] * 100) > 10


def full_covariances(gmm):
    """Each component's full D x D covariance, built independently of the module."""
    K, D = gmm.means_.shape
    cov = gmm.covariances_
    return {
        "full": lambda: cov,
        "tied": lambda: np.array([cov] * K),
        "diag": lambda: np.array([np.diag(c) for c in cov]),
        "spherical": lambda: np.array([c * np.eye(D) for c in cov]),
    }[gmm.covariance_type]()


def on_ellipse(patch):
    """Points on the drawn curve: the unit circle through the patch's transform."""
    angle = np.linspace(0, 2 * np.pi, 50)
    return patch.get_patch_transform().transform(np.column_stack([np.cos(angle), np.sin(angle)]))


def ellipse_patches(ax):
    return [p for p in ax.patches if isinstance(p, Ellipse)]


# ------------------------------------------------------------------ imports


def run_python(code):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


def test_importing_fastgmm_does_not_import_matplotlib():
    result = run_python("import sys, fastgmm; print('matplotlib' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_fastgmm_plot_without_matplotlib_names_the_extra():
    result = run_python(
        "import sys; sys.modules['matplotlib'] = None\n"
        "import fastgmm\n"
        "try:\n"
        "    import fastgmm.plot\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "fastgmm[plot]"' in result.stdout


# ------------------------------------------------------------------ ellipses


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("features", [(0, 1), (2, 0)])
@pytest.mark.parametrize("n_std", [(1, 2, 3), (1,), 2.5])
def test_ellipses_geometry_and_file(fitted, data, tmp_path, covariance_type, features, n_std):
    X, _ = data
    gmm = fitted[covariance_type]
    ax = gp.ellipses(gmm, X, features=features, n_std=n_std)
    radii = (n_std,) if np.isscalar(n_std) else n_std
    patches = ellipse_patches(ax)
    assert len(patches) == gmm.n_components * len(radii)

    # Every ellipse is the curve at Mahalanobis distance n under the marginal
    # covariance of the two features, centred on the component's mean.
    cov = full_covariances(gmm)[:, features][:, :, features]
    means = gmm.means_[:, features]
    for index, patch in enumerate(patches):
        k, n = divmod(index, len(radii))
        n = radii[n]
        boundary = on_ellipse(patch)
        centred = boundary - means[k]
        distance2 = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(cov[k]), centred)
        np.testing.assert_allclose(distance2, n * n, rtol=1e-6)

    x0, y0, x1, y1 = ax.dataLim.extents
    assert np.all((means[:, 0] >= x0) & (means[:, 0] <= x1))
    assert np.all((means[:, 1] >= y0) & (means[:, 1] <= y1))
    assert ax.get_xlabel() == f"feature {features[0]}"
    # the points drawn are X's, coloured by the predicted component
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), X[:, features])
    check_png(ax.figure, tmp_path / "ellipses.png")


def test_ellipses_weights_set_the_fill_opacity(fitted):
    gmm = fitted["full"]
    ax = gp.ellipses(gmm, n_std=(1,))
    alphas = np.array([p.get_facecolor()[3] for p in ellipse_patches(ax)])
    assert np.array_equal(np.argsort(alphas, kind="stable"),
                          np.argsort(gmm.weights_, kind="stable"))


def _model_with_a_spread_of_weights(kind, X):
    if kind == "bayesian":
        # 8 components for 3 clusters: the prior leaves several near 0.
        model = BayesianGaussianMixture(n_components=8, random_state=0).fit(X)
        assert (model.weights_ < 0.01).sum() >= 3
    else:
        model = GaussianMixture(5, random_state=0).fit(X)
    assert np.unique(model.weights_.round(6)).size == len(model.weights_)
    return model


@pytest.mark.parametrize("kind", ["gaussian", "bayesian"])
def test_ellipses_fade_with_weight_outline_and_centre_too(data, kind):
    # The outline (edge) and the centre's marker fade with the weight, not
    # only the fill: a component a Bayesian mixture leaves unused is faint.
    X, _ = data
    model = _model_with_a_spread_of_weights(kind, X)
    n_std = (1, 2)
    ax = gp.ellipses(model, X, n_std=n_std)
    patches = ellipse_patches(ax)
    assert len(patches) == len(model.weights_) * len(n_std)
    order = np.argsort(model.weights_)
    edge = np.array([p.get_edgecolor()[3] for p in patches]).reshape(-1, len(n_std))
    fill = np.array([p.get_facecolor()[3] for p in patches]).reshape(-1, len(n_std))
    centres = ax.collections[-1]
    marker = centres.get_facecolors()[:, 3]
    for alphas in (edge[:, 0], edge[:, 1], fill[:, 0], marker):
        assert np.all(np.diff(alphas[order]) > 0), alphas[order]
    assert edge.max() == 1.0                 # the heaviest as before
    if kind == "bayesian":
        unused = model.weights_ < 0.01
        assert edge[unused].max() < 0.15 and marker[unused].max() < 0.15
        assert fill[unused].max() < 0.05


def test_ellipses_equal_weights_keep_opaque_outlines(data):
    X, _ = data
    model = GaussianMixture(3, random_state=0).fit(X)
    model.weights_ = np.full(3, 1 / 3)
    ax = gp.ellipses(model, X)
    assert all(p.get_edgecolor()[3] == 1.0 for p in ellipse_patches(ax))


def test_ellipses_points_coloured_by_predicted_label_or_given_labels(fitted, data):
    X, true_labels = data
    gmm = fitted["full"]
    colors = gp._component_colors(3)
    ax = gp.ellipses(gmm, X)
    np.testing.assert_allclose(ax.collections[0].get_facecolors()[:, :3],
                               colors[gmm.predict(X), :3])
    ax = gp.ellipses(gmm, X, labels=true_labels)
    np.testing.assert_allclose(ax.collections[0].get_facecolors()[:, :3],
                               colors[true_labels, :3])
    ax = gp.ellipses(gmm, X, labels=np.where(true_labels == 0, "a", "b"))
    assert len(np.unique(ax.collections[0].get_facecolors(), axis=0)) == 2


def test_ellipses_subsamples_large_data_the_same_way_each_time(fitted, data):
    X, _ = data
    first = gp.ellipses(fitted["diag"], X, max_points=100).collections[0].get_offsets()
    again = gp.ellipses(fitted["diag"], X, max_points=100).collections[0].get_offsets()
    assert first.shape == (100, 2)
    np.testing.assert_array_equal(first, again)
    # the drawn points are rows of X
    rows = {tuple(r) for r in X[:, :2]}
    assert all(tuple(p) in rows for p in np.asarray(first))


def test_ellipses_without_data_and_on_given_axes(fitted):
    fig, axes = plt.subplots(1, 2)
    returned = gp.ellipses(fitted["tied"], ax=axes[1])
    assert returned is axes[1]
    assert len(ellipse_patches(axes[1])) == 9 and not ellipse_patches(axes[0])


def test_ellipses_of_scikit_learn_estimator(data, tmp_path):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X, _ = data
    gmm = SkGaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    ax = gp.ellipses(gmm, X, n_std=(1, 2))
    assert len(ellipse_patches(ax)) == 6
    check_png(ax.figure, tmp_path / "sk.png")


def test_ellipses_use_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, _ = data
    frame = pd.DataFrame(X, columns=["height", "width", "depth"])
    gmm = GaussianMixture(3, random_state=0).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        ax = gp.ellipses(gmm, frame, features=(2, 1))
        gp.responsibilities(gmm, frame, max_points=50)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("depth", "width")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ellipses_of_one_feature_draw_the_density(covariance_type, tmp_path):
    X, _ = make_mixture(n_samples=600, n_features=1, n_components=2, seed=62)
    gmm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    ax = gp.ellipses(gmm, X)
    assert not ellipse_patches(ax)
    mixture = [line for line in ax.get_lines() if line.get_label() == "mixture"]
    assert len(mixture) == 1
    grid, density = mixture[0].get_data()
    # the curve is the model's density
    np.testing.assert_allclose(density, np.exp(gmm.score_samples(grid[:, None])), rtol=1e-6)
    # and integrates to about one over its range
    assert abs(np.trapezoid(density, grid) - 1) < 0.02
    check_png(ax.figure, tmp_path / "density.png")


# ---------------------------------------------------------- responsibilities


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("mode", ["mix", "max"])
def test_responsibilities_colours(fitted, data, tmp_path, covariance_type, mode):
    X, _ = data
    gmm = fitted[covariance_type]
    ax = gp.responsibilities(gmm, X, features=(1, 2), mode=mode)
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), X[:, [1, 2]])
    proba = gmm.predict_proba(X)
    colors = gp._component_colors(3)
    facecolors = points.get_facecolors()
    if mode == "mix":
        np.testing.assert_allclose(facecolors[:, :3], proba @ colors[:, :3], atol=1e-12)
    else:
        np.testing.assert_allclose(facecolors[:, :3], colors[proba.argmax(1), :3])
        expected_alpha = (proba.max(1) - 1 / 3) / (2 / 3)
        np.testing.assert_allclose(facecolors[:, 3], expected_alpha, atol=1e-12)
    check_png(ax.figure, tmp_path / "resp.png")


def test_responsibilities_of_a_point_between_two_components_blend_them():
    rng = np.random.default_rng(63)
    X = np.concatenate([rng.normal(size=(300, 2)) - [3, 0], rng.normal(size=(300, 2)) + [3, 0],
                        [[0.0, 0.0]]])
    gmm = GaussianMixture(2, covariance_type="spherical", random_state=0).fit(X)
    colors = gp._component_colors(2)
    middle = gp.responsibilities(gmm, X).collections[0].get_facecolors()[-1, :3]
    proba = gmm.predict_proba(X[-1:])[0]
    assert 0.2 < proba[0] < 0.8
    np.testing.assert_allclose(middle, proba @ colors[:, :3])
    assert not np.allclose(middle, colors[0, :3]) and not np.allclose(middle, colors[1, :3])


# ----------------------------------------------------------------- criterion


def selection_like_table():
    n = np.array([1, 2, 3, 4, 1, 2, 3, 4])
    types = np.array(["full"] * 4 + ["diag"] * 4)
    bic = np.array([100.0, 80.0, 50.0, 60.0, 110.0, 90.0, np.nan, 75.0])
    aic = np.array([95.0, 70.0, 45.0, 44.0, 105.0, 85.0, 70.0, 65.0])
    return {"n_components": n, "covariance_type": types, "bic": bic, "aic": aic}


def star_points(ax):
    return {line.get_label(): (line.get_xdata()[0], line.get_ydata()[0])
            for line in ax.get_lines() if line.get_marker() == "*"}


@pytest.mark.parametrize("as_frame", [False, True])
def test_criterion_one_line_per_type_and_criterion_best_marked(tmp_path, as_frame):
    table = selection_like_table()
    if as_frame:
        table = pytest.importorskip("pandas").DataFrame(table)
    ax = gp.criterion(table)
    curves = [line for line in ax.get_lines() if line.get_marker() != "*"]
    assert sorted(line.get_label() for line in curves) == [
        "AIC diag", "AIC full", "BIC diag", "BIC full"]
    bic_diag = next(line for line in curves if line.get_label() == "BIC diag")
    # the failed (NaN) fit is left out; points in order of n_components
    np.testing.assert_array_equal(bic_diag.get_xdata(), [1, 2, 4])
    np.testing.assert_array_equal(bic_diag.get_ydata(), [110.0, 90.0, 75.0])
    stars = star_points(ax)
    assert stars == {"best BIC: K=3, full": (3.0, 50.0), "best AIC: K=4, full": (4.0, 44.0)}
    check_png(ax.figure, tmp_path / "criterion.png")


def test_criterion_of_a_select_model_table(tmp_path):
    from fastgmm import select_model

    X, _ = make_mixture(n_samples=600, n_features=2, n_components=3, seed=64, scale=8.0)
    best, table = select_model(X, n_components=range(1, 6), covariance_types=("full", "diag"),
                               random_state=0)
    for source in (table, table.to_pandas()):
        ax = gp.criterion(source)
        assert len([line for line in ax.get_lines() if line.get_marker() != "*"]) == 4
        row = table.best
        star = star_points(ax)[f"best BIC: K={row['n_components']}, {row['covariance_type']}"]
        assert star == (row["n_components"], row["bic"])
        assert row["n_components"] == best.n_components
    check_png(ax.figure, tmp_path / "selection.png")


def test_criterion_single_criterion_and_unsorted_rows():
    table = selection_like_table()
    order = np.random.default_rng(0).permutation(8)
    table = {key: value[order] for key, value in table.items()}
    ax = gp.criterion(table, criteria="aic")
    assert {line.get_label() for line in ax.get_lines()} == {
        "AIC full", "AIC diag", "best AIC: K=4, full"}
    full = next(line for line in ax.get_lines() if line.get_label() == "AIC full")
    np.testing.assert_array_equal(full.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(full.get_ydata(), [95.0, 70.0, 45.0, 44.0])


def test_criterion_bad_tables():
    table = selection_like_table()
    with pytest.raises(ValueError, match="no column 'bic'"):
        gp.criterion({k: v for k, v in table.items() if k != "bic"})
    with pytest.raises(ValueError, match="no column 'loglik'"):
        gp.criterion(table, criteria=("bic", "loglik"))
    with pytest.raises(ValueError, match="differ in length"):
        gp.criterion({**table, "aic": table["aic"][:3]})
    with pytest.raises(ValueError, match="empty"):
        gp.criterion({k: v[:0] for k, v in table.items()})
    with pytest.raises(ValueError, match="at least one"):
        gp.criterion(table, criteria=())


# --------------------------------------------------------------- convergence


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_convergence_curve(fitted, tmp_path, covariance_type):
    gmm = fitted[covariance_type]
    ax = gp.convergence(gmm)
    curve = ax.get_lines()[0]
    np.testing.assert_array_equal(curve.get_xdata(), np.arange(1, gmm.n_iter_ + 1))
    np.testing.assert_array_equal(curve.get_ydata(), gmm.lower_bounds_)
    assert star_points(ax) == {"converged": (gmm.n_iter_, gmm.lower_bounds_[-1])}
    assert "converged after" in ax.get_title()
    if gmm.n_iter_ > 1:
        twin = next(other for other in ax.figure.axes if other is not ax)
        tol_lines = [line for line in twin.get_lines() if line.get_label().startswith("tol")]
        assert len(tol_lines) == 1 and tol_lines[0].get_ydata()[0] == gmm.tol
    check_png(ax.figure, tmp_path / "convergence.png")


def test_convergence_of_a_fit_that_did_not_converge(data):
    X, _ = data
    with pytest.warns(ConvergenceWarning):
        gmm = GaussianMixture(3, max_iter=2, tol=0, init_params="random",
                              random_state=0).fit(X)
    ax = gp.convergence(gmm)
    assert "not converged after 2" in ax.get_title()
    assert list(star_points(ax)) == ["stopped at max_iter"]


def test_convergence_errors(data):
    X, _ = data
    gmm = GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    with pytest.raises(ValueError, match="max_iter=0"):
        gp.convergence(gmm)
    with pytest.raises(NotFittedError):
        gp.convergence(GaussianMixture(2))


# ---------------------------------------------------------------- animation


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_animate_em_writes_one_frame_per_iteration_plus_the_start(data, tmp_path,
                                                                 covariance_type):
    X, _ = data
    path = tmp_path / "em.gif"
    figures_before = plt.get_fignums()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 8 iterations may not converge
        fig = gp.animate_em(X, path, n_components=3, covariance_type=covariance_type,
                            features=(0, 2), max_iter=8, random_state=0,
                            init_params="random_from_data", dpi=30, max_points=300)
    assert plt.get_fignums() == figures_before  # not left open in pyplot
    reference = GaussianMixture(3, covariance_type=covariance_type, max_iter=8,
                                random_state=0, init_params="random_from_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 8 iterations may not converge
        reference.fit(X)
    with open(path, "rb") as f:
        assert f.read(6) in (b"GIF87a", b"GIF89a")
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == reference.n_iter_ + 1
        assert gif.size == (6 * 30, 5 * 30)
    # The figure shows the last frame: the plain fit's means and ellipses.
    ax = fig.axes[0]
    patches = ellipse_patches(ax)
    assert len(patches) == 3 * 2
    centres = np.array([patch.get_center() for patch in patches[::2]])
    np.testing.assert_allclose(centres, reference.means_[:, [0, 2]])
    cov = full_covariances(reference)[:, [0, 2]][:, :, [0, 2]]
    boundary = on_ellipse(patches[1])
    centred = boundary - reference.means_[0, [0, 2]]
    np.testing.assert_allclose(
        np.einsum("ni,ij,nj->n", centred, np.linalg.inv(cov[0]), centred), 4.0, rtol=1e-6)
    assert ax.get_title().startswith(f"EM iteration {reference.n_iter_}:")


def test_animate_em_first_frame_is_the_initialisation(data, tmp_path):
    X, _ = data
    path = tmp_path / "start.gif"
    gp.animate_em(X, path, n_components=2, max_iter=0, random_state=0, dpi=30,
                  max_points=200)
    with Image.open(path) as gif:
        assert gif.n_frames == 1
    start = GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    fig = gp.animate_em(X, tmp_path / "again.gif", n_components=2, max_iter=0,
                        random_state=0, dpi=30, max_points=200)
    centres = np.array([p.get_center() for p in ellipse_patches(fig.axes[0])[::2]])
    np.testing.assert_allclose(centres, start.means_[:, :2])
    assert fig.axes[0].get_title() == "initialisation (kmeans)"


def test_animate_em_bad_arguments(data, tmp_path):
    X, _ = data
    with pytest.raises(ValueError, match="end in .gif"):
        gp.animate_em(X, tmp_path / "em.png")
    with pytest.raises(ValueError, match="n_init"):
        gp.animate_em(X, tmp_path / "em.gif", n_init=3)
    with pytest.raises(ValueError, match="two features"):
        gp.animate_em(X[:, :1], tmp_path / "em.gif")
    with pytest.raises(ValueError, match="out of range"):
        gp.animate_em(X, tmp_path / "em.gif", features=(0, 3))
    with pytest.raises(ValueError, match="fps"):
        gp.animate_em(X, tmp_path / "em.gif", fps=0)
    with pytest.raises(ValueError, match="max_points"):
        gp.animate_em(X, tmp_path / "em.gif", max_points=0)
    assert not (tmp_path / "em.gif").exists()


# ------------------------------------------------------------ bad arguments


@pytest.mark.parametrize("function", [gp.ellipses, gp.responsibilities])
def test_bad_features(fitted, data, function):
    X, _ = data
    gmm = fitted["full"]
    with pytest.raises(ValueError, match="feature index 3 is out of range.*between 0 and 2"):
        function(gmm, X, features=(0, 3))
    with pytest.raises(ValueError, match="out of range"):
        function(gmm, X, features=(-1, 0))
    with pytest.raises(ValueError, match="two different columns"):
        function(gmm, X, features=(1, 1))
    with pytest.raises(ValueError, match="pair of column indices"):
        function(gmm, X, features=(0, 1, 2))
    with pytest.raises(ValueError, match="pair of column indices"):
        function(gmm, X, features=(0.5, 1))


@pytest.mark.parametrize("function", [gp.ellipses, gp.responsibilities])
def test_unfitted_or_wrong_estimator(data, function):
    X, _ = data
    with pytest.raises(NotFittedError, match="not fitted"):
        function(GaussianMixture(3), X)
    with pytest.raises(TypeError, match="expected a fitted GaussianMixture"):
        function(np.zeros(3), X)


def test_bad_data_and_options(fitted, data):
    X, _ = data
    gmm = fitted["full"]
    with pytest.raises(ValueError, match="X has 2 features but the model was fitted on 3"):
        gp.ellipses(gmm, X[:, :2])
    with pytest.raises(ValueError, match="one entry per row"):
        gp.ellipses(gmm, X, labels=np.zeros(5))
    with pytest.raises(ValueError, match="pass X too"):
        gp.ellipses(gmm, labels=np.zeros(5))
    for n_std in [0, -1, (), (1, np.nan), "2"]:
        with pytest.raises(ValueError, match="n_std"):
            gp.ellipses(gmm, X, n_std=n_std)
    with pytest.raises(ValueError, match="mode"):
        gp.responsibilities(gmm, X, mode="soft")
    for max_points in (0, -5, 2.5, None):
        with pytest.raises(ValueError, match="max_points"):
            gp.ellipses(gmm, X[:10], max_points=max_points)
    one_feature = GaussianMixture(2, random_state=0).fit(X[:, :1])
    with pytest.raises(ValueError, match="has one"):
        gp.responsibilities(one_feature, X[:, :1])


def test_the_readme_plot_snippet_runs(data, tmp_path, monkeypatch):
    from pathlib import Path

    from fastgmm import select_model

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Plots"):]
    snippet = section[section.index("```python\n") + 10:section.index("```\n", 10)]
    X, _ = data
    X = X[:300]
    _, table = select_model(X, n_components=range(1, 4), covariance_types=("full", "diag"),
                            random_state=0)
    gmm = GaussianMixture(3, random_state=0).fit(X)
    monkeypatch.chdir(tmp_path)
    exec(snippet, {"gmm": gmm, "X": X, "table": table})
    with Image.open(tmp_path / "em.gif") as gif:
        assert gif.n_frames > 1


def test_float32_models_draw(data, tmp_path):
    X = data[0].astype(np.float32)
    gmm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    ax = gp.ellipses(gmm, X)
    assert len(ellipse_patches(ax)) == 9
    gp.responsibilities(gmm, X, ax=plt.subplots()[1])
    fig = gp.animate_em(X, tmp_path / "f32.gif", covariance_type="diag", max_iter=3,
                        random_state=0, dpi=30, max_points=100)
    assert len(ellipse_patches(fig.axes[0])) == 6
