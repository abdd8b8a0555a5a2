"""The README's code runs as written.

The snippets are read from README.md itself, by section, so an edit there
is tested as it stands. The "Use" snippets run in this process on a small
`X` (the one name they take as given); the cluster snippet is a complete
script and runs as one, in a subprocess, starting its own LocalCluster.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(section):
    """The ```python blocks of the README section headed `## {section}`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else len(text)]
    blocks = re.findall(r"^```python\n(.*?)^```$", body, flags=re.DOTALL | re.MULTILINE)
    assert blocks, f"no python block in README section {section!r}"
    return blocks


@pytest.fixture
def X():
    """Three blobs in features of very different scales (metres, grams, volts)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, 3))
    rows = rng.integers(3, size=600)
    return (centres[rows] + rng.normal(size=(600, 3))) * [1.0, 1000.0, 1e-3]


def test_the_use_snippets_run(X):
    plain, pipeline = python_blocks("Use")
    names = {"X": X}
    exec(plain, names)
    assert names["labels"].shape == (600,)
    assert names["proba"].shape == (600, 16)
    assert names["log_density"].shape == (600,)

    names = {"X": X, "GaussianMixture": names["GaussianMixture"]}
    exec(pipeline, names)
    model = names["model"]
    assert model[-1].converged_
    np.testing.assert_array_equal(names["labels"], model[-1].predict(model[0].transform(X)))
    np.testing.assert_allclose(names["proba"].sum(axis=1), 1.0)


def test_pipeline_density_in_the_original_units(X):
    """The README's correction: score_samples of the pipeline minus
    sum(log scale_) is the log-density of the mixture in X's own units."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastgmm import GaussianMixture

    model = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    scaler, gmm = model
    corrected = model.score_samples(X) - np.log(scaler.scale_).sum()
    # Each component carried back to X's units, its log-density taken directly.
    log_densities = []
    for weight, mean, cov in zip(gmm.weights_, gmm.means_, gmm.covariances_):
        cholesky = np.linalg.cholesky(cov * np.outer(scaler.scale_, scaler.scale_))
        z = np.linalg.solve(cholesky, (X - (mean * scaler.scale_ + scaler.mean_)).T)
        log_densities.append(np.log(weight) - 0.5 * (z ** 2).sum(axis=0)
                             - np.log(np.diag(cholesky)).sum()
                             - 0.5 * X.shape[1] * np.log(2 * np.pi))
    np.testing.assert_allclose(corrected, logsumexp(log_densities, axis=0), rtol=1e-9)

def test_the_cluster_snippet_runs_as_a_script(tmp_path):
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    (snippet,) = python_blocks("Fitting on a cluster")
    script = tmp_path / "cluster_snippet.py"
    script.write_text(snippet, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    # It prints the weights and the number of rows labelled 1: one blob of two.
    weights, ones = re.fullmatch(r"\[([0-9. ]+)\] (\d+)\n", result.stdout).groups()
    np.testing.assert_allclose(np.array(weights.split(), dtype=float), [0.5, 0.5], atol=0.01)
    assert abs(int(ones) - 100_000) < 1000


def test_bayesian_snippet_runs(X):
    namespace = {"X": X}
    for block in python_blocks("Letting the data choose K"):
        exec(compile(block, "README.md", "exec"), namespace)
    assert 1 <= (namespace["dpgmm"].weights_ > 0.01).sum() <= 10


def test_the_saving_snippet_runs(X, tmp_path, monkeypatch):
    # Its gmm and model are those of "Use", its dpgmm that of "Letting the
    # data choose K"; each loads back as the class it was saved from.
    import fastgmm

    monkeypatch.chdir(tmp_path)
    plain, pipeline = python_blocks("Use")
    namespace = {"X": X, "fastgmm": fastgmm}
    exec(plain, namespace)
    exec(pipeline, namespace)
    for block in python_blocks("Letting the data choose K"):
        exec(compile(block, "README.md", "exec"), namespace)
    saved = {name: namespace[name] for name in ("gmm", "model", "dpgmm")}
    for block in python_blocks("Saving a model"):
        exec(compile(block, "README.md", "exec"), namespace)
    for name, before in saved.items():
        after = namespace[name]
        assert after is not before and type(after) is type(before), name
        assert after.predict_proba(X).tobytes() == before.predict_proba(X).tobytes(), name
