"""Every script in examples/ runs to the end and writes its figure.

Each runs as a subprocess with the Agg backend in an empty temporary
directory, as a reader would run it; the figure it writes there (a PNG,
or a GIF for the animation) must be a real image. Where an example
measures itself against a known truth, what it prints must clear a bar.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
# The figure each example writes, named after the script.
FIGURE_SUFFIX = {"em_animation": ".gif"}
# What an example reports about its fit against the truth it simulated or
# loaded: a pattern of its output, and the least value each number the
# pattern captures may take (the examples are deterministic; the bars leave
# room for rounding differences between platforms, not for a broken fit).
FOUND = {
    "soft_clustering": [(r"accuracy against the true blobs: (\d\.\d+)", 0.9)],
    "iris": [(r"accuracy against the species: (\d\.\d+)", 0.9)],
    "market_regimes": [
        (r"agreement with the simulated regimes: (\d\.\d+)", 0.7),
        (r"given that regime: calm (\d+\.\d)%, turbulent (\d+\.\d)%, crisis (\d+\.\d)%", 60),
        # The components ranked by the volatility of their days are the regimes.
        (r"naming by volatility agrees", None),
    ],
    # Ten components offered, four clusters in the data: the Dirichlet process
    # keeps four, as BIC's choice over ten fits does.
    "dirichlet_process": [
        (r"Dirichlet process: 4 of 10 components carry weight above 1% \((\d+\.\d)% of the mass",
         99.0),
        (r"BIC over 1\.\.10 full-covariance GaussianMixtures picks 4 components", None),
    ],
    "star_galaxy_quasar": [
        (r"accuracy per class \(unlabelled objects\): "
         r"star (\d\.\d+), galaxy (\d\.\d+), quasar (\d\.\d+)", 0.8),
        (r"accuracy on the unlabelled objects: (\d\.\d+)", 0.9),
    ],
}


def test_examples_are_there():
    assert len(SCRIPTS) >= 5, f"expected the examples in {EXAMPLES}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs_and_writes_its_figure(script, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    figure = tmp_path / (script.stem + FIGURE_SUFFIX.get(script.stem, ".png"))
    assert figure.exists(), f"{script.name} did not write {figure.name}"
    assert f"wrote {figure.name}" in result.stdout
    assert len(result.stdout.splitlines()) >= 3  # it says what it found
    for pattern, least in FOUND.get(script.stem, []):
        found = re.search(pattern, result.stdout)
        assert found, f"{script.name} did not print {pattern!r}:\n{result.stdout}"
        for value in found.groups():
            assert float(value) >= least, f"{script.name}: {found.group(0)}"
    with Image.open(figure) as image:
        assert image.format == figure.suffix[1:].upper()
        assert image.size[0] >= 300 and image.size[1] >= 200
        if image.format == "GIF":
            assert image.n_frames > 5
