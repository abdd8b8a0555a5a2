"""The public API is typed (py.typed ships with the package): every public
function and method has annotated parameters and return type."""

import inspect
from importlib.resources import files

import numpy as np
import pytest

import fastgmm

PUBLIC_CALLABLES = [
    fastgmm.show_config,
    fastgmm.select_model,
    fastgmm.SelectionTable.best.fget,
    fastgmm.SelectionTable.to_pandas,
    fastgmm.ProgressBar.__init__,
    fastgmm.ProgressBar.__call__,
] + [
    getattr(fastgmm.GaussianMixture, name)
    for name in ("__init__", "fit", "fit_predict", "partial_fit", "fit_batches",
                 "score_samples", "score", "predict", "predict_proba", "sample",
                 "bic", "aic")
]


@pytest.mark.parametrize("function", PUBLIC_CALLABLES, ids=lambda f: f.__qualname__)
def test_public_signatures_are_annotated(function):
    signature = inspect.signature(inspect.unwrap(function))
    missing = [name for name, p in signature.parameters.items()
               if name != "self" and p.annotation is inspect.Parameter.empty]
    assert not missing, f"{function.__qualname__}: no annotation on {missing}"
    assert signature.return_annotation is not inspect.Signature.empty


def test_py_typed_marker_is_installed():
    assert files("fastgmm").joinpath("py.typed").is_file()


def test_bic_and_aic_accept_array_likes():
    # Annotated ArrayLike: a nested list gives the same criteria as the array.
    X = np.random.default_rng(0).normal(size=(300, 2))
    gm = fastgmm.GaussianMixture(2, random_state=0).fit(X)
    assert gm.bic(X.tolist()) == gm.bic(X)
    assert gm.aic(X.tolist()) == gm.aic(X)


def test_help_shows_readable_signatures():
    # The review: help(GaussianMixture) showed numpy's expansion of ArrayLike
    # (Union[numpy._typing._array_like._Buffer, ...], 700+ characters a line).
    import pydoc

    text = pydoc.render_doc(fastgmm.GaussianMixture, renderer=pydoc.plaintext)
    assert "_NestedSequence" not in text and "_SupportsArray" not in text
    for name in ("fit", "predict", "score", "bic", "fit_batches", "partial_fit"):
        line = next(line for line in text.splitlines() if f" {name}(self" in line)
        assert len(line) < 250, line     # was 700-800 characters
        assert "ArrayLike" in line or name == "fit_batches", line
    signature = str(inspect.signature(fastgmm.GaussianMixture.fit))
    assert signature.startswith("(self, X: 'ArrayLike', y: 'object' = None"), signature
