"""The command line, driven as a user drives it: `python -m fastgmm ...` in a
subprocess, in a temporary folder."""

import csv
import errno
import functools
import io
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

import fastgmm
from fastgmm import GaussianMixture, load
from fastgmm._cli import main

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env(blocked=()):
    """This process's environment with PYTHONPATH made absolute (the child
    runs in another folder); `blocked` modules fail to import there."""
    env = dict(os.environ)
    paths = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if blocked:
        paths.insert(0, str(_blocker_dir(blocked)))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("MPLBACKEND", None)
    return env


@functools.lru_cache(maxsize=None)
def _blocker_dir(modules):
    """A folder of packages named like `modules` whose import raises ImportError,
    to run the command line as if they were not installed."""
    root = Path(tempfile.mkdtemp(prefix="fastgmm-blocked-"))
    for name in modules:
        package = root / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(
            f"raise ImportError(\"No module named '{name}' (blocked by the test)\")\n")
    return root


def run_cli(*args, cwd, blocked=(), timeout=600):
    return subprocess.run([sys.executable, "-m", "fastgmm", *map(str, args)], cwd=cwd,
                          env=_env(blocked), capture_output=True, text=True,
                          timeout=timeout)


def assert_ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def assert_error(proc, match):
    """Non-zero exit, one line 'fastgmm: error: ...' on stderr matching `match`,
    no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fastgmm: error: "), lines[0]
    assert match in lines[0], lines[0]
    return lines[0]


def blobs(n_per_component=200, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [9.0, 0.0], [0.0, 9.0]])
    return np.vstack([rng.normal(c, 1.0, size=(n_per_component, 2)) for c in centers])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The same data as .csv (with and without header), .npy and .parquet."""
    folder = tmp_path_factory.mktemp("cli-data")
    X = blobs()
    np.savetxt(folder / "header.csv", X, delimiter=",", header="x,y", comments="",
               fmt="%.17g")
    np.savetxt(folder / "plain.csv", X, delimiter=",", fmt="%.17g")
    np.save(folder / "data.npy", X)
    np.save(folder / "data32.npy", X.astype(np.float32))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": X[:, 0], "y": X[:, 1]}), folder / "data.parquet")
    except ImportError:
        pass
    return folder, X


def read_csv(path):
    lines = Path(path).read_text().splitlines()
    return lines[0], np.loadtxt(lines[1:], delimiter=",", ndmin=2)


# ------------------------------------------------------------------ fit


@pytest.mark.parametrize("option, header", [("--labels", "label"),
                                            ("--proba", "proba_0,proba_1,proba_2")])
@pytest.mark.parametrize("select", [False, True])
def test_fit_data_to_stdout_is_the_csv_alone(data_dir, tmp_path, option, header, select):
    # an outside audit: the summary came first on stdout (--quiet or not), so
    # `fit ... --labels - > labels.csv` was not a CSV; it now goes to stderr
    folder, X = data_dir
    k = ["-k", "auto", "--k-range", "2..3"] if select else ["-k", 3]
    proc = assert_ok(run_cli("fit", folder / "data.npy", *k, option, "-", "--out", "m.npz",
                             "--random-state", 1, "-q", cwd=tmp_path))
    lines = proc.stdout.splitlines()
    assert lines[0] == header
    values = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    assert values.shape[0] == X.shape[0]
    assert "components to 600 rows" in proc.stderr and "model written to m.npz" in proc.stderr


def test_fit_covariance_types_given_twice_are_one(data_dir, tmp_path):
    folder, _ = data_dir
    assert_ok(run_cli("fit", folder / "data.npy", "-k", 2, "--covariance-type", "full,full",
                      "-q", cwd=tmp_path))


@pytest.mark.parametrize("name", ["header.csv", "plain.csv", "data.npy", "data.parquet"])
def test_fit_every_format(data_dir, tmp_path, name):
    folder, X = data_dir
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    proc = assert_ok(run_cli("fit", folder / name, "-k", 3, "--out", "m.npz",
                             "--labels", "labels.csv", "--proba", "proba.csv",
                             "--random-state", 1, "-q", cwd=tmp_path))
    assert "fitted 3 full components to 600 rows x 2 features" in proc.stdout
    assert proc.stderr == ""                       # --quiet: no progress bar
    gmm = load(tmp_path / "m.npz")
    expected = GaussianMixture(3, random_state=1).fit(X)
    np.testing.assert_array_equal(gmm.means_, expected.means_)
    header, labels = read_csv(tmp_path / "labels.csv")
    assert header == "label"
    np.testing.assert_array_equal(labels[:, 0], expected.predict(X))
    header, proba = read_csv(tmp_path / "proba.csv")
    assert header == "proba_0,proba_1,proba_2"
    np.testing.assert_array_equal(proba, expected.predict_proba(X))   # exact digits


def test_fit_float32_npy_stays_float32(data_dir, tmp_path):
    folder, _ = data_dir
    assert_ok(run_cli("fit", folder / "data32.npy", "-k", 3, "--out", "m.npz", "-q",
                      cwd=tmp_path))
    assert load(tmp_path / "m.npz").means_.dtype == np.float32


def test_fit_options_pass_through(data_dir, tmp_path):
    folder, X = data_dir
    assert_ok(run_cli("fit", folder / "data.npy", "-k", 2, "--covariance-type", "diag",
                      "--max-iter", 7, "--tol", 0, "--n-init", 2, "--init-params", "random",
                      "--random-state", 5, "--reg-covar", 1e-3, "--out", "m.npz", "-q",
                      cwd=tmp_path))
    gmm = load(tmp_path / "m.npz")
    params = dict(n_components=2, covariance_type="diag", max_iter=7, tol=0.0, n_init=2,
                  init_params="random", random_state=5, reg_covar=1e-3)
    for name, value in params.items():
        assert gmm.get_params()[name] == value, name
    with pytest.warns(Warning):
        expected = GaussianMixture(**params).fit(X)
    np.testing.assert_array_equal(gmm.means_, expected.means_)
    assert gmm.n_iter_ == 7


def test_fit_shows_progress_unless_quiet(data_dir, tmp_path):
    folder, _ = data_dir
    proc = assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, cwd=tmp_path))
    assert "fit" in proc.stderr and "/100" in proc.stderr   # the bar over max_iter
    proc = assert_ok(run_cli("fit", folder / "data.npy", "-k", "auto", "--k-range", "2..3",
                             cwd=tmp_path))
    assert "select: 2/2 fits" in proc.stderr


def test_fit_auto_chooses_k(data_dir, tmp_path):
    folder, X = data_dir
    proc = assert_ok(run_cli("fit", folder / "header.csv", "-k", "auto", "--k-range", "1..5",
                             "--covariance-type", "full,spherical", "--out", "m.npz", "-q",
                             cwd=tmp_path))
    assert "* lowest BIC" in proc.stdout
    assert proc.stdout.count("full") >= 5 and "spherical" in proc.stdout
    best, _ = fastgmm.select_model(X, range(1, 6), ("full", "spherical"), random_state=0)
    gmm = load(tmp_path / "m.npz")
    assert gmm.n_components == best.n_components == 3
    assert gmm.covariance_type == best.covariance_type
    np.testing.assert_array_equal(gmm.means_, best.means_)


def test_fit_auto_is_the_default_over_1_to_9(data_dir, tmp_path):
    folder, _ = data_dir
    proc = assert_ok(run_cli("fit", folder / "data.npy", "-q", cwd=tmp_path))
    table_rows = [line for line in proc.stdout.splitlines() if line.rstrip().endswith(
        tuple("0123456789")) and " full " in line]
    assert len(table_rows) == 9


def test_fit_progress_and_warnings_are_one_line_each(data_dir, tmp_path):
    folder, _ = data_dir
    proc = assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, "--max-iter", 1,
                             "--tol", 0, "-q", cwd=tmp_path))
    assert proc.stderr.strip().startswith("fastgmm: warning: ")
    assert "did not converge" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_fit_plot(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("fastgmm.plot")
    folder, _ = data_dir
    proc = assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, "--plot", "fit.png", "-q",
                             cwd=tmp_path))
    assert "figure written to fit.png" in proc.stdout
    content = (tmp_path / "fit.png").read_bytes()
    assert content.startswith(PNG_MAGIC) and len(content) > 10_000


def test_fit_plot_without_matplotlib(data_dir, tmp_path):
    folder, _ = data_dir
    proc = run_cli("fit", folder / "data.npy", "-k", 3, "--plot", "fit.png", "--out", "m.npz",
                   cwd=tmp_path, blocked=("matplotlib",))
    assert_error(proc, 'needs matplotlib: pip install "fastgmm[plot]"')
    assert not (tmp_path / "m.npz").exists()     # refused before fitting


# ------------------------------------------------------------------ predict


@pytest.mark.parametrize("name", ["header.csv", "plain.csv", "data.npy", "data.parquet"])
def test_predict_every_format(data_dir, tmp_path, name):
    folder, X = data_dir
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    gmm = GaussianMixture(3, random_state=0).fit(X)
    gmm.save(tmp_path / "m.npz")
    proc = assert_ok(run_cli("predict", "m.npz", folder / name, cwd=tmp_path))
    lines = proc.stdout.splitlines()
    assert lines[0] == "label"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=int), gmm.predict(X))
    assert_ok(run_cli("predict", "m.npz", folder / name, "--proba", "--out", "p.csv",
                      cwd=tmp_path))
    header, proba = read_csv(tmp_path / "p.csv")
    assert header == "proba_0,proba_1,proba_2"
    np.testing.assert_array_equal(proba, gmm.predict_proba(X))


def test_predict_checks_feature_names(data_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    folder, X = data_dir
    GaussianMixture(3, random_state=0).fit(pd.DataFrame(X, columns=["x", "y"])).save(
        tmp_path / "m.npz")
    assert_ok(run_cli("predict", "m.npz", folder / "header.csv", cwd=tmp_path))
    assert_ok(run_cli("predict", "m.npz", folder / "plain.csv", cwd=tmp_path))
    np.savetxt(tmp_path / "other.csv", X, delimiter=",", header="u,v", comments="")
    assert_error(run_cli("predict", "m.npz", "other.csv", cwd=tmp_path),
                 "has columns ['u', 'v'], the model was fitted on ['x', 'y']")


def test_predict_wrong_feature_count(data_dir, tmp_path):
    folder, X = data_dir
    GaussianMixture(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    np.save(tmp_path / "three.npy", np.hstack([X, X[:, :1]]))
    assert_error(run_cli("predict", "m.npz", "three.npy", cwd=tmp_path),
                 "three.npy has 3 feature columns, the model m.npz expects 2")


@pytest.mark.parametrize("content, match", [
    (b"not a model", "bad model file: bad.npz: not a fastgmm model file"),
    (b"PK\x03\x04truncated", "truncated or corrupt"),
])
def test_predict_bad_model_file(data_dir, tmp_path, content, match):
    folder, _ = data_dir
    (tmp_path / "bad.npz").write_bytes(content)
    assert_error(run_cli("predict", "bad.npz", folder / "data.npy", cwd=tmp_path), match)


def test_predict_missing_model(data_dir, tmp_path):
    folder, _ = data_dir
    assert_error(run_cli("predict", "none.npz", folder / "data.npy", cwd=tmp_path),
                 "no such file: none.npz")


# ------------------------------------------------------------------ select


def test_select(data_dir, tmp_path):
    folder, X = data_dir
    proc = assert_ok(run_cli("select", folder / "data.npy", "--k", "1..4",
                             "--covariance-types", "full,diag", "--criterion", "aic",
                             "--out", "best.npz", "--table", "table.csv", "-q", cwd=tmp_path))
    best, table = fastgmm.select_model(X, range(1, 5), ("full", "diag"), "aic",
                                       random_state=0)
    assert str(table).splitlines()[0] in proc.stdout
    assert "* lowest AIC" in proc.stdout
    row = table.best
    assert f"best: K={row['n_components']} {row['covariance_type']}" in proc.stdout
    np.testing.assert_array_equal(load(tmp_path / "best.npz").means_, best.means_)
    lines = (tmp_path / "table.csv").read_text().splitlines()
    assert lines[0] == ",".join(table.columns) and len(lines) == 1 + 8
    assert [float(line.split(",")[2]) for line in lines[1:]] == list(table["bic"])


def test_select_k_list_and_defaults(data_dir, tmp_path):
    folder, _ = data_dir
    proc = assert_ok(run_cli("select", folder / "header.csv", "-k", "2,3", "-q", cwd=tmp_path))
    assert "* lowest BIC" in proc.stdout
    # All four covariance types by default, two K each.
    for covariance_type in ("full", "tied", "diag", "spherical"):
        assert sum(f" {covariance_type} " in line for line in proc.stdout.splitlines()
                   if not line.startswith("best:")) == 2


@pytest.mark.parametrize("args, match", [
    (("--k", "1.."), "bad K range '1..'"),
    (("--k", "4..2"), "empty K range '4..2'"),
    (("--k", "0..3"), "numbers of components are at least 1"),
    (("--k", "1..700"), "exceed the number of samples (600)"),
    (("--covariance-types", "full,round"), "bad covariance type(s) 'full,round'"),
    (("--criterion", "hqc"), "argument --criterion: invalid choice"),
    (("--n-init", "0"), "argument --n-init: expected a number >= 1"),
    (("--out", "nowhere/best.npz"), "folder"),
])
def test_select_errors(data_dir, tmp_path, args, match):
    folder, _ = data_dir
    assert_error(run_cli("select", folder / "data.npy", *args, "-q", cwd=tmp_path), match)


# ------------------------------------------------------------------ data errors


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("name, content, match", [
    ("text.csv", "x,y\n1,2\n3,abc\n4,5\n", "column 2 ('y') is not numeric: line 3 has 'abc'"),
    ("species.csv", "x,species\n1,setosa\n2,versicolor\n",
     "column 2 ('species') is not numeric: line 2 has 'setosa'"),
    ("ragged.csv", "1,2\n3,4\n5\n", "line 3 has 1 field(s), expected 2"),
    ("missing.csv", "x,y\n1,2\n3,\n", "column 2 ('y') has a missing value: line 3"),
    ("nan.csv", "x,y\n1,2\n3,nan\n4,5\n", "NaN or infinite value at line 3, column 2 ('y')"),
    ("inf.csv", "1,2\n3,inf\n", "NaN or infinite value at line 2, column 2"),
    ("empty.csv", "", "empty file"),
    ("header_only.csv", "x,y\n", "no data rows"),
    # a first data row with a missing value was taken for a header and dropped
    ("first_missing.csv", "1,\n3,4\n", "column 2 has a missing value: line 1"),
    ("first_na.csv", "1,NA\n3,4\n", "line 1 mixes numbers and text ('NA')"),
    ("numeric_name.csv", "x,2020\n1,2\n", "line 1 mixes numbers and text ('x')"),
    ("underscore.csv", "1,2\n1_000,3\n", "column 1 is not numeric: line 2 has '1_000'"),
    ("binary.csv", b"\xff\xfe\x00\x01garbage", "not"),
    ("data.xlsx", "whatever", "unsupported data format '.xlsx'; use .csv, .npy, .parquet"),
    ("noext", "1,2\n", "unsupported data format '(no extension)'"),
    ("objects.npy", None, "holds Python objects"),
    ("strings.npy", None, "array of dtype <U1, expected numbers"),
    ("cube.npy", None, "a 3-D array, expected 2-D"),
    ("nan.npy", None, "NaN or infinite value at index [1, 1]"),
    ("broken.npy", b"\x93NUMPY garbage", "not a readable .npy array"),
    ("broken.parquet", b"PAR1 not really", "not a readable Parquet file"),
])
def test_bad_data(tmp_path, name, content, match):
    if name == "objects.npy":
        np.save(tmp_path / name, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif name == "strings.npy":
        np.save(tmp_path / name, np.array([["a", "b"]]))
    elif name == "cube.npy":
        np.save(tmp_path / name, np.zeros((2, 2, 2)))
    elif name == "nan.npy":
        np.save(tmp_path / name, np.array([[1.0, 2.0], [3.0, np.nan]]))
    else:
        if name.endswith(".parquet"):
            pytest.importorskip("pyarrow")
        _write(tmp_path, name, content)
    assert_error(run_cli("fit", name, "-k", 1, "-q", cwd=tmp_path), match)


def test_every_command_reads_data_alike(data_dir, tmp_path):
    folder, X = data_dir
    GaussianMixture(1).fit(X).save(tmp_path / "m.npz")
    _write(tmp_path, "text.csv", "x,y\n1,2\n3,abc\n")
    match = "text.csv: column 2 ('y') is not numeric: line 3 has 'abc'"
    assert_error(run_cli("select", "text.csv", "--k", "1", "-q", cwd=tmp_path), match)
    assert_error(run_cli("predict", "m.npz", "text.csv", cwd=tmp_path), match)


def test_missing_data_file(tmp_path):
    assert_error(run_cli("fit", "nothing.csv", cwd=tmp_path), "no such file: nothing.csv")
    (tmp_path / "folder.csv").mkdir()
    assert_error(run_cli("fit", "folder.csv", cwd=tmp_path), "is a directory")


def test_parquet_non_numeric_and_nulls(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0], "name": ["a", "b", "c"]}),
                   tmp_path / "text.parquet")
    assert_error(run_cli("fit", "text.parquet", "-k", 1, cwd=tmp_path),
                 "column 'name' is not numeric")
    pq.write_table(pa.table({"x": [1.0, None, 3.0], "y": [1, 2, 3]}), tmp_path / "null.parquet")
    assert_error(run_cli("fit", "null.parquet", "-k", 1, cwd=tmp_path),
                 "column 'x' has 1 missing value(s)")


def test_parquet_through_pandas_without_pyarrow(data_dir, tmp_path):
    # Without pyarrow, pandas is tried; without a Parquet engine it says so.
    pytest.importorskip("pyarrow")
    folder, _ = data_dir
    assert_error(run_cli("fit", folder / "data.parquet", "-k", 3, cwd=tmp_path,
                         blocked=("pyarrow",)),
                 'reading .parquet needs pyarrow: pip install "fastgmm[parquet]"')
    assert_error(run_cli("fit", folder / "data.parquet", "-k", 3, cwd=tmp_path,
                         blocked=("pyarrow", "pandas")),
                 'reading .parquet needs pyarrow (or pandas with a Parquet engine)')


@pytest.mark.parametrize("args, match", [
    (("fit", "DATA", "-k", "abc"), "bad K range 'abc'"),
    (("fit", "DATA", "-k", "2..3", "--k-range", "1..3"), "--k-range goes with -k auto"),
    (("fit", "DATA", "-k", "2", "--k-range", "1..3"), "--k-range goes with -k auto"),
    (("fit", "DATA", "-k", "2", "--covariance-type", "full,diag"),
     "several covariance types go with -k auto"),
    (("fit", "DATA", "-k", "1000"), "n_components = 1000, n_samples = 600"),
    (("fit", "DATA", "--tol", "-1"), "argument --tol: expected a finite number >= 0"),
    (("fit", "DATA", "--max-iter", "x"), "argument --max-iter: expected a whole number"),
    (("fit", "DATA", "--init-params", "magic"), "argument --init-params: invalid choice"),
    (("fit", "DATA", "-k", "2", "--labels", "no/such/dir/l.csv"), "does not exist"),
    (("fit",), "the following arguments are required: DATA"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("predict", "m.npz"), "the following arguments are required: DATA"),
    (("bench", "--cases", "nope"), "unknown case(s) ['nope']"),
    (("bench", "--repeats", "1"), "--repeats must be at least 3"),
    # checked before the run (a missing --json folder failed after every case)
    (("bench", "--json", "no/such/dir/b.json"), "--json no/such/dir/b.json: folder"),
    (("bench", "--json", "."), "--json .: is a directory"),
    (("bench", "--iris-repeats", "0"), "--iris-repeats must be at least 1"),
    (("bench", "--gemm-size", "0"), "--gemm-size must be at least 1"),
    # a range is bounded before it is built (1..1e9 took all memory)
    (("fit", "DATA", "-k", "auto", "--k-range", "1..1000000000"),
     "K range '1..1000000000' has 1000000000 values, more than 10000"),
    (("select", "DATA", "--k-range", "5..100000000000000000000"), "more than 10000"),
    (("select", "DATA", "--k-range", ",".join(["2"] * 10001)), "K list has 10001 values"),
    # and what exceeds n_samples is summed up, not listed (was 660 KB on one line)
    (("select", "DATA", "--k-range", "1..9000"),
     "n_components [601, 602, 603, 604, 605, 606, 607, 608, 609, 610, ...] (8400 in all) "
     "exceed the number of samples (600)"),
])
def test_usage_errors_are_one_line(data_dir, tmp_path, args, match):
    folder, _ = data_dir
    args = [str(folder / "data.npy") if a == "DATA" else a for a in args]
    assert_error(run_cli(*args, cwd=tmp_path), match)


# ------------------------------------------------------------------ demo, bench


def test_demo_is_the_default(tmp_path):
    pytest.importorskip("fastgmm.plot")
    proc = assert_ok(run_cli(cwd=tmp_path))
    out = proc.stdout
    assert "data: 300,000 points in 2 dimensions from 3 Gaussian blobs" in out
    assert "component  weight (true)   mean (true)" in out
    accuracy = float(out.split("accuracy against the true labels:")[1].split()[0])
    assert accuracy > 0.99
    assert "figure: fastgmm-demo.png" in out
    assert (tmp_path / "fastgmm-demo.png").read_bytes().startswith(PNG_MAGIC)


def test_demo_without_matplotlib_says_how_to_get_a_figure(tmp_path):
    proc = assert_ok(run_cli("demo", "--n-samples", 3000, cwd=tmp_path,
                             blocked=("matplotlib",)))
    assert 'pip install "fastgmm[plot]"' in proc.stdout
    assert "accuracy against the true labels" in proc.stdout
    assert not list(tmp_path.iterdir())
    # The old options of `python -m fastgmm` still work without the word demo.
    proc = assert_ok(run_cli("--n-samples", 3000, "--no-plot", cwd=tmp_path))
    assert "data: 3,000 points" in proc.stdout and "figure" not in proc.stdout


def test_demo_figure_path(tmp_path):
    pytest.importorskip("fastgmm.plot")
    proc = assert_ok(run_cli("demo", "--n-samples", 3000, "--plot", "d.png", cwd=tmp_path))
    assert "figure: d.png" in proc.stdout
    assert (tmp_path / "d.png").read_bytes().startswith(PNG_MAGIC)
    # A figure that cannot be written is a warning: the demo itself worked.
    proc = assert_ok(run_cli("demo", "--n-samples", 3000, "--plot", "no/dir/d.png",
                             cwd=tmp_path))
    assert "fastgmm: warning: no figure" in proc.stderr


def test_bench_settles_off_the_clock(monkeypatch, tmp_path):
    # --settle sleeps before every timed run, outside the time it reports,
    # and is refused below zero.
    from fastgmm import _bench

    calls = []
    clock = iter([10.0, 10.5])
    monkeypatch.setattr(_bench.time, "sleep", calls.append)
    monkeypatch.setattr(_bench.time, "perf_counter", lambda: next(clock))
    assert _bench.timed(lambda: "done", settle=0.25) == (0.5, "done")
    assert calls == [0.25]
    monkeypatch.undo()
    assert _bench.parse_args([]).settle == 0.2
    with pytest.raises(SystemExit):
        _bench.parse_args(["--settle", "-1"])
    proc = run_cli("bench", "--settle", "-0.5", cwd=tmp_path)
    assert proc.returncode == 2 and "--settle must be at least 0" in proc.stderr


def test_bench_small_case(tmp_path):
    proc = assert_ok(run_cli("bench", "--cases", "blobs2d,iris", "--scale", 0.002,
                             "--iters", 1, "--iris-repeats", 3, "--gemm-size", 64,
                             "--json", "bench.json", cwd=tmp_path))
    out = proc.stdout
    assert "Per EM iteration" in out and "End to end, default fit(X)" in out
    row = next(line for line in out.splitlines() if line.startswith("blobs2d"))
    # N, and a speed-up (n/a when timing noise beats the tiny case's work:
    # nothing here may depend on timings).
    assert row.split()[1] == "2000"
    assert re.fullmatch(r"\d+(\.\d+)?x|n/a", row.split()[8]), row
    import json

    record = json.loads((tmp_path / "bench.json").read_text())["results"][0]
    assert record["case"] == "blobs2d"
    assert record["peak_memory_added_bytes"] == {"sklearn": None, "fastgmm": None}
    # Both fits did the same iterations from the same start.
    lower_bounds = [record["per_iteration"][name]["lower_bound"]
                    for name in ("sklearn", "fastgmm")]
    assert abs(lower_bounds[0] - lower_bounds[1]) < 1e-9


def test_help_and_version(tmp_path):
    proc = assert_ok(run_cli("--help", cwd=tmp_path))
    for command in ("fit", "predict", "select", "demo", "bench"):
        assert command in proc.stdout
    proc = assert_ok(run_cli("--version", cwd=tmp_path))
    assert proc.stdout.strip() == f"fastgmm {fastgmm.__version__}"


def test_broken_pipe_is_quiet(data_dir, tmp_path):
    folder, X = data_dir
    GaussianMixture(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    big = np.repeat(X, 200, axis=0)
    np.save(tmp_path / "big.npy", big)
    child = subprocess.Popen([sys.executable, "-m", "fastgmm", "predict", "m.npz", "big.npy"],
                             cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.readline()
    child.stdout.close()                    # like `| head -1`
    stderr = child.stderr.read().decode()
    child.wait(timeout=300)
    assert "Traceback" not in stderr and "error" not in stderr


# ------------------------------------------------------------------ outputs


def run_main(*args):
    """The command line in this process (for faults injected with monkeypatch)."""
    return main([str(a) for a in args])


def _folder_snapshot(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


@pytest.mark.parametrize("command, output", [
    (("fit", "data.csv", "-k", 3, "--out", "data.csv"), "data.csv"),
    (("fit", "data.csv", "-k", 3, "--labels", "./data.csv"), "./data.csv"),
    (("fit", "data.csv", "-k", 3, "--proba", "link.csv"), "link.csv"),
    (("fit", "data.csv", "-k", 3, "--plot", "sub/../data.csv"), "sub/../data.csv"),
    (("predict", "m.npz", "data.csv", "--out", "m.npz"), "m.npz"),
    (("predict", "m.npz", "data.csv", "--out", "./m.npz"), "./m.npz"),
    (("predict", "m.npz", "data.csv", "--out", "mlink.npz"), "mlink.npz"),
    (("predict", "m.npz", "data.csv", "--out", "data.csv"), "data.csv"),
    (("select", "data.csv", "--k", "2..3", "--table", "hard.csv"), "hard.csv"),
])
def test_output_that_is_an_input_is_refused(data_dir, tmp_path, command, output):
    """The same file under another name (./, a symlink, '..', a hard link)
    is refused too, before anything is read or written."""
    folder, X = data_dir
    (tmp_path / "data.csv").write_bytes((folder / "plain.csv").read_bytes())
    (tmp_path / "sub").mkdir()
    os.symlink("data.csv", tmp_path / "link.csv")
    os.link(tmp_path / "data.csv", tmp_path / "hard.csv")
    GaussianMixture(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    os.symlink("m.npz", tmp_path / "mlink.npz")
    before = _folder_snapshot(tmp_path)
    quiet = ("-q",) if command[0] != "predict" else ()
    line = assert_error(run_cli(*command, *quiet, cwd=tmp_path), "is the same file as")
    assert f" {output} " in line and "would be overwritten" in line
    assert _folder_snapshot(tmp_path) == before            # nothing written
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "mlink.npz").is_symlink()


@pytest.mark.parametrize("outputs", [
    ("--out", "x.csv", "--labels", "x.csv"),
    ("--labels", "l.csv", "--proba", "./l.csv"),
    ("--labels", "l.csv", "--plot", "sub/../l.csv"),
])
def test_two_outputs_on_one_file_are_refused(data_dir, tmp_path, outputs):
    folder, _ = data_dir
    (tmp_path / "sub").mkdir()
    assert_error(run_cli("fit", folder / "data.npy", "-k", 3, *outputs, "-q", cwd=tmp_path),
                 "are the same file: choose a different path for each output")
    assert [p.name for p in tmp_path.iterdir()] == ["sub"]


def _disk_full():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _savetxt_filling_the_disk(real_savetxt):
    """np.savetxt that writes its first 4 KB, then fails as a full disk does."""

    def savetxt(fname, X, **kwargs):
        text = io.StringIO()
        real_savetxt(text, X, **kwargs)
        part = text.getvalue()[:4096]
        if isinstance(fname, (str, os.PathLike)):
            with open(fname, "w") as f:
                f.write(part)
        else:
            fname.write(part)
        raise _disk_full()

    return savetxt


class _CsvWriterFillingTheDisk:
    """csv.writer that writes two rows, then fails as a full disk does."""

    def __init__(self, f, *args, **kwargs):
        self.f, self.rows = f, 0

    def writerow(self, row):
        if self.rows == 2:
            raise _disk_full()
        self.f.write(",".join(map(str, row)) + "\n")
        self.rows += 1


@pytest.mark.parametrize("command, output", [
    (("fit", "DATA", "-k", 3, "--labels", "OUT"), "--labels"),
    (("fit", "DATA", "-k", 3, "--proba", "OUT"), "--proba"),
    (("predict", "MODEL", "DATA", "--out", "OUT"), "--out"),
    (("predict", "MODEL", "DATA", "--proba", "--out", "OUT"), "--out"),
    (("select", "DATA", "--k", "2..3", "--table", "OUT"), "--table"),
])
def test_full_disk_keeps_the_previous_file(data_dir, tmp_path, monkeypatch, capsys,
                                           command, output):
    """A write that fails part-way (ENOSPC) leaves the previous file whole and
    no temporary behind: every output is written beside it and renamed."""
    folder, X = data_dir
    model = tmp_path / "m.npz"
    GaussianMixture(3, random_state=0).fit(X).save(model)
    out = tmp_path / "out.csv"
    previous = "label\n" + "1\n" * 600                   # a 601-line file from before
    out.write_text(previous)
    monkeypatch.setattr(np, "savetxt", _savetxt_filling_the_disk(np.savetxt))
    monkeypatch.setattr(csv, "writer", _CsvWriterFillingTheDisk)
    paths = {"DATA": folder / "data.npy", "MODEL": model, "OUT": out}
    args = [paths.get(a, a) if isinstance(a, str) else a for a in command]
    quiet = ("-q",) if command[0] != "predict" else ()
    assert run_main(*args, *quiet) == 1
    assert out.read_text() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "out.csv"]
    err = capsys.readouterr().err
    assert f"cannot write {output} {out}: No space left on device" in err


def _device_node(tmp_path):
    """A character device to write to: as root, a node of our own with
    /dev/null's numbers (so that a regression replaces that node, never the
    machine's /dev/null); otherwise /dev/null itself, which a user who may
    not write to /dev cannot replace."""
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        with open(path, "wb") as f:
            f.write(b"probe")          # a nodev mount refuses this
        return path
    except OSError:
        if path.exists():
            path.unlink()
        return Path(os.devnull)


def test_outputs_to_a_device_leave_it_a_device(data_dir, tmp_path):
    folder, X = data_dir
    device = _device_node(tmp_path)
    rdev = device.stat().st_rdev
    assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, "--out", device,
                      "--labels", device, "--proba", device, "-q", cwd=tmp_path))
    GaussianMixture(3, random_state=0).fit(X).save(tmp_path / "m.npz")
    assert_ok(run_cli("predict", "m.npz", folder / "data.npy", "--out", device,
                      cwd=tmp_path))
    st = os.stat(device)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _read_fifo_in_thread(path):
    """Start a reader of the FIFO `path`; returns (thread, result dict)."""
    result = {}

    def read():
        with open(path, "rb") as f:
            result["data"] = f.read()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, result


def test_outputs_to_a_fifo_are_streamed_and_it_stays_a_fifo(data_dir, tmp_path):
    folder, X = data_dir
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    gmm = GaussianMixture(3, random_state=0).fit(X)
    gmm.save(tmp_path / "m.npz")

    thread, result = _read_fifo_in_thread(fifo)
    assert_ok(run_cli("predict", "m.npz", folder / "data.npy", "--out", fifo, cwd=tmp_path))
    thread.join(timeout=60)
    lines = result["data"].decode().splitlines()
    assert lines[0] == "label"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=int), gmm.predict(X))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)

    thread, result = _read_fifo_in_thread(fifo)
    assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, "--out", fifo, "-q",
                      cwd=tmp_path))
    thread.join(timeout=60)
    assert "data" in result, "the model went elsewhere: the FIFO was replaced"
    (tmp_path / "streamed.npz").write_bytes(result["data"])
    np.testing.assert_array_equal(load(tmp_path / "streamed.npz").means_, gmm.means_)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_symlinked_outputs_write_the_target_and_keep_the_link(data_dir, tmp_path):
    folder, X = data_dir
    (tmp_path / "store").mkdir()
    for name in ("model.npz", "labels.csv", "pred.csv"):
        (tmp_path / "store" / name).write_text("old\n")
        os.symlink(Path("store") / name, tmp_path / name)
    os.symlink(Path("store") / "new.csv", tmp_path / "dangling.csv")   # target not yet there
    assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, "--out", "model.npz",
                      "--labels", "labels.csv", "--proba", "dangling.csv", "-q",
                      cwd=tmp_path))
    assert_ok(run_cli("predict", "model.npz", folder / "data.npy", "--out", "pred.csv",
                      cwd=tmp_path))
    expected = GaussianMixture(3, random_state=0).fit(X)
    for name in ("model.npz", "labels.csv", "pred.csv", "dangling.csv"):
        assert (tmp_path / name).is_symlink(), name
    np.testing.assert_array_equal(load(tmp_path / "store" / "model.npz").means_,
                                  expected.means_)
    for name in ("labels.csv", "pred.csv"):
        _, labels = read_csv(tmp_path / "store" / name)
        np.testing.assert_array_equal(labels[:, 0], expected.predict(X))
    _, proba = read_csv(tmp_path / "store" / "new.csv")
    np.testing.assert_array_equal(proba, expected.predict_proba(X))
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "labels.csv", "model.npz", "new.csv", "pred.csv"]


def test_bad_figure_format_fails_before_anything_is_written(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("fastgmm.plot")
    folder, _ = data_dir
    proc = run_cli("fit", folder / "data.npy", "-k", 3, "--out", "m.npz",
                   "--labels", "l.csv", "--plot", "fig.xyz", "-q", cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []                   # no model, no labels
    line = assert_error(proc, "--plot fig.xyz: matplotlib cannot write 'xyz' figures")
    assert "png" in line and "svg" in line                  # says what would do
    assert proc.stdout == ""                                # refused before the fit
    # A format matplotlib knows is written whole, from its extension.
    assert_ok(run_cli("fit", folder / "data.npy", "-k", 3, "--plot", "fig.svg", "-q",
                      cwd=tmp_path))
    assert b"<svg" in (tmp_path / "fig.svg").read_bytes()[:500]


def test_closed_stdout_pipe_costs_no_file(data_dir, tmp_path):
    """`fastgmm fit ... | head -2`: the reader goes away before the summary
    is printed; every file must still be written whole, the exit be 141 and
    quiet. Several runs, stdout buffered and unbuffered (PYTHONUNBUFFERED)."""
    folder, X = data_dir
    expected = GaussianMixture(3, random_state=0).fit(X)
    for run in range(6):
        for name in ("labels.csv", "proba.csv", "m.npz"):
            (tmp_path / name).write_text("previous\n")
        env = _env()
        if run % 2:
            env["PYTHONUNBUFFERED"] = "1"
        child = subprocess.Popen(
            [sys.executable, "-m", "fastgmm", "fit", str(folder / "data.npy"), "-k", "3",
             "--out", "m.npz", "--labels", "labels.csv", "--proba", "proba.csv", "-q"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        child.stdout.close()                          # like `| head -0`
        stderr = child.stderr.read().decode()
        assert child.wait(timeout=300) == 141, (run, stderr)
        assert stderr == "", (run, stderr)
        header, labels = read_csv(tmp_path / "labels.csv")
        assert header == "label", run
        np.testing.assert_array_equal(labels[:, 0], expected.predict(X))
        _, proba = read_csv(tmp_path / "proba.csv")
        np.testing.assert_array_equal(proba, expected.predict_proba(X))
        np.testing.assert_array_equal(load(tmp_path / "m.npz").means_, expected.means_)


def test_binary_outputs_refuse_stdout(data_dir, tmp_path):
    folder, _ = data_dir
    assert_error(run_cli("fit", folder / "data.npy", "-k", 3, "--out", "-", "-q",
                         cwd=tmp_path), "--out -: this output cannot go to stdout")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ flag spellings


def test_fit_and_select_accept_both_spellings(data_dir, tmp_path, capsys):
    """--k-range / -k / --k and --covariance-type / --covariance-types mean the
    same in fit and in select; --help shows one of each."""
    folder, X = data_dir
    data = folder / "data.npy"
    outputs = {}
    for i, spelling in enumerate([
        ("fit", data, "-k", "auto", "--k-range", "2..3", "--covariance-type", "full,diag"),
        ("fit", data, "-k", "2..3", "--covariance-types", "full,diag"),
        ("fit", data, "--k", "2..3", "--covariance-types", "full,diag"),
        ("select", data, "--k-range", "2..3", "--covariance-type", "full,diag"),
        ("select", data, "-k", "2..3", "--covariance-types", "full,diag"),
        ("select", data, "--k", "2..3", "--covariance-type", "full,diag"),
    ]):
        assert run_main(*spelling, "--out", tmp_path / f"m{i}.npz", "-q") == 0, spelling
        table = capsys.readouterr().out.split("\n\n")[0].splitlines()
        outputs[spelling] = table[:6]
        np.testing.assert_array_equal(load(tmp_path / f"m{i}.npz").means_,
                                      load(tmp_path / "m0.npz").means_)
    rows = [[line.split()[:-1] for line in table] for table in outputs.values()]
    assert all(r == rows[0] for r in rows)     # one table (less the times), six spellings
    assert run_main("fit", data, "--k", "3", "--covariance-types", "diag", "-q",
                    "--out", tmp_path / "one.npz") == 0
    gmm = load(tmp_path / "one.npz")
    assert (gmm.n_components, gmm.covariance_type) == (3, "diag")
    for command in ("fit", "select"):
        help_text = run_cli(command, "--help", cwd=tmp_path).stdout
        assert "--k-range" in help_text and "--covariance-type" in help_text
        assert "--covariance-types" not in help_text
        assert "--k " not in help_text and "--k K" not in help_text


# ------------------------------------------------------------------ --standardize


def test_standardize_round_trip(data_dir, tmp_path):
    """fit --standardize stores the shift and scale in the model file;
    predict applies them: the labels and probabilities of
    make_pipeline(StandardScaler(), GaussianMixture(...)) fitted in Python."""
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder, X = data_dir
    X = X * np.array([1.0, 1000.0]) + np.array([0.0, -5e4])     # scales far apart
    np.save(tmp_path / "wide.npy", X)
    proc = assert_ok(run_cli("fit", "wide.npy", "-k", 3, "--standardize", "--out", "m.npz",
                             "--labels", "fit-labels.csv", "-q", cwd=tmp_path))
    assert "standardised" in proc.stdout and "in standardised units" in proc.stdout
    expected = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    scaler = expected[0]
    assert f"shift [{scaler.mean_[0]:.4g}, {scaler.mean_[1]:.4g}]" in proc.stdout
    model = load(tmp_path / "m.npz")
    assert isinstance(model, Pipeline)
    np.testing.assert_array_equal(model[0].scale_, scaler.scale_)
    np.testing.assert_array_equal(model[-1].means_, expected[-1].means_)

    _, labels = read_csv(tmp_path / "fit-labels.csv")
    np.testing.assert_array_equal(labels[:, 0], expected.predict(X))
    proc = assert_ok(run_cli("predict", "m.npz", "wide.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.array(proc.stdout.splitlines()[1:], dtype=int),
                                  expected.predict(X))
    assert_ok(run_cli("predict", "m.npz", "wide.npy", "--proba", "--out", "p.csv",
                      cwd=tmp_path))
    _, proba = read_csv(tmp_path / "p.csv")
    np.testing.assert_array_equal(proba, expected.predict_proba(X))

    # select --standardize: the best model, with its scaler.
    assert_ok(run_cli("select", "wide.npy", "--k-range", "2..4", "--covariance-type", "full",
                      "--standardize", "--out", "best.npz", "-q", cwd=tmp_path))
    best = load(tmp_path / "best.npz")
    assert isinstance(best, Pipeline) and best[-1].n_components == 3
    np.testing.assert_array_equal(best.predict(X), expected.predict(X))

    # A model saved without standardisation predicts as before.
    plain = GaussianMixture(3, random_state=0).fit(X)
    plain.save(tmp_path / "plain.npz")
    assert isinstance(load(tmp_path / "plain.npz"), GaussianMixture)
    proc = assert_ok(run_cli("predict", "plain.npz", "wide.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.array(proc.stdout.splitlines()[1:], dtype=int),
                                  plain.predict(X))



# ------------------------------------------------------------------ --bayesian


def test_fit_bayesian(data_dir, tmp_path):
    """fit --bayesian: a BayesianGaussianMixture of at most 10 components by
    default, the effective ones counted; predict uses it unchanged."""
    from fastgmm import BayesianGaussianMixture

    folder, X = data_dir
    proc = assert_ok(run_cli("fit", folder / "data.npy", "--bayesian", "--out", "m.npz",
                             "--labels", "labels.csv", "-q", cwd=tmp_path))
    expected = BayesianGaussianMixture(n_components=10, random_state=0).fit(X)
    out = proc.stdout
    assert "Bayesian" in out and "dirichlet_process" in out
    assert "at most 10 full components" in out
    assert "effective components: 3 of 10 (weight above 0.01)" in out
    assert f"lower bound {expected.lower_bound_:.6g}" in out
    assert "BIC" not in out and "log-likelihood" not in out
    for k in np.flatnonzero(expected.weights_ > 0.01):
        assert f"{k:>9}  {expected.weights_[k]:.4f}" in out
    assert "7 other components, weights below 0.01" in out
    model = load(tmp_path / "m.npz")
    assert type(model) is BayesianGaussianMixture
    assert model.predict_proba(X).tobytes() == expected.predict_proba(X).tobytes()
    _, labels = read_csv(tmp_path / "labels.csv")
    np.testing.assert_array_equal(labels[:, 0], expected.predict(X))
    proc = assert_ok(run_cli("predict", "m.npz", folder / "data.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.array(proc.stdout.splitlines()[1:], dtype=int),
                                  expected.predict(X))
    assert_ok(run_cli("predict", "m.npz", folder / "header.csv", "--proba", "--out",
                      "p.csv", cwd=tmp_path))
    header, proba = read_csv(tmp_path / "p.csv")
    assert header == ",".join(f"proba_{k}" for k in range(10))
    np.testing.assert_array_equal(proba, expected.predict_proba(X))


def test_fit_bayesian_options(data_dir, tmp_path):
    from fastgmm import BayesianGaussianMixture

    folder, X = data_dir
    proc = assert_ok(run_cli("fit", folder / "data.npy", "--bayesian", "-k", 6,
                             "--covariance-type", "diag", "--weight-concentration-prior", 1e-3,
                             "--weight-concentration-prior-type", "dirichlet_distribution",
                             "--max-iter", 500, "--tol", 1e-4, "--n-init", 2,
                             "--init-params", "k-means++", "--random-state", 3,
                             "--reg-covar", 1e-5, "--out", "m.npz", "-q", cwd=tmp_path))
    params = dict(n_components=6, covariance_type="diag", weight_concentration_prior=1e-3,
                  weight_concentration_prior_type="dirichlet_distribution", max_iter=500,
                  tol=1e-4, n_init=2, init_params="k-means++", random_state=3, reg_covar=1e-5)
    model = load(tmp_path / "m.npz")
    for name, value in params.items():
        assert model.get_params()[name] == value, name
    expected = BayesianGaussianMixture(**params).fit(X)
    np.testing.assert_array_equal(model.means_, expected.means_)
    assert "dirichlet_distribution" in proc.stdout
    assert "effective components: 3 of 6" in proc.stdout


def test_fit_bayesian_standardize_and_plot(data_dir, tmp_path):
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastgmm import BayesianGaussianMixture

    pytest.importorskip("fastgmm.plot")
    folder, X = data_dir
    X = X * np.array([1.0, 1000.0]) + np.array([0.0, -5e4])
    np.save(tmp_path / "wide.npy", X)
    proc = assert_ok(run_cli("fit", "wide.npy", "--bayesian", "--standardize", "--out",
                             "m.npz", "--plot", "fit.png", "-q", cwd=tmp_path))
    assert "standardised" in proc.stdout and "effective components: 3 of 10" in proc.stdout
    assert (tmp_path / "fit.png").read_bytes().startswith(PNG_MAGIC)
    expected = make_pipeline(StandardScaler(),
                             BayesianGaussianMixture(n_components=10, random_state=0)).fit(X)
    model = load(tmp_path / "m.npz")
    assert isinstance(model, Pipeline) and type(model[-1]) is BayesianGaussianMixture
    proc = assert_ok(run_cli("predict", "m.npz", "wide.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.array(proc.stdout.splitlines()[1:], dtype=int),
                                  expected.predict(X))


@pytest.mark.parametrize("args, match", [
    (("fit", "DATA", "--bayesian", "-k", "2..5"), "--bayesian takes one number of components"),
    (("fit", "DATA", "--bayesian", "-k", "2,3"), "--bayesian takes one number of components"),
    (("fit", "DATA", "--bayesian", "--k-range", "2..4"), "--k-range goes with -k auto"),
    (("fit", "DATA", "--bayesian", "--covariance-type", "full,diag"),
     "--bayesian fits one covariance type"),
    (("fit", "DATA", "--bayesian", "-k", "0"), "at least 1"),
    (("fit", "DATA", "-k", "3", "--weight-concentration-prior", "0.1"),
     "--weight-concentration-prior goes with --bayesian"),
    (("fit", "DATA", "--weight-concentration-prior-type", "dirichlet_distribution"),
     "--weight-concentration-prior-type goes with --bayesian"),
    (("fit", "DATA", "--bayesian", "--weight-concentration-prior", "0"),
     "argument --weight-concentration-prior: expected a finite number > 0"),
    (("fit", "DATA", "--bayesian", "--weight-concentration-prior-type", "pitman_yor"),
     "argument --weight-concentration-prior-type: invalid choice"),
    (("select", "DATA", "--bayesian"), "unrecognized arguments: --bayesian"),
    # the criterion chooses among numbers of components: never silently ignored
    (("fit", "DATA", "--bayesian", "--criterion", "aic"),
     "--bayesian chooses them itself: drop --criterion"),
    (("fit", "DATA", "-k", "3", "--criterion", "aic"), "--criterion goes with -k auto"),
])
def test_bayesian_usage_errors(data_dir, tmp_path, args, match):
    folder, _ = data_dir
    args = [str(folder / "data.npy") if a == "DATA" else a for a in args]
    assert_error(run_cli(*args, "--out", "m.npz", cwd=tmp_path), match)
    assert not (tmp_path / "m.npz").exists()


def test_bayesian_in_help(tmp_path):
    fit_help = assert_ok(run_cli("fit", "--help", cwd=tmp_path)).stdout
    assert "--bayesian" in fit_help and "--weight-concentration-prior" in fit_help
    select_help = " ".join(assert_ok(run_cli("select", "--help", cwd=tmp_path)).stdout.split())
    assert "GaussianMixture only" in select_help and "fit --bayesian" in select_help


# ------------------------------------------------------------------ wiring


def test_console_script_declared():
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["fastgmm"] == "fastgmm._cli:main"
    from fastgmm._cli import main

    assert callable(main)


def test_compare_script_is_a_thin_wrapper(tmp_path):
    script = REPO / "benchmarks" / "compare.py"
    if not script.exists():
        pytest.skip("not running from a source tree")
    assert len(script.read_text().splitlines()) < 30
    proc = subprocess.run([sys.executable, str(script), "--help"], env=_env(),
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "--no-memory" in proc.stdout and "blobs2d" in proc.stdout


def test_asv_common_uses_the_package_recipe():
    common = REPO / "benchmarks" / "benchmarks" / "common.py"
    if not common.exists():
        pytest.skip("not running from a source tree")
    import importlib.util

    spec = importlib.util.spec_from_file_location("asv_common", common)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from fastgmm import _bench

    X1, rng1 = module.make_blobs(500, 3, 4, "float32")
    X2, rng2 = _bench.make_blobs(500, 3, 4, "float32")
    assert X1.tobytes() == X2.tobytes()
    p1 = module.fixed_work_params(X1, 4, "diag", rng1, 5)
    p2 = _bench.fixed_work_params(X2, 4, "diag", rng2, 5)
    np.testing.assert_array_equal(p1["means_init"], p2["means_init"])


def test_thread_scaling_script_runs_and_rejects_bad_counts(tmp_path):
    script = REPO / "benchmarks" / "thread_scaling.py"
    if not script.exists():
        pytest.skip("not running from a source tree")
    proc = subprocess.run(
        [sys.executable, str(script), "--cases", "blobs2d", "--threads", "2,1",
         "--scale", "0.001", "--repeats", "3", "--iters", "1", "--markdown"],
        env=_env(), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| blobs2d")]
    assert [row.split("|")[7].strip() for row in rows] == ["2", "1"]
    # Speed-up against the first count; "n/a" where this tiny case's time per
    # iteration (a difference of two timings) came out <= 0 on a busy machine.
    assert rows[0].split("|")[9].strip() in ("1.00x", "n/a")
    for bad in (["--threads", "0,2"], ["--threads", "one"], ["--cases", "nope"]):
        proc = subprocess.run([sys.executable, str(script), *bad], env=_env(),
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert proc.returncode == 2 and "error:" in proc.stderr


@pytest.mark.parametrize("name", ["a$x^{$b.csv", "a$x_1$.csv", os.fsdecode(b"c\xff.csv")])
def test_fit_plot_titles_any_file_name(data_dir, tmp_path, name):
    # an outside audit: the data file's name went into the figure title as
    # matplotlib text, so '$...$' was mathematics (a parse error stopped the
    # command after its model and labels were written) and non-UTF-8 bytes a
    # TypeError
    pytest.importorskip("matplotlib")
    folder, X = data_dir
    data = tmp_path / name
    data.write_bytes((folder / "plain.csv").read_bytes())
    assert_ok(run_cli("fit", name, "-k", 2, "--out", "m.npz", "--plot", "p.png", "-q",
                      cwd=tmp_path))
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "m.npz").exists()


def test_two_outputs_to_stdout_are_refused(data_dir, tmp_path):
    # they wrote two CSV tables back to back
    folder, _ = data_dir
    assert_error(run_cli("fit", folder / "data.npy", "-k", 2, "--labels", "-", "--proba", "-",
                         cwd=tmp_path), "--labels and --proba both go to stdout")
