"""Watching a long fit: the per-iteration callback and the progress bar."""

import io
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture, IterationInfo, ProgressBar
from conftest import make_mixture


def test_callback_sees_every_iteration_of_every_initialisation():
    X, _ = make_mixture(n_samples=800, n_features=2, n_components=3, seed=31)
    seen = []
    gmm = GaussianMixture(3, n_init=3, init_params="random", random_state=0, tol=1e-4)
    gmm.fit(X, callback=seen.append)
    assert all(isinstance(info, IterationInfo) for info in seen)
    assert [i.init for i in seen] == sorted(i.init for i in seen)
    assert {i.init for i in seen} == {0, 1, 2}
    for init in range(3):
        run = [i for i in seen if i.init == init]
        assert [i.n_iter for i in run] == list(range(1, len(run) + 1))
        assert run[-1].converged and not any(i.converged for i in run[:-1])
    # The kept initialisation's bounds are what the callback reported for it.
    kept = [i for i in seen if i.lower_bound == gmm.lower_bound_][0].init
    np.testing.assert_array_equal([i.lower_bound for i in seen if i.init == kept],
                                  gmm.lower_bounds_)
    last = [i for i in seen if i.init == kept][-1]
    np.testing.assert_array_equal(last.means, gmm.means_)


def test_callback_in_fit_predict_and_fit_batches():
    X, _ = make_mixture(n_samples=600, n_features=2, n_components=2, seed=32)
    seen = []
    GaussianMixture(2, random_state=0).fit_predict(X, callback=seen.append)
    assert seen and seen[-1].n_iter == len(seen)
    seen.clear()
    GaussianMixture(2, init_params="random_from_data", random_state=0).fit_batches(
        [X[:300], X[300:]], callback=seen.append)
    assert seen and seen[-1].converged


def test_an_exception_in_the_callback_leaves_the_estimator_as_it_was():
    X, _ = make_mixture(n_samples=300, n_features=2, n_components=2, seed=33)
    gmm = GaussianMixture(2, random_state=0)

    def stop(info):
        if info.n_iter == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        gmm.fit(X, callback=stop)
    assert not [k for k in vars(gmm) if k.endswith("_")]


@pytest.mark.parametrize("converges", [True, False])
def test_progress_bar_covers_n_init_times_max_iter(converges):
    X, _ = make_mixture(n_samples=500, n_features=2, n_components=2, seed=34)
    out = io.StringIO()
    params = dict(n_components=2, n_init=2, random_state=0, max_iter=20,
                  tol=1e-3 if converges else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(**params).fit(X, callback=ProgressBar(file=out, desc="fit"))
    text = out.getvalue()
    assert "40/40" in text and "fit" in text


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
def test_the_callbacks_arrays_cannot_change_the_model(estimator):
    # an outside audit: info.means was the fitted array itself after the last
    # iteration; writing into it changed means_ and not precisions_
    import fastgmm

    X, _ = make_mixture(n_samples=300, n_features=2, n_components=2, seed=5)
    seen = []

    def callback(info):
        seen.append(info)
        for array in (info.weights, info.means, info.covariances):
            with pytest.raises(ValueError, match="read-only"):
                array[...] = 0

    model = getattr(fastgmm, estimator)(n_components=2, random_state=0, max_iter=5, tol=0)
    model.fit(X, callback=callback)
    assert len(seen) == 5 and np.all(np.isfinite(model.means_))
    np.testing.assert_array_equal(seen[-1].means, model.means_)
