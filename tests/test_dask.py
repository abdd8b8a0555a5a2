"""Fits and predictions on Dask arrays, on dask's threaded scheduler and on a
dask.distributed LocalCluster of two single-threaded worker processes.

Every comparison is against the in-memory fit of the same data from the same
initialisation: the Dask fit sums the same per-block statistics of the same
kernel, in another grouping, so float64 results agree to rounding.
"""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from fastgmm import GaussianMixture  # noqa: E402
from fastgmm import _dask  # noqa: E402

from conftest import make_mixture  # noqa: E402

# Most fits here run a fixed number of iterations (tol=0) on purpose.
pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
INITS = ["kmeans", "k-means++", "random", "random_from_data"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=40,
    ) as local_cluster, distributed.Client(local_cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        yield client


# Every covariance type on the threaded scheduler, one on the cluster (whose
# start-up and per-iteration round trips dominate this file's run time).
THREADS_AND_CLUSTER = [("threads", c) for c in COVARIANCE_TYPES] + [("distributed", "full")]


@pytest.fixture(params=["threads", "distributed"])
def scheduler(request):
    """Runs the test under dask's threaded scheduler, then on the LocalCluster."""
    if request.param == "threads":
        with dask.config.set(scheduler="threads"):
            yield request.param
    else:
        client = request.getfixturevalue("cluster")
        with dask.config.set(scheduler=client):
            yield request.param


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads"):
        yield


def user_init(X, n_components, covariance_type, seed=0):
    """A fixed starting point: the in-memory fit's initial parameters."""
    start = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0,
                            random_state=seed).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)


def assert_same_fit(a, b, rtol):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        expected, actual = getattr(a, name), getattr(b, name)
        assert actual.dtype == expected.dtype, name
        scale = np.max(np.abs(expected))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale, err_msg=name)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=rtol)
    assert b.n_iter_ == a.n_iter_
    assert b.converged_ == a.converged_


def fit_both(X, chunks, sample_weight=None, dask_weight=None, **params):
    in_memory = GaussianMixture(**params).fit(X, sample_weight=sample_weight)
    on_dask = GaussianMixture(**params).fit(
        da.from_array(X, chunks=chunks),
        sample_weight=sample_weight if dask_weight is None else dask_weight,
    )
    return in_memory, on_dask


# ------------------------------------------------------------ equality

@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_equals_in_memory_from_same_init(scheduler, covariance_type):
    X, _ = make_mixture(900, 3, 3)
    a, b = fit_both(X, (250, 3), n_components=3, covariance_type=covariance_type, tol=0,
                    max_iter=5, **user_init(X, 3, covariance_type))
    assert_same_fit(a, b, 1e-10)


@pytest.mark.parametrize("init_params", INITS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_small_data_initialises_exactly_as_in_memory(threads, covariance_type, init_params):
    # Data no larger than the init sample is fetched and initialised with the
    # in-memory code, from the same random_state draws.
    X, _ = make_mixture(600, 3, 3, seed=1)
    a, b = fit_both(X, (170, 3), n_components=3, covariance_type=covariance_type,
                    init_params=init_params, random_state=0, tol=0, max_iter=5)
    assert_same_fit(a, b, 1e-10)


@pytest.mark.parametrize("scheduler, covariance_type", THREADS_AND_CLUSTER,
                         indirect=["scheduler"])
def test_float32_stays_float32(scheduler, covariance_type):
    X, _ = make_mixture(800, 3, 3, dtype=np.float32)
    a, b = fit_both(X, (300, 3), n_components=3, covariance_type=covariance_type, tol=0,
                    max_iter=5, **user_init(X, 3, covariance_type))
    assert b.means_.dtype == np.float32 and b.covariances_.dtype == np.float32
    assert_same_fit(a, b, 1e-4)
    Xd = da.from_array(X, chunks=(300, 3))
    assert b.predict_proba(Xd).dtype == np.float32
    assert b.score_samples(Xd).compute().dtype == np.float32


@pytest.mark.parametrize("chunks", [
    ((100, 157, 43),),                      # blocks of unequal size
    ((300,),),                              # a single block
    ((2,) * 150,),                          # more blocks (150) than rows per component
], ids=["unequal", "single", "tiny"])
def test_block_layouts(threads, chunks):
    X, _ = make_mixture(sum(chunks[0]), 4, 3, seed=2)
    a, b = fit_both(X, chunks + ((4,),), n_components=3, tol=0, max_iter=6,
                    **user_init(X, 3, "full"))
    assert_same_fit(a, b, 1e-10)


def test_feature_chunks_are_joined(threads):
    X, _ = make_mixture(500, 4, 2)
    a, b = fit_both(X, (200, 2), n_components=2, covariance_type="diag", tol=0,
                    max_iter=4, **user_init(X, 2, "diag"))
    assert_same_fit(a, b, 1e-10)


def test_integer_data_is_fitted_in_float64(threads):
    X = np.random.default_rng(0).integers(0, 20, size=(300, 2))
    a, b = fit_both(X, (100, 2), n_components=2, tol=0, max_iter=3, random_state=0)
    assert b.means_.dtype == np.float64
    assert_same_fit(a, b, 1e-10)


# ----------------------------------------------------- large-data inits

@pytest.fixture
def small_sample(monkeypatch):
    """Make the data 'large': inits run on samples drawn block by block."""
    monkeypatch.setattr(_dask, "SAMPLE_ROWS", 200)


@pytest.mark.parametrize("covariance_type, init_params", [
    (c, "kmeans") for c in COVARIANCE_TYPES
] + [(c, i) for c in ("full", "tied") for i in ("k-means++", "random_from_data")])
def test_sampled_inits_reach_the_in_memory_optimum(threads, small_sample, covariance_type,
                                                   init_params):
    X, _ = make_mixture(2000, 2, 3, seed=3, scale=8.0)
    params = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
                  random_state=0, tol=1e-6, max_iter=100)
    a, b = fit_both(X, (450, 2), **params)
    assert b.converged_
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-6)
    if covariance_type != "tied":
        # (tied from one-hot rows ends, in memory too, in a flat optimum of
        # nearly coincident components: only its lower bound is well defined.)
        order_a, order_b = np.argsort(a.means_[:, 0]), np.argsort(b.means_[:, 0])
        np.testing.assert_allclose(b.means_[order_b], a.means_[order_a], rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sampled_kmeans_assigns_rows_to_the_kmeans_centres(threads, small_sample, monkeypatch,
                                                           dtype):
    # The sample's k-means centres decide every row's component; each
    # component's statistics are shifted by one of its sampled rows. (The
    # shifted centres once overwrote the k-means ones, so rows went to the
    # nearest of those sampled rows instead.)
    X, _ = make_mixture(2000, 2, 3, seed=3, scale=8.0)
    results, specs = [], []
    real_kmeans, real_statistics = _dask.kmeans, _dask.DaskData._statistics

    def recording_kmeans(*args, **kwargs):
        results.append(real_kmeans(*args, **kwargs))
        return results[-1]

    def recording_statistics(self, spec):
        specs.append(spec)
        return real_statistics(self, spec)

    monkeypatch.setattr(_dask, "kmeans", recording_kmeans)
    monkeypatch.setattr(_dask.DaskData, "_statistics", recording_statistics)
    GaussianMixture(3, init_params="kmeans", max_iter=0, random_state=0).fit(
        da.from_array(X.astype(dtype), chunks=(450, 2)))
    (labels, centres), = results
    kind, rule_centres = specs[0].resp_rule
    assert kind == "nearest"
    np.testing.assert_array_equal(rule_centres, centres.astype(np.float64))
    assert not np.array_equal(specs[0].centers, centres)


def test_one_hot_rows_statistics_equal_in_memory(threads, small_sample):
    # The tied initialisation from chosen rows sums every block, one-hot on those rows.
    from fastgmm._initialization import _stats_of_given_resp
    from _reference import one_hot_blocks

    X, _ = make_mixture(2000, 2, 3)
    data = _dask.DaskData(da.from_array(X, chunks=(450, 2)), None, 3)
    chosen = np.array([1999, 5, 1000])
    spec = _dask._PassSpec("tied", 3, 1, resp_rule=("rows", chosen),
                           centers=np.zeros((3, 2)), tied_center=np.zeros(2))
    labels = np.full(2000, -1)
    labels[chosen] = np.arange(3)
    expected = _stats_of_given_resp(X, one_hot_blocks(labels, 3, 256, np.float64), "tied",
                                    np.zeros((3, 2)), np.zeros(2), 1)
    np.testing.assert_allclose(data._statistics(spec), expected, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sampled_random_init(threads, small_sample, covariance_type):
    # Uniform random responsibilities, block by block: every component starts
    # near the data's mean with a weight near 1 / K, as in memory.
    X, _ = make_mixture(2000, 2, 3, seed=3)
    start = GaussianMixture(3, covariance_type=covariance_type, init_params="random",
                            max_iter=0, random_state=0).fit(da.from_array(X, chunks=450))
    np.testing.assert_allclose(start.weights_, 1 / 3, atol=0.02)
    np.testing.assert_allclose(start.means_, np.broadcast_to(X.mean(axis=0), (3, 2)),
                               atol=0.1 * X.std())
    if covariance_type == "full":
        np.testing.assert_allclose(start.covariances_[0], np.cov(X.T), rtol=0.1)


def test_sampled_init_is_deterministic_across_schedulers(cluster, small_sample):
    X, _ = make_mixture(3000, 3, 4, seed=4)
    Xd = da.from_array(X, chunks=(333, 3))
    fits = []
    for scheduler in ("threads", cluster, "sync"):
        with dask.config.set(scheduler=scheduler):
            fits.append(GaussianMixture(4, init_params="random", random_state=5, tol=0,
                                        max_iter=5).fit(Xd))
    for other in fits[1:]:
        assert_same_fit(fits[0], other, 0.0)


def test_weighted_sampled_init(threads, small_sample):
    X, labels = make_mixture(3000, 2, 3, seed=5, scale=8.0)
    # Component 0 carries no weight: a weighted sample never draws its rows.
    w = np.where(labels == 0, 0.0, 1.0 + (labels == 2))
    gm = GaussianMixture(2, init_params="random_from_data", random_state=0, max_iter=300,
                         tol=1e-8).fit(da.from_array(X, chunks=(700, 2)), sample_weight=w)
    reference = GaussianMixture(2, init_params="kmeans", random_state=0, max_iter=300,
                                tol=1e-8).fit(X, sample_weight=w)
    assert gm.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-6)


# ------------------------------------------------------------ NaN

def counting(X, chunks):
    """X as a Dask array whose blocks count how often they are computed."""
    calls = []

    def load(block, block_info=None):
        calls.append(block_info[0]["chunk-location"][0])
        return block

    return da.from_array(X, chunks=chunks).map_blocks(load, dtype=X.dtype), calls


@pytest.mark.parametrize("large", [False, True], ids=["fetched", "sampled"])
def test_nan_in_one_block_is_reported_once(threads, monkeypatch, large):
    if large:
        monkeypatch.setattr(_dask, "SAMPLE_ROWS", 100)
    X, _ = make_mixture(1000, 3, 3)
    X[555, 1] = np.nan
    Xd, calls = counting(X, (200, 3))
    gm = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match=r"contains NaN: row 555, in block 2 \(rows 400 to 599\)"):
        gm.fit(Xd)
    assert 2 in calls and len(calls) == len(set(calls))     # no block computed twice
    assert not hasattr(gm, "means_")


def test_infinity_and_bad_weights_are_reported(threads, small_sample):
    X, _ = make_mixture(1000, 2, 2)
    Xd = da.from_array(X, chunks=(300, 2))
    bad = X.copy()
    bad[10, 0] = np.inf
    with pytest.raises(ValueError, match="contains infinity: row 10, in block 0"):
        GaussianMixture(2).fit(da.from_array(bad, chunks=(300, 2)))
    w = np.ones(1000)
    w[700] = np.nan
    with pytest.raises(ValueError, match="sample_weight contains NaN: row 700, in block 2"):
        GaussianMixture(2).fit(Xd, sample_weight=w)
    w[700] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to sample_weight"):
        GaussianMixture(2).fit(Xd, sample_weight=w)
    w = np.zeros(1000)
    w[3] = 1.0
    with pytest.raises(ValueError, match="only 1 positive weights"):
        GaussianMixture(2).fit(Xd, sample_weight=w)


def test_nan_found_by_the_statistics_pass(threads, small_sample):
    # Data that turns bad after validation is caught by the EM pass itself.
    X, _ = make_mixture(1000, 2, 2)
    data = _dask.DaskData(da.from_array(X, chunks=(300, 2)), None, 2)
    X[650, 1] = np.nan
    data.X = da.from_array(X, chunks=(300, 2))
    start = GaussianMixture(2, random_state=0).fit(X[:600])
    from fastgmm._gaussian_mixture import _Workspace
    from fastgmm._parameters import KernelParams
    kernel = KernelParams(start.weights_, start.means_, start.precisions_cholesky_, "full",
                          np.float64)
    with pytest.raises(ValueError, match="contains NaN: row 650, in block 2"):
        data.statistics(_Workspace(data, "full", 2), kernel, 1)


# ------------------------------------------------------------ inference

def test_predictions_are_lazy_and_equal_in_memory(scheduler):
    X, _ = make_mixture(1200, 5, 4, seed=6)
    gm = GaussianMixture(4, random_state=0).fit(X)
    Xd = da.from_array(X, chunks=(500, 5))
    labels, proba, log_prob = gm.predict(Xd), gm.predict_proba(Xd), gm.score_samples(Xd)
    for lazy in (labels, proba, log_prob):
        assert isinstance(lazy, da.Array)
    assert proba.shape == (1200, 4) and proba.chunks[0] == Xd.chunks[0]
    np.testing.assert_array_equal(labels.compute(), gm.predict(X))
    np.testing.assert_allclose(proba.compute(), gm.predict_proba(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(log_prob.compute(), gm.score_samples(X), rtol=1e-12)
    assert gm.score(Xd) == pytest.approx(gm.score(X), rel=1e-12)
    assert gm.bic(Xd) == pytest.approx(gm.bic(X), rel=1e-12)
    assert gm.aic(Xd) == pytest.approx(gm.aic(X), rel=1e-12)
    w = np.random.default_rng(0).uniform(size=1200)
    wd = da.from_array(w, chunks=300)           # misaligned with X's rows: realigned
    assert gm.score(Xd, sample_weight=wd) == pytest.approx(gm.score(X, sample_weight=w),
                                                           rel=1e-12)
    assert gm.bic(Xd, sample_weight=wd) == pytest.approx(gm.bic(X, sample_weight=w),
                                                         rel=1e-12)


def test_fit_predict_returns_lazy_labels(threads):
    X, _ = make_mixture(600, 2, 3)
    Xd = da.from_array(X, chunks=(200, 2))
    gm = GaussianMixture(3, random_state=0)
    labels = gm.fit_predict(Xd)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), GaussianMixture(3, random_state=0)
                                  .fit_predict(X))


def test_inference_checks(threads):
    X, _ = make_mixture(300, 2, 2)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        gm.predict(da.ones((10, 3), chunks=5))
    bad = X.copy()
    bad[123, 0] = np.nan
    with pytest.raises(ValueError, match="contains NaN: row 123, in block 1"):
        gm.predict(da.from_array(bad, chunks=(100, 2))).compute()


# ------------------------------------------------------------ weights

@pytest.mark.parametrize("scheduler, covariance_type", THREADS_AND_CLUSTER,
                         indirect=["scheduler"])
def test_sample_weight_equals_in_memory(scheduler, covariance_type):
    X, _ = make_mixture(900, 3, 3, seed=7)
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=900)
    init = user_init(X, 3, covariance_type)
    a, b = fit_both(X, (250, 3), sample_weight=w, dask_weight=da.from_array(w, chunks=250),
                    n_components=3, covariance_type=covariance_type, tol=0, max_iter=6,
                    **init)
    assert_same_fit(a, b, 1e-10)
    # Weights chunked differently from X's rows are realigned; numpy weights work too.
    _, c = fit_both(X, (250, 3), sample_weight=w, dask_weight=da.from_array(w, chunks=100),
                    n_components=3, covariance_type=covariance_type, tol=0, max_iter=6,
                    **init)
    _, d = fit_both(X, (250, 3), sample_weight=w, n_components=3,
                    covariance_type=covariance_type, tol=0, max_iter=6, **init)
    assert_same_fit(b, c, 0.0)
    assert_same_fit(b, d, 0.0)


def test_sample_weight_of_wrong_length(threads):
    X, _ = make_mixture(300, 2, 2)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(200,\), expected \(300,\)"):
        GaussianMixture(2).fit(da.from_array(X, chunks=100),
                               sample_weight=da.ones(200, chunks=100))


# ------------------------------------------------------------ the rest

def test_bad_dask_input(threads):
    gm = GaussianMixture(2)
    with pytest.raises(ValueError, match="Expected a 2D array"):
        gm.fit(da.ones(10, chunks=5))
    X = da.from_array(np.arange(40.0).reshape(20, 2), chunks=5)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        gm.fit(X[X[:, 0] > 3])
    with pytest.raises(ValueError, match="Expected n_samples >= max"):
        GaussianMixture(30).fit(X)


def test_failed_fit_leaves_the_estimator_as_it_was(threads):
    X, _ = make_mixture(400, 2, 2)
    gm = GaussianMixture(2, random_state=0).fit(X)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(gm).items()}
    X[5, 0] = np.nan
    with pytest.raises(ValueError):
        gm.fit(da.from_array(X, chunks=100))
    assert set(vars(gm)) == set(before)
    np.testing.assert_array_equal(gm.means_, before["means_"])


def test_warm_start_and_callback(threads):
    X, _ = make_mixture(600, 2, 3)
    Xd = da.from_array(X, chunks=(200, 2))
    seen = []
    a = GaussianMixture(3, random_state=0, warm_start=True, max_iter=3, tol=0).fit(X)
    b = GaussianMixture(3, random_state=0, warm_start=True, max_iter=3, tol=0).fit(Xd)
    a.fit(X)
    b.fit(Xd, callback=seen.append)
    assert [info.n_iter for info in seen] == [1, 2, 3]
    assert_same_fit(a, b, 1e-10)


def test_core_does_not_import_dask():
    code = (
        "import sys, numpy as np; import fastgmm; "
        "fastgmm.GaussianMixture(2, random_state=0).fit(np.random.rand(50, 2)); "
        "assert not any(m == 'dask' or m.startswith(('dask.', 'distributed')) "
        "for m in sys.modules), sorted(m for m in sys.modules if 'dask' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_degenerate_components_reseeded_from_the_workers(threads):
    # on_degenerate='reseed' looks for the worst-explained rows block by block
    # on the workers, and re-seeds at the same row as the in-memory fit.
    import re
    import warnings

    from fastgmm import ComponentRecoveryWarning
    from test_reliability import collapsing_problem

    X, params = collapsing_problem("full", np.float64)
    X = np.vstack([X, [[1e3, 1e3]]])              # the worst-explained row by far...
    sample_weight = np.ones(X.shape[0])
    sample_weight[-1] = 0.0                       # ...but it does not count
    fits, rows = [], []
    for data in (X, da.from_array(X, chunks=110)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fits.append(GaussianMixture(**params).fit(data, sample_weight=sample_weight,
                                                      on_degenerate="reseed"))
        rows.append([re.findall(r"\(row (\d+)\)", str(w.message)) for w in caught
                     if issubclass(w.category, ComponentRecoveryWarning)])
    assert rows[0] and rows[1] == rows[0]
    assert str(X.shape[0] - 1) not in rows[1][0]
    assert_same_fit(fits[0], fits[1], 1e-10)


@pytest.mark.parametrize("as_dask", [False, True])
def test_weighted_score_bic_aic_on_dask_check_the_weights(threads, as_dask):
    # an outside audit: score/bic/aic on Dask summed negative and NaN weights,
    # gave NaN for weights of 1e308 and -4.0 for one of 5e-324 (numpy X: an
    # error, -4.839, -3.725), and ZeroDivisionError for all-zero weights
    X, _ = make_mixture(300, 3, 2, seed=4)
    gmm = GaussianMixture(2, random_state=0).fit(X)
    Xd = da.from_array(X, chunks=(100, 3))

    def weights(w):
        return da.from_array(w, chunks=100) if as_dask else w

    w = np.random.default_rng(2).uniform(0.5, 2.0, size=300)
    for name in ("score", "bic", "aic"):
        np.testing.assert_allclose(getattr(gmm, name)(Xd, sample_weight=weights(w)),
                                   getattr(gmm, name)(X, sample_weight=w), rtol=1e-12)
    for bad in (np.r_[np.ones(299), -1.0], np.r_[np.ones(299), np.nan],
                np.r_[np.ones(299), np.inf], np.zeros(300)):
        for name in ("score", "bic", "aic"):
            with pytest.raises(ValueError):
                getattr(gmm, name)(Xd, sample_weight=weights(bad))
    one = np.zeros(300)
    one[7] = 5e-324
    for extreme in (np.full(300, 1e308), one, w * 1e-310):
        np.testing.assert_allclose(gmm.score(Xd, sample_weight=weights(extreme)),
                                   gmm.score(X, sample_weight=extreme), rtol=1e-12)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_inference_on_an_empty_dask_array_is_refused_as_numpy_input_is(threads, method):
    # an outside audit: an empty Dask array gave empty results
    X, _ = make_mixture(300, 2, 2, seed=4)
    gmm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError) as expected:
        getattr(gmm, method)(X[:0])
    with pytest.raises(ValueError) as got:
        result = getattr(gmm, method)(da.from_array(X[:0], chunks=(1, 2)))
        getattr(result, "compute", lambda: None)()
    assert str(got.value) == str(expected.value)
