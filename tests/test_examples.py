"""Every script in examples/ runs to the end and writes its figure.

Each runs as a subprocess with the Agg backend in an empty temporary
directory, as a reader would run it; the figure it writes there (a PNG,
or a GIF for the animation) must be a real image.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
# The figure each example writes, named after the script.
FIGURE_SUFFIX = {"em_animation": ".gif"}


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
    with Image.open(figure) as image:
        assert image.format == figure.suffix[1:].upper()
        assert image.size[0] >= 300 and image.size[1] >= 200
        if image.format == "GIF":
            assert image.n_frames > 5
