"""The ``fastgmm`` command line (also ``python -m fastgmm <command>``).

    fastgmm fit DATA -k 3|auto [options] --out model.npz --labels labels.csv
    fastgmm predict model.npz DATA [--proba] [--out FILE]
    fastgmm select DATA --k 1..9 [--covariance-types full,diag] [--out best.npz]
    fastgmm demo [--plot demo.png]
    fastgmm bench [--cases ...]

DATA is a .csv (numbers, with an optional header row), .npy or .parquet
file. Every error is one line on stderr, ``fastgmm: error: ...``, and a
non-zero exit status; warnings are one line each, ``fastgmm: warning: ...``.
"""

import argparse
import csv
import itertools
import os
import sys
import time
import warnings

import numpy as np

from fastgmm._gaussian_mixture import GaussianMixture
from fastgmm._io import ModelFileError, load
from fastgmm._parameters import COVARIANCE_TYPES
from fastgmm._progress import ProgressBar
from fastgmm._selection import CRITERIA, _select_model
from fastgmm._version import __version__

PROG = "fastgmm"
DATA_FORMATS = (".csv", ".npy", ".parquet")
DEFAULT_K_RANGE = "1..9"
DEFAULT_DEMO_FIGURE = "fastgmm-demo.png"
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


class CommandError(Exception):
    """An error the command line reports as one line, without a traceback."""


# ------------------------------------------------------------------ reading


def read_data(path):
    """(X, column names or None) from a .csv, .npy or .parquet file.

    X is a 2-D float array (float32 .npy files stay float32) of finite
    values; anything else raises CommandError saying where and what.
    """
    if not os.path.exists(path):
        raise CommandError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CommandError(f"{path} is a directory, not a data file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".csv":
        X, names = _read_csv(path)
    elif suffix == ".npy":
        X, names = _read_npy(path)
    elif suffix == ".parquet":
        X, names = _read_parquet(path)
    else:
        raise CommandError(
            f"{path}: unsupported data format {suffix or '(no extension)'!r}; "
            f"use {', '.join(DATA_FORMATS)}"
        )
    if X.shape[0] == 0:
        raise CommandError(f"{path}: no data rows")
    if X.shape[1] == 0:
        raise CommandError(f"{path}: no columns")
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size:
        # Row numbers as a user counts them: from 1, after any header line.
        row = int(bad_rows[0])
        column = int(np.flatnonzero(~np.isfinite(X[row]))[0])
        if suffix == ".csv":  # as a text editor counts: lines and columns from 1
            where = (f"line {row + 1 + int(names is not None)}, column "
                     f"{_column_name(names, column)}")
        else:                 # as numpy indexes the array
            where = f"index [{row}, {column}]" + (f" (column {names[column]!r})"
                                                  if names is not None else "")
        raise CommandError(
            f"{path}: NaN or infinite value at {where} ({bad_rows.size} row(s) in all); "
            "remove or impute missing values first"
        )
    return X, names


def _column_name(names, column):
    return f"{column + 1}" if names is None else f"{column + 1} ({names[column]!r})"


def _parse_float(text):
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            first = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as error:
            raise CommandError(f"{path}: not a readable CSV file ({error})") from None
    if first is None or not any(cell.strip() for cell in first):
        raise CommandError(f"{path}: empty file (expected rows of numbers, comma-separated)")
    # A first row with any cell that is not a number is a header.
    has_header = any(_parse_float(cell) is None for cell in first)
    names = [cell.strip() for cell in first] if has_header else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "empty input file" for a header-only file
            X = np.loadtxt(path, delimiter=",", skiprows=int(has_header), ndmin=2,
                           dtype=np.float64, comments=None, quotechar='"',
                           encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError):
        # numpy's message speaks of its own arguments; find the bad cell.
        raise CommandError(_csv_problem(path, has_header, names)) from None
    if X.size == 0 and X.shape[0] == 0:
        raise CommandError(f"{path}: no data rows")
    n_columns = len(first)
    if X.shape[1] != n_columns:
        raise CommandError(f"{path}: {X.shape[1]} columns of data, {n_columns} in line 1")
    return X, names


def _csv_problem(path, has_header, names):
    """One line saying what is wrong with a CSV numpy could not read."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            expected = None
            for line_number, row in enumerate(reader, start=1):
                if line_number == 1 and has_header:
                    expected = len(row)
                    continue
                if not row:
                    return f"{path}: line {line_number} is empty"
                if expected is None:
                    expected = len(row)
                if len(row) != expected:
                    return (f"{path}: line {line_number} has {len(row)} field(s), "
                            f"expected {expected}")
                for column, cell in enumerate(row):
                    if _parse_float(cell) is None:
                        what = "an empty value" if not cell.strip() else repr(cell)
                        kind = ("is not numeric" if cell.strip()
                                else "has a missing value")
                        return (f"{path}: column {_column_name(names, column)} {kind}: "
                                f"line {line_number} has {what}")
    except (csv.Error, UnicodeDecodeError) as error:
        return f"{path}: not a readable CSV file ({error})"
    return f"{path}: not a CSV file of numbers"


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as error:
        message = " ".join(str(error).split())
        if "pickle" in message:
            message = "it holds Python objects, not numbers"
        raise CommandError(f"{path}: not a readable .npy array ({message})") from None
    except (OSError, EOFError) as error:
        raise CommandError(f"{path}: not a readable .npy array ({error})") from None
    if not isinstance(X, np.ndarray):
        raise CommandError(f"{path}: an .npz archive, not an .npy array")
    if X.dtype.kind not in "iuf":
        raise CommandError(f"{path}: array of dtype {X.dtype}, expected numbers")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise CommandError(f"{path}: a {X.ndim}-D array, expected 2-D (rows x features)")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    return np.ascontiguousarray(X), None


def _read_parquet(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        try:
            table = pq.read_table(path)
        except Exception as error:  # noqa: BLE001  pyarrow raises many kinds
            raise CommandError(f"{path}: not a readable Parquet file ({_one_line(error)})"
                               ) from None
        names = [str(n) for n in table.column_names]
        columns = []
        for name, column in zip(names, table.columns):
            kind = column.type
            import pyarrow.types as pt

            if not (pt.is_integer(kind) or pt.is_floating(kind)):
                raise CommandError(f"{path}: column {name!r} is not numeric ({kind})")
            if column.null_count:
                raise CommandError(f"{path}: column {name!r} has {column.null_count} "
                                   "missing value(s); remove or impute them first")
            columns.append(column.to_numpy().astype(np.float64, copy=False))
        return _stack_columns(columns, table.num_rows), names
    try:
        import pandas as pd
    except ImportError:
        raise CommandError(
            f"{path}: reading .parquet needs pyarrow (or pandas with a Parquet engine): "
            'pip install "fastgmm[parquet]"'
        ) from None
    try:
        frame = pd.read_parquet(path)
    except ImportError:
        raise CommandError(
            f"{path}: reading .parquet needs pyarrow: pip install \"fastgmm[parquet]\""
        ) from None
    except Exception as error:  # noqa: BLE001
        raise CommandError(f"{path}: not a readable Parquet file ({_one_line(error)})") from None
    names = [str(n) for n in frame.columns]
    columns = []
    for name in frame.columns:
        series = frame[name]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise CommandError(f"{path}: column {str(name)!r} is not numeric ({series.dtype})")
        if series.isna().any():
            raise CommandError(f"{path}: column {str(name)!r} has missing values; remove "
                               "or impute them first")
        columns.append(series.to_numpy(dtype=np.float64))
    return _stack_columns(columns, len(frame)), names


def _stack_columns(columns, n_rows):
    if not columns:
        return np.empty((n_rows, 0))
    return np.ascontiguousarray(np.column_stack(columns))


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


# ------------------------------------------------------------------ writing


def _check_writable(path, option):
    """Refuse an output whose folder does not exist before a long fit, not after."""
    if path is None or path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a directory")


def _write_csv(path, header, array, fmt):
    """A CSV with a header line; '-' or None is stdout."""
    if path is None or path == "-":
        np.savetxt(sys.stdout, array, fmt=fmt, delimiter=",", header=header, comments="")
        sys.stdout.flush()
        return
    try:
        np.savetxt(path, array, fmt=fmt, delimiter=",", header=header, comments="")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None


def write_labels(path, labels):
    _write_csv(path, "label", labels[:, None], "%d")


def write_proba(path, proba):
    # Enough digits to read back the exact float.
    fmt = "%.17g" if proba.dtype == np.float64 else "%.9g"
    header = ",".join(f"proba_{k}" for k in range(proba.shape[1]))
    _write_csv(path, header, proba, fmt)


def save_model(gmm, path):
    try:
        gmm.save(path)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None


# ------------------------------------------------------------------ figures


def _require_plotting(option):
    """matplotlib and fastgmm.plot, or a CommandError saying how to get them."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError(
            f'{option} needs matplotlib: pip install "fastgmm[plot]"'
        ) from None
    try:
        from fastgmm import plot
    except ImportError as error:
        raise CommandError(f"{option}: fastgmm.plot is not available ({error})") from None
    return plot


def save_figure(gmm, X, path, title=None):
    """Component ellipses over the data, written with matplotlib's Agg canvas
    (no pyplot, no display needed)."""
    plot = _require_plotting("--plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    plot.ellipses(gmm, X, ax=ax)
    if title:
        ax.set_title(title)
    try:
        figure.savefig(path, dpi=100)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise CommandError(f"cannot write figure {path}: {_one_line(error)}") from None


# ------------------------------------------------------------------ options


def parse_k_range(text):
    """'1..9' (inclusive), '2,3,5' or '4' -> a tuple of ints."""
    text = text.strip()
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split(".."))
            values = tuple(range(low, high + 1))
            if not values:
                raise CommandError(f"empty K range {text!r}: the first number must not "
                                   "exceed the second")
        else:
            values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise CommandError(f"bad K range {text!r}: use A..B (e.g. 1..9) or a list "
                           "(e.g. 2,3,5)") from None
    if any(k < 1 for k in values):
        raise CommandError(f"bad K range {text!r}: numbers of components are at least 1")
    return values


def parse_covariance_types(text):
    types = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [c for c in types if c not in COVARIANCE_TYPES]
    if unknown or not types:
        raise CommandError(f"bad covariance type(s) {text!r}: choose among "
                           f"{', '.join(COVARIANCE_TYPES)} (comma-separated)")
    return types


def _int_at_least(minimum):
    """An argparse type: a whole number >= minimum."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _fit_options():
    """The GaussianMixture options of `fit` and `select`."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("model options")
    group.add_argument("--max-iter", type=_int_at_least(0), default=100,
                       help="EM iterations at most (default 100)")
    group.add_argument("--tol", type=_non_negative_float, default=1e-3,
                       help="stop when the mean log-likelihood gains less (default 1e-3)")
    group.add_argument("--n-init", type=_int_at_least(1), default=1,
                       help="initialisations, the best is kept (default 1)")
    group.add_argument("--init-params", choices=INIT_PARAMS, default="kmeans",
                       help="initialisation (default kmeans)")
    group.add_argument("--random-state", type=int, default=0,
                       help="seed of the initialisation (default 0)")
    group.add_argument("--reg-covar", type=_non_negative_float, default=1e-6,
                       help="added to the covariances' diagonal (default 1e-6)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bar on stderr")
    return parent


def _gmm_params(args):
    return dict(max_iter=args.max_iter, tol=args.tol, init_params=args.init_params,
                reg_covar=args.reg_covar)


# ------------------------------------------------------------------ commands


class _FitsProgress:
    """'select: 5/36 fits' on stderr, one line rewritten in place."""

    def __init__(self, file=None):
        self.file = file if file is not None else sys.stderr

    def __call__(self, done, total, row):
        print(f"\rselect: {done}/{total} fits (K={row['n_components']} "
              f"{row['covariance_type']})".ljust(50), end="", file=self.file, flush=True)
        if done == total:
            print(file=self.file, flush=True)


def _run_selection(X, args, k_values, covariance_types, criterion):
    try:
        return _select_model(
            X, k_values, covariance_types, criterion, sample_weight=None,
            random_state=args.random_state, n_init=args.n_init,
            on_fit=None if args.quiet else _FitsProgress(), **_gmm_params(args),
        )
    except ValueError as error:
        raise CommandError(_one_line(error)) from None


def _fit_one(X, args, n_components, covariance_type):
    gmm = GaussianMixture(n_components, covariance_type=covariance_type,
                          random_state=args.random_state, n_init=args.n_init,
                          **_gmm_params(args))
    callback = None if args.quiet else ProgressBar(desc="fit")
    try:
        gmm.fit(X, callback=callback)
    except ValueError as error:
        raise CommandError(_one_line(error)) from None
    return gmm


def _print_model(gmm, X, elapsed, file=None):
    file = file if file is not None else sys.stdout
    print(f"fitted {gmm.means_.shape[0]} {gmm.covariance_type} components to "
          f"{X.shape[0]:,} rows x {X.shape[1]} features in {elapsed:.3f} s: "
          f"{gmm.n_iter_} EM iterations, converged={gmm.converged_}", file=file)
    print(f"mean log-likelihood {gmm.score(X):.6g}, BIC {gmm.bic(X):.6g}, "
          f"AIC {gmm.aic(X):.6g}", file=file)
    shown = min(X.shape[1], 6)
    print("component  weight   mean" + (f" (first {shown} features)"
                                        if shown < X.shape[1] else ""), file=file)
    for k in range(gmm.means_.shape[0]):
        mean = ", ".join(f"{v:.4g}" for v in gmm.means_[k, :shown])
        print(f"{k:>9}  {gmm.weights_[k]:.4f}   [{mean}]", file=file)


def cmd_fit(args):
    covariance_types = parse_covariance_types(args.covariance_type)
    auto = args.k.strip().lower() == "auto"
    if auto:
        k_values = parse_k_range(args.k_range or DEFAULT_K_RANGE)
    else:
        if args.k_range is not None:
            raise CommandError("--k-range goes with -k auto")
        k_values = parse_k_range(args.k)
        if len(k_values) != 1:
            raise CommandError(f"-k {args.k}: give one number of components, or 'auto' "
                               "(with --k-range) to choose it by BIC")
        if len(covariance_types) != 1:
            raise CommandError("several covariance types go with -k auto; give one")
    for path, option in ((args.out, "--out"), (args.labels, "--labels"),
                         (args.proba, "--proba"), (args.plot, "--plot")):
        _check_writable(path, option)
    if args.plot is not None:
        _require_plotting("--plot")
    X, _ = read_data(args.data)

    start = time.perf_counter()
    if auto:
        gmm, table = _run_selection(X, args, k_values, covariance_types, args.criterion)
        print(table)
        print()
    else:
        gmm = _fit_one(X, args, k_values[0], covariance_types[0])
    elapsed = time.perf_counter() - start
    _print_model(gmm, X, elapsed)

    if args.out is not None:
        save_model(gmm, args.out)
        print(f"model written to {args.out}")
    if args.labels is not None:
        write_labels(args.labels, gmm.predict(X))
        print(f"labels written to {args.labels}")
    if args.proba is not None:
        write_proba(args.proba, gmm.predict_proba(X))
        print(f"probabilities written to {args.proba}")
    if args.plot is not None:
        save_figure(gmm, X, args.plot, title=f"{os.path.basename(args.data)}: "
                    f"K={gmm.means_.shape[0]} {gmm.covariance_type}")
        print(f"figure written to {args.plot}")
    return 0


def cmd_predict(args):
    _check_writable(args.out, "--out")
    if not os.path.exists(args.model):
        raise CommandError(f"no such file: {args.model}")
    try:
        gmm = load(args.model)
    except ModelFileError as error:
        raise CommandError(f"bad model file: {_one_line(error)}") from None
    X, names = read_data(args.data)
    expected = gmm.n_features_in_
    if X.shape[1] != expected:
        raise CommandError(f"{args.data} has {X.shape[1]} feature columns, the model "
                           f"{args.model} expects {expected}")
    fitted_names = getattr(gmm, "feature_names_in_", None)
    if names is not None and fitted_names is not None and list(names) != list(fitted_names):
        raise CommandError(f"{args.data} has columns {names}, the model was fitted on "
                           f"{list(fitted_names)}")
    with warnings.catch_warnings():
        # Column names were compared above; the array itself has none.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if args.proba:
            write_proba(args.out, gmm.predict_proba(X))
        else:
            write_labels(args.out, gmm.predict(X))
    return 0


def cmd_select(args):
    k_values = parse_k_range(args.k)
    covariance_types = parse_covariance_types(args.covariance_types)
    _check_writable(args.out, "--out")
    _check_writable(args.table, "--table")
    X, _ = read_data(args.data)
    best, table = _run_selection(X, args, k_values, covariance_types, args.criterion)
    print(table)
    row = table.best
    print(f"best: K={row['n_components']} {row['covariance_type']} "
          f"({args.criterion.upper()} {row[args.criterion]:.6g})")
    if args.out is not None:
        save_model(best, args.out)
        print(f"model written to {args.out}")
    if args.table is not None:
        try:
            with open(args.table, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(table.columns)
                for entry in table:
                    writer.writerow([repr(v) if isinstance(v, float) else v
                                     for v in entry.values()])
        except OSError as error:
            raise CommandError(f"cannot write {args.table}: {error.strerror or error}"
                               ) from None
        print(f"table written to {args.table}")
    return 0


# ------------------------------------------------------------------ demo


def make_demo_blobs(n_samples=300_000, random_state=0):
    """Three 2-D Gaussian blobs with different shapes and weights."""
    rng = np.random.default_rng(random_state)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    covariances = np.array(
        [[[1.0, 0.6], [0.6, 1.5]], [[0.7, -0.3], [-0.3, 0.5]], [[2.0, 0.0], [0.0, 0.4]]]
    )
    labels = rng.choice(3, size=n_samples, p=weights)
    X = np.empty((n_samples, 2))
    for k in range(3):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covariances[k], size=rows.sum())
    return X, labels, (weights, means, covariances)


def matched_accuracy(true_labels, found_labels, n_components):
    """Accuracy under the best one-to-one matching of found components to true ones."""
    best = 0.0
    for perm in itertools.permutations(range(n_components)):
        best = max(best, np.mean(np.asarray(perm)[found_labels] == true_labels))
    return best


def cmd_demo(args):
    from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads, openmp_enabled

    if args.n_samples < 3:
        raise CommandError("--n-samples must be at least 3")
    X, true_labels, (true_weights, true_means, _) = make_demo_blobs(args.n_samples,
                                                                    args.random_state)
    print(f"fastgmm {__version__}: OpenMP {'on' if openmp_enabled() else 'off'}, "
          f"{openmp_effective_n_threads()} threads")
    print(f"data: {X.shape[0]:,} points in {X.shape[1]} dimensions from 3 Gaussian blobs")
    start = time.perf_counter()
    gmm = GaussianMixture(n_components=3, covariance_type="full",
                          random_state=args.random_state)
    labels = gmm.fit_predict(X)
    elapsed = time.perf_counter() - start
    order = np.argsort(gmm.means_[:, 0] + 10 * gmm.means_[:, 1])
    true_order = np.argsort(true_means[:, 0] + 10 * true_means[:, 1])
    print(f"fit: {elapsed:.3f} s, {gmm.n_iter_} EM iterations, converged={gmm.converged_}, "
          f"mean log-likelihood {gmm.lower_bound_:.4f}")
    print("component  weight (true)   mean (true)")
    for k, t in zip(order, true_order):
        mean = ", ".join(f"{v:6.3f}" for v in gmm.means_[k])
        tmean = ", ".join(f"{v:6.3f}" for v in true_means[t])
        print(f"    {k}      {gmm.weights_[k]:.3f} ({true_weights[t]:.3f})   "
              f"[{mean}] ([{tmean}])")
    accuracy = matched_accuracy(true_labels, labels, 3)
    print(f"accuracy against the true labels: {accuracy:.4f}")
    if not args.no_plot:
        _demo_figure(gmm, X, args.plot)
    return 0 if accuracy > 0.9 else 1


def _demo_figure(gmm, X, path):
    """The demo's figure when matplotlib is there; otherwise say how to get it
    (not an error: the demo's job is done)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('figure: matplotlib is not installed; pip install "fastgmm[plot]" and run '
              "again to get one")
        return
    try:
        _check_writable(path, "--plot")
        save_figure(gmm, X, path, title="fastgmm demo: three Gaussian blobs")
    except CommandError as error:
        print(f"{PROG}: warning: no figure: {error}", file=sys.stderr)
        return
    print(f"figure: {path}")


# ------------------------------------------------------------------ bench


def cmd_bench(args):
    from fastgmm import _bench

    _bench.check_args(args.parser, args)
    return _bench.run(args)


# ------------------------------------------------------------------ parser


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line like every other error."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {self.prog}: {_one_line(message)} "
                     f"(see {self.prog} --help)\n")


def build_parser():
    from fastgmm import _bench

    parser = _Parser(
        prog=PROG,
        description="Gaussian mixture models from the command line: fit, predict, choose "
                    "K, and the built-in demo and benchmark.",
        epilog="python -m fastgmm with no command runs the demo. "
               "DATA: .csv (numbers, optional header line), .npy or .parquet.",
    )
    parser.add_argument("--version", action="version", version=f"fastgmm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    fit_options = _fit_options()

    fit = commands.add_parser(
        "fit", parents=[fit_options], help="fit a model to DATA",
        description="Fit a Gaussian mixture to DATA; print it; write the model, labels, "
                    "probabilities and a figure on request.")
    fit.add_argument("data", metavar="DATA")
    fit.add_argument("-k", "--n-components", dest="k", default="auto",
                     help="number of components, or 'auto' to choose it by BIC "
                          "(default auto)")
    fit.add_argument("--k-range", default=None,
                     help=f"with -k auto: the K to try, A..B or a list (default "
                          f"{DEFAULT_K_RANGE})")
    fit.add_argument("--covariance-type", default="full",
                     help="full, tied, diag or spherical (default full); with -k auto, "
                          "a comma-separated list to choose among")
    fit.add_argument("--criterion", choices=CRITERIA, default="bic",
                     help="with -k auto: the criterion to minimise (default bic)")
    fit.add_argument("--out", metavar="MODEL.npz", help="write the fitted model")
    fit.add_argument("--labels", metavar="FILE.csv", help="write each row's component")
    fit.add_argument("--proba", metavar="FILE.csv",
                     help="write each row's component probabilities")
    fit.add_argument("--plot", metavar="FIGURE.png",
                     help="draw the components over the data (needs matplotlib)")
    fit.set_defaults(func=cmd_fit)

    predict = commands.add_parser(
        "predict", help="label DATA with a saved model",
        description="Write the most probable component of each row of DATA (or, with "
                    "--proba, every component's probability) as CSV.")
    predict.add_argument("model", metavar="MODEL.npz")
    predict.add_argument("data", metavar="DATA")
    predict.add_argument("--proba", action="store_true",
                         help="write probabilities instead of labels")
    predict.add_argument("--out", metavar="FILE.csv", help="output file (default stdout)")
    predict.set_defaults(func=cmd_predict)

    select = commands.add_parser(
        "select", parents=[fit_options], help="choose K and the covariance type by BIC/AIC",
        description="Fit every K and covariance type, print the table of criteria and "
                    "the best model.")
    select.add_argument("data", metavar="DATA")
    select.add_argument("-k", "--k", dest="k", default=DEFAULT_K_RANGE,
                        help=f"the K to try, A..B or a list (default {DEFAULT_K_RANGE})")
    select.add_argument("--covariance-types", default=",".join(COVARIANCE_TYPES),
                        help="comma-separated (default all four)")
    select.add_argument("--criterion", choices=CRITERIA, default="bic",
                        help="the criterion to minimise (default bic)")
    select.add_argument("--out", metavar="MODEL.npz", help="write the best model")
    select.add_argument("--table", metavar="FILE.csv", help="write the table as CSV")
    select.set_defaults(func=cmd_select)

    demo = commands.add_parser(
        "demo", help="fit the built-in example (three 2-D blobs)",
        description="Fit three Gaussian blobs with known labels; print the weights, means, "
                    "accuracy and time, and draw a figure when matplotlib is installed.")
    demo.add_argument("--n-samples", type=int, default=300_000)
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--plot", metavar="FIGURE.png", default=DEFAULT_DEMO_FIGURE,
                      help=f"where to write the figure (default {DEFAULT_DEMO_FIGURE})")
    demo.add_argument("--no-plot", action="store_true", help="no figure")
    demo.set_defaults(func=cmd_demo)

    bench = commands.add_parser(
        "bench", help="time fastgmm and scikit-learn side by side",
        description="Time one EM iteration of fastgmm and of scikit-learn on the same "
                    "data and start (by default one small case; see benchmarks/compare.py "
                    "for the full set).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_bench.cases_epilog())
    _bench.add_arguments(bench, _bench.QUICK_DEFAULTS)
    bench.set_defaults(func=cmd_bench, parser=bench)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["demo"]  # `python -m fastgmm` alone: the README's built-in example
    elif argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["demo"] + argv  # `python -m fastgmm --n-samples N`, as before the CLI
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except CommandError as error:
            message = _one_line(error)
        except KeyboardInterrupt:
            print(f"\n{PROG}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader of stdout went away (`fastgmm predict ... | head`):
            # stop quietly, as a program killed by SIGPIPE would.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141
        except (OSError, ValueError, ImportError, MemoryError) as error:
            message = _one_line(error)
        except Exception as error:  # noqa: BLE001  never a traceback for the user
            message = (f"unexpected {type(error).__name__}: {_one_line(error)} "
                       "(please report this)")
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1
