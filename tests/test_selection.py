"""select_model: BIC/AIC over numbers of components and covariance types."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastgmm
from fastgmm import GaussianMixture, ModelSelection, SelectionTable, select_model

COLUMNS = ("n_components", "covariance_type", "bic", "aic", "mean_log_likelihood",
           "converged", "n_iter", "fit_time")


def three_full_gaussians(n_per_component=250, seed=0):
    """Three well-separated 2-D Gaussians, each with its own tilted covariance."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [12.0, 0.0], [0.0, 12.0]])
    covariances = np.array([[[2.0, 1.5], [1.5, 2.0]],
                            [[1.0, -0.8], [-0.8, 1.0]],
                            [[3.0, 0.0], [0.0, 0.3]]])
    X = np.vstack([rng.multivariate_normal(m, c, n_per_component)
                   for m, c in zip(means, covariances)])
    return X


@pytest.fixture(scope="module")
def selection():
    X = three_full_gaussians()
    return X, select_model(X, n_components=range(1, 7), random_state=0)


def test_picks_three_full_components(selection):
    _, (best, table) = selection
    assert isinstance(best, GaussianMixture)
    assert best.n_components == 3
    assert best.covariance_type == "full"
    row = table[table.best_index]
    assert (row["n_components"], row["covariance_type"]) == (3, "full")
    assert table["bic"][table.best_index] == np.nanmin(table["bic"])


def test_aic_criterion_minimises_aic():
    X = three_full_gaussians(seed=1)
    best, table = select_model(X, n_components=[2, 3, 4], covariance_types=["full", "diag"],
                               criterion="aic", random_state=0)
    assert table.criterion == "aic"
    assert table["aic"][table.best_index] == table["aic"].min()
    assert best.n_components == table["n_components"][table.best_index]
    assert best.aic(X) == table["aic"][table.best_index]


def test_table_shape_and_access(selection):
    _, result = selection
    assert isinstance(result, ModelSelection)
    best, table = result
    assert result.best_estimator is best and result.table is table
    assert isinstance(table, SelectionTable)
    assert table.columns == COLUMNS
    assert len(table) == 4 * 6
    # Fit order: covariance types in the given order, each over the K range.
    np.testing.assert_array_equal(table["n_components"], np.tile(np.arange(1, 7), 4))
    assert list(table["covariance_type"]) == [c for c in ("full", "tied", "diag", "spherical")
                                              for _ in range(6)]
    assert table["covariance_type"].dtype.kind == "U"
    for name in ("bic", "aic", "mean_log_likelihood", "fit_time"):
        assert table[name].dtype == np.float64 and table[name].shape == (24,)
    assert table["converged"].dtype == bool
    assert table["n_iter"].dtype == np.int64
    assert np.all(table["fit_time"] >= 0)
    rows = list(table)
    assert len(rows) == 24 and all(tuple(r) == COLUMNS for r in rows)
    assert rows[5] == table[5] == table[-19]
    assert isinstance(rows[0]["bic"], float) and isinstance(rows[0]["n_components"], int)
    assert table.best == rows[table.best_index]
    with pytest.raises(KeyError, match="no column 'BIC'"):
        table["BIC"]
    with pytest.raises(IndexError):
        table[24]
    with pytest.raises(ValueError):  # the columns are read-only
        table["bic"][0] = 0.0


def test_table_text(selection):
    _, (_, table) = selection
    lines = str(table).splitlines()
    assert len(lines) == 1 + len(table) + 1
    assert "BIC" in lines[0] and "covariance" in lines[0]
    # Aligned: every row as long as the header's columns (right-aligned numbers).
    marked = [line for line in lines[1:-1] if line.startswith("*")]
    assert len(marked) == 1 and " 3  full" in marked[0]
    assert lines[-1] == "* lowest BIC"
    assert len({len(line) for line in lines[1:-1]}) == 1
    assert "SelectionTable" in repr(table)


def test_to_pandas(selection):
    pd = pytest.importorskip("pandas")
    _, (_, table) = selection
    frame = table.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert tuple(frame.columns) == COLUMNS
    np.testing.assert_array_equal(frame["bic"].to_numpy(), table["bic"])
    assert list(frame["covariance_type"]) == list(table["covariance_type"])


def test_to_pandas_without_pandas(selection, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    _, (_, table) = selection
    with pytest.raises(ImportError, match="pip install pandas"):
        table.to_pandas()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_criteria_equal_individual_fits(dtype):
    X = three_full_gaussians(seed=2).astype(dtype)
    _, table = select_model(X, n_components=[1, 2, 3, 4], random_state=7, tol=1e-4)
    for row in table:
        gmm = GaussianMixture(n_components=row["n_components"],
                              covariance_type=row["covariance_type"], random_state=7,
                              tol=1e-4).fit(X)
        assert row["bic"] == gmm.bic(X)
        assert row["aic"] == gmm.aic(X)
        assert row["mean_log_likelihood"] == gmm.score(X)
        assert row["n_iter"] == gmm.n_iter_ and row["converged"] == gmm.converged_


def test_best_estimator_is_the_fitted_combination(selection):
    X, (best, table) = selection
    refit = GaussianMixture(**best.get_params()).fit(X)
    np.testing.assert_array_equal(refit.means_, best.means_)
    assert best.bic(X) == table["bic"][table.best_index]


def test_random_state_instance_draws_one_seed():
    X = three_full_gaussians(seed=3)
    best, table = select_model(X, n_components=[2, 3], covariance_types="diag",
                               random_state=np.random.RandomState(5), init_params="random")
    seed = np.random.RandomState(5).randint(np.iinfo(np.int32).max)
    assert best.random_state == seed
    for row in table:
        gmm = GaussianMixture(row["n_components"], covariance_type="diag", random_state=seed,
                              init_params="random").fit(X)
        assert row["bic"] == gmm.bic(X)
    # None draws a seed too, so that the best model can be refit.
    best_none, _ = select_model(X, n_components=[2], covariance_types="diag")
    assert isinstance(best_none.random_state, int)


def test_n_init_and_params_pass_through():
    X = three_full_gaussians(seed=4)
    best, table = select_model(X, n_components=[3], covariance_types=["full"], n_init=3,
                               random_state=0, max_iter=200, reg_covar=1e-3,
                               init_params="k-means++")
    assert best.n_init == 3 and best.max_iter == 200 and best.reg_covar == 1e-3
    assert best.init_params == "k-means++"
    gmm = GaussianMixture(3, n_init=3, random_state=0, max_iter=200, reg_covar=1e-3,
                          init_params="k-means++").fit(X)
    assert table["bic"][0] == gmm.bic(X)


def test_sample_weight_passes_through():
    X = three_full_gaussians(n_per_component=120, seed=5)
    counts = np.random.default_rng(0).integers(1, 4, size=X.shape[0])
    weighted_best, weighted = select_model(X, n_components=[1, 2, 3, 4],
                                           covariance_types=["full", "diag"],
                                           sample_weight=counts.astype(float),
                                           random_state=0, tol=1e-8, max_iter=500)
    # Each row is the weighted fit and its weighted criteria.
    for row in weighted:
        gmm = GaussianMixture(row["n_components"], covariance_type=row["covariance_type"],
                              random_state=0, tol=1e-8, max_iter=500)
        gmm.fit(X, sample_weight=counts.astype(float))
        assert row["bic"] == gmm.bic(X, sample_weight=counts.astype(float))
        assert row["aic"] == gmm.aic(X, sample_weight=counts.astype(float))
    # Integer weights are repeated rows: same choice, same criteria (the
    # fits reach the same optimum on well-separated data).
    repeated_best, repeated = select_model(np.repeat(X, counts, axis=0),
                                           n_components=[1, 2, 3, 4],
                                           covariance_types=["full", "diag"],
                                           random_state=0, tol=1e-8, max_iter=500)
    assert weighted.best_index == repeated.best_index
    np.testing.assert_allclose(weighted["bic"], repeated["bic"], rtol=1e-6)
    np.testing.assert_allclose(weighted["aic"], repeated["aic"], rtol=1e-6)
    np.testing.assert_allclose(weighted_best.means_, repeated_best.means_, rtol=1e-5)
    # Weights change the answer (they are not ignored).
    _, unweighted = select_model(X, n_components=[1, 2, 3, 4],
                                 covariance_types=["full", "diag"], random_state=0,
                                 tol=1e-8, max_iter=500)
    assert not np.allclose(unweighted["bic"], weighted["bic"])


def test_feature_names_kept():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(three_full_gaussians(seed=6), columns=["a", "b"])
    best, _ = select_model(X, n_components=[3], covariance_types="full", random_state=0)
    assert list(best.feature_names_in_) == ["a", "b"]


def test_non_converged_fits_warn_once():
    X = three_full_gaussians(seed=7)
    with pytest.warns(ConvergenceWarning, match="did not converge") as record:
        _, table = select_model(X, n_components=[2, 3], covariance_types="full",
                                random_state=0, max_iter=1, tol=0.0)
    assert len([w for w in record if issubclass(w.category, ConvergenceWarning)]) == 1
    assert not table["converged"].any()


def test_collapsed_fit_is_a_nan_row():
    # Three distinct points repeated: K=1 has a proper covariance, K=3 gives
    # each component one point and no spread.
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [5.0, 0.0]]), 20, axis=0)
    with pytest.warns(UserWarning, match=r"fits failed .*K=3 full"):
        best, table = select_model(X, n_components=[1, 3], covariance_types="full",
                                   random_state=0, reg_covar=0.0)
    assert np.isfinite(table["bic"][0])
    assert np.isnan(table["bic"][1]) and np.isnan(table["aic"][1])
    assert not table["converged"][1]
    assert best.n_components == 1 and table.best_index == 0
    with pytest.raises(ValueError, match="every fit failed"):
        select_model(X, n_components=[3], covariance_types="full", random_state=0,
                     reg_covar=0.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_components=[]), ValueError, "n_components is empty"),
        (dict(n_components=range(5, 5)), ValueError, "n_components is empty"),
        (dict(n_components=[0, 1]), ValueError, "integers >= 1"),
        (dict(n_components=[1.5]), ValueError, "integers >= 1"),
        (dict(n_components=[2, 2]), ValueError, "repeated"),
        (dict(n_components="3"), ValueError, "integers >= 1"),
        (dict(n_components=[5, 50]), ValueError, r"n_components \[50\] exceed the number "
                                                 r"of samples \(40\)"),
        (dict(covariance_types=()), ValueError, "covariance_types is empty"),
        (dict(covariance_types=["full", "ful"]), ValueError, r"unknown covariance type.*'ful'"),
        (dict(covariance_types=["diag", "diag"]), ValueError, "repeated"),
        (dict(covariance_types=3), ValueError, "covariance_types must be"),
        (dict(criterion="likelihood"), ValueError, "criterion must be one of"),
        (dict(n_init=0), ValueError, "n_init must be an integer"),
        (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
        (dict(sample_weight=-np.ones(40)), ValueError, "[Nn]egative"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(init_params="bogus"), ValueError, "init_params"),
        (dict(n_componets=3), TypeError, "unexpected GaussianMixture parameter"),
    ],
)
def test_argument_errors(kwargs, error, match):
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(error, match=match):
        select_model(X, **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="NaN"):
        select_model(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), n_components=[1])
    with pytest.raises(ValueError):
        select_model(np.zeros((1, 2)), n_components=[1])


def test_exported():
    assert fastgmm.select_model is select_model
    for name in ("select_model", "ModelSelection", "SelectionTable"):
        assert name in fastgmm.__all__


def test_a_huge_range_of_components_is_refused_before_it_is_listed():
    # range(1, 10**9) was turned into a tuple: all memory, then the OOM killer
    X = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(ValueError, match="more than 10000 entries"):
        select_model(X, range(1, 10**9))
    with pytest.raises(ValueError, match="more than 10000 entries"):
        select_model(X, iter(range(1, 10**18)))
    with pytest.raises(ValueError, match=r"\[51, 52, .*\] \(9949 in all\) exceed the number "
                                         r"of samples \(50\)"):
        select_model(X, range(1, 10_000))
