"""fastgmm.BayesianGaussianMixture against scikit-learn's, from the same
data and random_state, and what it shares with GaussianMixture.

Parity: every covariance type x both weight priors x every init, float64:
parameters and every iteration's lower bound within 1e-8 relative, the
same labels, the same n_iter_. scikit-learn's own test_bayesian_mixture.py
and test_mixture.py run below with the class swapped for ours.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGMM
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastgmm
from fastgmm import BayesianGaussianMixture
from fastgmm._bayesian_mixture import _entropy
from conftest import make_mixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
INIT_PARAMS = ["kmeans", "k-means++", "random", "random_from_data"]
FLOAT64_RTOL = 1e-8
PARAMETERS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
              "mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_")


def _fit_both(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BayesianGaussianMixture(**params)
        ours_labels = ours.fit_predict(X)
        ref = SkBGMM(**params)
        ref_labels = ref.fit_predict(X)
    return ours, ours_labels, ref, ref_labels


def _assert_close(a, b, rtol, name):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    # atol relative to the array's scale: off-diagonal zeros of a precision.
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.abs(b).max()),
                               err_msg=name)


def _assert_same_fit(ours, ref, rtol=FLOAT64_RTOL):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.converged_ == ref.converged_
    for name in PARAMETERS:
        _assert_close(getattr(ours, name), getattr(ref, name), rtol, name)
    for a, b in zip(np.atleast_1d(ours.weight_concentration_),
                    np.atleast_1d(ref.weight_concentration_)):
        _assert_close(a, b, rtol, "weight_concentration_")
    # scikit-learn's tied bounds are 1-element arrays; ours are floats.
    ref_bounds = np.ravel(np.asarray(ref.lower_bounds_, dtype=np.float64))
    assert len(ours.lower_bounds_) == len(ref_bounds)
    np.testing.assert_allclose(ours.lower_bounds_, ref_bounds, rtol=rtol)
    np.testing.assert_allclose(ours.lower_bound_, float(np.ravel(ref.lower_bound_)[0]),
                               rtol=rtol)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_fit_as_scikit_learn(covariance_type, prior_type, init_params):
    X, _ = make_mixture(500, 3, 4, seed=1)
    ours, ours_labels, ref, ref_labels = _fit_both(
        X, n_components=6, covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type, init_params=init_params,
        random_state=2, max_iter=300,
    )
    _assert_same_fit(ours, ref)
    np.testing.assert_array_equal(ours_labels, ref_labels)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-7,
                               atol=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_fit_with_given_priors_n_init_and_warm_start(covariance_type):
    X, _ = make_mixture(400, 2, 3, seed=3)
    covariance_prior = {"full": np.eye(2) * 2.0, "tied": np.eye(2) * 2.0,
                        "diag": np.array([1.5, 2.5]), "spherical": 1.7}[covariance_type]
    params = dict(n_components=5, covariance_type=covariance_type, n_init=3,
                  weight_concentration_prior=0.01, mean_precision_prior=0.5,
                  mean_prior=np.array([0.5, -0.5]), degrees_of_freedom_prior=3.5,
                  covariance_prior=covariance_prior, random_state=4, max_iter=7,
                  warm_start=True, tol=1e-6)
    ours, _, ref, _ = _fit_both(X, **params)
    _assert_same_fit(ours, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X)     # warm start: continues from the previous fit
        ref.fit(X)
    _assert_same_fit(ours, ref)


def test_max_iter_zero_is_the_initialisation():
    # scikit-learn's test_compare_covar_type calls private _initialize_parameters;
    # max_iter=0 publishes the same initial parameters.
    X, _ = make_mixture(300, 3, 3, seed=5)
    for cov in COVARIANCE_TYPES:
        ours, _, ref, _ = _fit_both(X, n_components=4, covariance_type=cov, max_iter=0,
                                    random_state=0)
        for name in PARAMETERS:
            _assert_close(getattr(ours, name), getattr(ref, name), FLOAT64_RTOL, name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_entropy_from_the_statistics_matches_sum_r_log_r(covariance_type):
    # The lower bound's -sum r log r is derived from the pass's statistics;
    # against the direct sum over scikit-learn's log_resp, on spread data.
    X, _ = make_mixture(2000, 4, 5, seed=6, scale=3.0)
    X = X + 100.0       # an offset makes the cancellation harder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkBGMM(n_components=6, covariance_type=covariance_type, random_state=0,
                     max_iter=3).fit(X)
        ours = BayesianGaussianMixture(n_components=6, covariance_type=covariance_type,
                                       random_state=0, max_iter=3).fit(X)
    _, log_resp = ref._e_step(X)
    expected = -np.sum(np.exp(log_resp) * log_resp)
    from fastgmm._data import InMemoryData, Workspace

    data = InMemoryData(X, None)
    kernel = ours._kernel_params(ours._get_parameters(), X.dtype)
    total = data.statistics(Workspace(data, covariance_type, 6), kernel, 1)
    assert abs(_entropy(total, kernel) - expected) <= 1e-9 * abs(ref.lower_bound_)
    assert abs(_entropy(total, kernel) - expected) <= 1e-6 * abs(expected)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32(covariance_type):
    X, _ = make_mixture(600, 3, 3, seed=7)
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                       random_state=0, max_iter=20, tol=0).fit(X32)
        ref64 = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                        random_state=0, max_iter=20, tol=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(ours, name).dtype == np.float32, name
    assert ours.predict_proba(X32).dtype == np.float32
    assert ours.score_samples(X32).dtype == np.float32
    np.testing.assert_allclose(ours.lower_bound_, ref64.lower_bound_, rtol=1e-4)
    np.testing.assert_array_equal(ours.predict(X32), ref64.predict(X))


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    import fastgmm._base as base

    X, _ = make_mixture(20000, 5, 4, seed=8)
    fits = []
    for n_threads in (1, 2, 3, 5, 7, 16):
        monkeypatch.setattr(base, "n_threads_for", lambda n_samples, n=n_threads: n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(BayesianGaussianMixture(n_components=6, random_state=0,
                                                max_iter=10).fit(X))
    for other in fits[1:]:
        for name in ("means_", "covariances_", "lower_bounds_"):
            np.testing.assert_array_equal(getattr(other, name), getattr(fits[0], name))


def test_sample_weight_is_scale_invariant_and_equal_weights_change_nothing():
    X, _ = make_mixture(500, 2, 3, seed=9)
    w = np.random.default_rng(0).uniform(0.1, 3.0, size=X.shape[0])
    params = dict(n_components=4, random_state=0, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = BayesianGaussianMixture(**params).fit(X)
        equal = BayesianGaussianMixture(**params).fit(X, sample_weight=np.full(500, 7.0))
        a = BayesianGaussianMixture(**params).fit(X, sample_weight=w)
        b = BayesianGaussianMixture(**params).fit(X, sample_weight=w * 1e-6)
    np.testing.assert_array_equal(equal.means_, plain.means_)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    assert not np.allclose(a.means_, plain.means_)


def test_dirichlet_process_prunes_extra_components():
    X, _ = make_mixture(2000, 2, 4, seed=10, scale=8.0)
    bgmm = BayesianGaussianMixture(n_components=10, random_state=0, max_iter=500,
                                   weight_concentration_prior=1e-3).fit(X)
    assert np.sum(bgmm.weights_ > 0.01) == 4


def test_scikit_learn_estimator():
    X, _ = make_mixture(300, 2, 2, seed=11)
    est = BayesianGaussianMixture(n_components=2, random_state=0)
    assert clone(est).get_params() == est.get_params()
    pipe = make_pipeline(StandardScaler(), BayesianGaussianMixture(n_components=2,
                                                                   random_state=0))
    assert pipe.fit(X).predict(X).shape == (300,)
    search = GridSearchCV(BayesianGaussianMixture(random_state=0),
                          {"n_components": [1, 2], "covariance_type": ["diag", "full"]},
                          cv=2).fit(X)
    assert search.best_params_["n_components"] in (1, 2)


@parametrize_with_checks([BayesianGaussianMixture(covariance_type=ct)
                          for ct in COVARIANCE_TYPES])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_data_sources_and_io_import_no_estimator():
    # One driver, no import cycles: the modules the estimators use import
    # neither estimator at module level (only inside functions, lazily).
    import ast
    from pathlib import Path

    package = Path(fastgmm.__file__).parent
    estimators = {"fastgmm._gaussian_mixture", "fastgmm._bayesian_mixture", "fastgmm._base"}
    for name in ("_io", "_dask", "_data", "_batches", "_parameters", "_reliability",
                 "_initialization"):
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                assert node.module not in estimators, (name, node.module)
                assert not (node.module == "fastgmm"
                            and {a.name for a in node.names} & {"GaussianMixture"}), name


def test_save_and_load(tmp_path):
    # The model file (format version 3; tests/test_io.py checks it in full).
    X, _ = make_mixture(200, 2, 2, seed=19)
    est = BayesianGaussianMixture(n_components=4, random_state=0).fit(X)
    est.save(tmp_path / "m.npz")
    loaded = fastgmm.load(tmp_path / "m.npz")
    assert type(loaded) is BayesianGaussianMixture
    assert loaded.get_params() == est.get_params()
    assert loaded.predict_proba(X).tobytes() == est.predict_proba(X).tobytes()


def test_public_name():
    assert fastgmm.BayesianGaussianMixture is BayesianGaussianMixture
    assert "BayesianGaussianMixture" in fastgmm.__all__


# ------------------------------------------ what GaussianMixture has, beyond sklearn


def _quiet_fit(est, *args, method="fit", **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(*args, **kwargs)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_memmap_batches_and_dask_give_the_in_memory_fit(covariance_type, tmp_path):
    X, _ = make_mixture(3000, 3, 3, seed=13)
    params = dict(n_components=4, covariance_type=covariance_type,
                  init_params="random_from_data", random_state=0, max_iter=30)
    ref = _quiet_fit(BayesianGaussianMixture(**params), X)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = _quiet_fit(BayesianGaussianMixture(**params), np.load(path, mmap_mode="r"))
    batches = _quiet_fit(BayesianGaussianMixture(**params), np.array_split(X, 7),
                         method="fit_batches")
    for other in (mapped, batches):
        assert other.n_iter_ == ref.n_iter_
        np.testing.assert_allclose(other.means_, ref.means_, rtol=1e-9)
        np.testing.assert_allclose(other.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
        np.testing.assert_allclose(other.covariance_prior_, ref.covariance_prior_, rtol=1e-9)


def test_dask_array_gives_the_in_memory_fit():
    da = pytest.importorskip("dask.array")
    import dask

    X, _ = make_mixture(3000, 3, 3, seed=14)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=3000)
    params = dict(n_components=4, covariance_type="full", init_params="random",
                  random_state=0, max_iter=20)
    ref = _quiet_fit(BayesianGaussianMixture(**params), X, sample_weight=w)
    with dask.config.set(scheduler="synchronous"):
        import fastgmm._dask as fd
        original = fd.SAMPLE_ROWS
        fd.SAMPLE_ROWS = 100_000       # small data is fetched: the same random draws
        try:
            ours = _quiet_fit(BayesianGaussianMixture(**params),
                              da.from_array(X, chunks=(700, 3)),
                              sample_weight=da.from_array(w, chunks=700))
        finally:
            fd.SAMPLE_ROWS = original
        labels = ours.predict(da.from_array(X, chunks=(700, 3))).compute()
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-9)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
    np.testing.assert_array_equal(labels, ref.predict(X))


def test_dask_prior_moments_of_a_sampled_array(monkeypatch):
    da = pytest.importorskip("dask.array")
    import dask
    import fastgmm._dask as fd

    monkeypatch.setattr(fd, "SAMPLE_ROWS", 200)
    X, _ = make_mixture(3000, 3, 3, seed=15)
    with dask.config.set(scheduler="synchronous"):
        data = fd.DaskData(da.from_array(X, chunks=(700, 3)), None, 3)
        assert data.local is None
        mean, cov = data.prior_moments(full=True)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(X.T), rtol=1e-12)


def test_callback_progress_and_failed_fit_restore():
    X, _ = make_mixture(800, 2, 3, seed=16)
    seen = []
    est = _quiet_fit(BayesianGaussianMixture(n_components=4, random_state=0, max_iter=15),
                     X, callback=seen.append)
    assert [info.n_iter for info in seen] == list(range(1, est.n_iter_ + 1))
    assert [info.lower_bound for info in seen] == est.lower_bounds_
    np.testing.assert_array_equal(seen[-1].weights, est.weights_)
    _quiet_fit(BayesianGaussianMixture(n_components=2, max_iter=3), X,
               callback=fastgmm.ProgressBar(file=__import__("io").StringIO()))
    before = {k: v for k, v in est.__dict__.items()}

    def stop(info):
        if info.n_iter == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        est.fit(X + 1.0, callback=stop)
    assert est.__dict__.keys() == before.keys()
    for key, value in before.items():
        assert est.__dict__[key] is value, key


def test_on_degenerate_reseeds_a_collapsed_component_and_keeps_empty_ones():
    # The Wishart prior keeps a Bayesian mixture's covariances positive, unless
    # it is negligible: reg_covar=0, a covariance prior that rounds to 0 in
    # float32, a negligible mean precision prior, and a component on identical
    # rows collapses.
    rng = np.random.default_rng(17)
    X = np.vstack([rng.normal(size=(300, 2)) + 9.0, np.zeros((5, 2))]).astype(np.float32)
    params = dict(n_components=5, covariance_type="diag", reg_covar=0.0, random_state=0,
                  covariance_prior=np.full(2, 1e-300), mean_precision_prior=1e-300,
                  init_params="kmeans", max_iter=20)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        _quiet_fit(BayesianGaussianMixture(**params), X)
    with pytest.warns(fastgmm.ComponentRecoveryWarning, match="not positive definite") as got:
        est = _quiet_fit(BayesianGaussianMixture(**params), X, on_degenerate="reseed")
    assert np.all(est.covariances_ > 0)
    # Components the Dirichlet process empties are its answer: never re-seeded.
    assert not any("almost no samples" in str(w.message) for w in got)
    from fastgmm._reliability import degenerate_components

    assert degenerate_components(np.array([0.0, 5.0]), np.ones((2, 2)), "diag", np.float64,
                                 1.0, empty=False) == {}


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_stochastic_variational_inference(covariance_type):
    # 100 batches of 200 rows end within 1% of the batch fit's lower bound
    # per sample: the bound scikit-learn's loop reports one iteration on
    # from each model's posteriors over all the rows.
    from fastgmm._data import InMemoryData, Workspace
    from fastgmm._threads import blas_single_threaded

    X, _ = make_mixture(20000, 3, 4, seed=12)
    X = X[np.random.default_rng(0).permutation(X.shape[0])]
    params = dict(n_components=6, covariance_type=covariance_type, random_state=0,
                  max_iter=500)
    batch = BayesianGaussianMixture(**params).fit(X)
    svi = BayesianGaussianMixture(**params)
    svi.partial_fit(X[:200])          # the first batch is fitted as fit does
    first_n_iter = svi.n_iter_
    for b in range(1, 100):
        svi.partial_fit(X[b * 200 : (b + 1) * 200])
    assert svi.n_iter_ == first_n_iter + 99 == len(svi.lower_bounds_)
    data = InMemoryData(X, None)

    def bound(model):
        with blas_single_threaded():
            return model._em_iteration(data, model._get_parameters(),
                                       Workspace(data, covariance_type, 6), 1)[1]

    per_sample_svi, per_sample_batch = bound(svi) / 20000, bound(batch) / 20000
    assert abs(per_sample_svi - per_sample_batch) <= 0.01 * abs(per_sample_batch)
    assert abs(svi.score(X) - batch.score(X)) <= 0.01 * abs(batch.score(X))


def test_partial_fit_after_fit_and_state_reset():
    X, _ = make_mixture(2000, 2, 3, seed=18)
    est = _quiet_fit(BayesianGaussianMixture(n_components=3, random_state=0), X[:1000])
    n_iter = est.n_iter_
    est.partial_fit(X[1000:1500])
    assert est.n_iter_ == n_iter + 1 and len(est.lower_bounds_) == n_iter + 1
    est.partial_fit(X[1500:])
    assert est._svi_state["rows"] == 1000
    _quiet_fit(est, X)
    assert not hasattr(est, "_svi_state")


# ------------------------------- scikit-learn's own tests, the class swapped

import sklearn.mixture.tests.test_bayesian_mixture as sk_bayesian_tests  # noqa: E402
import sklearn.mixture.tests.test_mixture as sk_mixture_tests  # noqa: E402

# scikit-learn's tests that reach into its private internals, not the estimator:
SKLEARN_PRIVATE = {
    "test_log_dirichlet_norm": "tests sklearn.mixture._bayesian_mixture._log_dirichlet_norm, "
                               "a private function of scikit-learn's module",
    "test_log_wishart_norm": "tests sklearn.mixture._bayesian_mixture._log_wishart_norm, "
                             "a private function of scikit-learn's module",
    "test_compare_covar_type": "calls the private _check_parameters and "
                               "_initialize_parameters; test_max_iter_zero_is_the_initialisation "
                               "checks the same initial parameters through fit(max_iter=0)",
}


@pytest.fixture(autouse=True)
def _sklearn_tests_use_fastgmm(monkeypatch):
    monkeypatch.setattr(sk_bayesian_tests, "BayesianGaussianMixture", BayesianGaussianMixture)


# Every other test of scikit-learn's test_bayesian_mixture.py, collected here with
# its own parametrisation; the fixture above makes it build ours.
for _name in dir(sk_bayesian_tests):
    if _name.startswith("test_") and _name not in SKLEARN_PRIVATE:
        globals()["test_sklearn_" + _name[len("test_"):]] = getattr(sk_bayesian_tests, _name)
del _name


@pytest.mark.parametrize("name", sorted(SKLEARN_PRIVATE))
def test_sklearn_private(name):
    assert hasattr(sk_bayesian_tests, name)
    pytest.skip(SKLEARN_PRIVATE[name])


@pytest.mark.parametrize("test", [sk_mixture_tests.test_gaussian_mixture_n_iter,
                                  sk_mixture_tests.test_mixture_n_components_greater_than_n_samples_error],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("estimator", [fastgmm.GaussianMixture(), BayesianGaussianMixture()],
                         ids=lambda e: type(e).__name__)
def test_sklearn_test_mixture(test, estimator):
    # scikit-learn's test_mixture.py parametrises over its own two classes: ours instead.
    test(estimator)


def test_all_of_sklearns_tests_are_run_or_named():
    theirs = {n for n in dir(sk_bayesian_tests) if n.startswith("test_")}
    ours = {n for n in globals() if n.startswith("test_sklearn_")}
    assert {"test_sklearn_" + n[5:] for n in theirs - set(SKLEARN_PRIVATE)} <= ours
    assert {n for n in dir(sk_mixture_tests) if n.startswith("test_")} == {
        "test_gaussian_mixture_n_iter", "test_mixture_n_components_greater_than_n_samples_error"}


def test_sample_after_a_float32_fit():
    # an outside audit: float32 weights_ summing to 1 + 1.1e-8 made numpy's
    # multinomial refuse them (sample() raised after a third of such fits)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    for seed in range(12):
        X = np.random.default_rng(seed).normal(size=(300, 2)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = BayesianGaussianMixture(n_components=30, random_state=1,
                                            max_iter=20).fit(X)
        samples, labels = model.sample(50)
        assert samples.shape == (50, 2) and np.all(np.isfinite(samples))
        assert np.all(model.weights_[labels] > 0)
