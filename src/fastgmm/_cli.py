"""The ``fastgmm`` command line (also ``python -m fastgmm <command>``).

    fastgmm fit DATA -k 3|auto [--standardize] [options] --out model.npz --labels labels.csv
    fastgmm fit DATA --bayesian [-k 10] [--weight-concentration-prior G] --out model.npz
    fastgmm predict model.npz DATA [--proba] [--out FILE]
    fastgmm select DATA --k-range 1..9 [--covariance-type full,diag] [--out best.npz]
    fastgmm demo [--plot demo.png]
    fastgmm bench [--cases ...]

DATA is a .csv (numbers, with an optional header row), .npy or .parquet
file. Every error is one line on stderr, ``fastgmm: error: ...``, and a
non-zero exit status; warnings are one line each, ``fastgmm: warning: ...``.

Outputs: every option is checked before the data are read (an output's
folder, an output that is an input or another output, the figure format);
every file is written through ``fastgmm._files.atomic_write`` (complete or
not at all; symlinks written through; devices and FIFOs written into, never
replaced); a closed stdout pipe stops the printing, not the files (exit 141
once they are written).
"""

import argparse
import csv
import io
import itertools
import os
import sys
import time
import warnings

import numpy as np

from fastgmm._bayesian_mixture import BayesianGaussianMixture
from fastgmm._files import atomic_write, check_distinct, is_stream, unwritable_reason
from fastgmm._gaussian_mixture import GaussianMixture
from fastgmm._io import ModelFileError, load
from fastgmm._io import save as _save
from fastgmm._parameters import COVARIANCE_TYPES
from fastgmm._progress import ProgressBar
from fastgmm._selection import CRITERIA, MAX_CANDIDATES, _select_model
from fastgmm._version import __version__

PROG = "fastgmm"
DATA_FORMATS = (".csv", ".npy", ".parquet")
DEFAULT_K_RANGE = "1..9"
DEFAULT_DEMO_FIGURE = "fastgmm-demo.png"
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
DEFAULT_BAYESIAN_K = 10
# A component of a Bayesian mixture counts as used above this weight (the
# README's `(dpgmm.weights_ > 0.01).sum()`).
EFFECTIVE_WEIGHT = 0.01


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


def _few_cells(cells, limit=3):
    shown = ", ".join(repr(cell[:40]) for cell in cells[:limit])
    return shown + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def _column_name(names, column):
    return f"{column + 1}" if names is None else f"{column + 1} ({names[column]!r})"


def _parse_float(text):
    """float(text), or None where numpy's CSV reader would not read it
    (Python's float takes "1_000"; numpy does not, and the reader's error
    then named no line)."""
    if "_" in text:
        return None
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
    # A first row of names (no cell a number) is a header, one of numbers
    # is data. A row of both is neither: taken for a header, a first data
    # row with a missing or "NA" value was dropped without a word.
    numeric = [_parse_float(cell) is not None for cell in first]
    texts = [cell.strip() for cell, number in zip(first, numeric)
             if not number and cell.strip()]
    if any(numeric) and texts:
        raise CommandError(
            f"{path}: line 1 mixes numbers and text ({_few_cells(texts)}): a header line "
            "must name every column without numbers, and data lines hold only numbers"
        )
    has_header = not any(numeric)
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


class _Stdout:
    """Standard output that a closed pipe cannot stop half-way.

    When the reader of stdout goes away (`fastgmm fit ... | head -2`), the
    next write raises BrokenPipeError. That must not cost the file outputs
    still to come, so the error is caught here: stdout is pointed at
    os.devnull (as Python's documentation on SIGPIPE advises, so that the
    flush at exit cannot fail again), later text is dropped, the command
    carries on, and main() exits with 141 (as a program killed by SIGPIPE)
    once every file is written. Every print goes through `write`, which
    flushes, so the pipe breaks here and not at some later write.
    """

    def __init__(self):
        self.broken = False

    def write(self, writer):
        """writer(sys.stdout), then a flush; nothing once the pipe is closed."""
        if self.broken:
            return
        try:
            writer(sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            self.broken = True
            _stdout_to_devnull()


_stdout = _Stdout()


# True while a command writes data (a CSV) to stdout: its report then goes
# to stderr, so that `fit ... --labels - > labels.csv` is a readable CSV
# (the summary once came first on stdout, --quiet or not).
_report_to_stderr = False


def say(*values):
    """print() to stdout, through _Stdout; to stderr while stdout carries data."""
    if _report_to_stderr:
        print(*values, file=sys.stderr, flush=True)
        return
    _stdout.write(lambda f: print(*values, file=f))


def _stdout_to_devnull():
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return                  # not a real file (an in-process capture)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _check_writable(path, option):
    """Refuse an output whose folder does not exist before a long fit, not after."""
    if path is None or path == "-":
        return
    reason = unwritable_reason(path)
    if reason is not None:
        raise CommandError(f"{option} {path}: {reason}")


def check_outputs(inputs, outputs, files_only=()):
    """Before any data is read: every output can be written, and none is an
    input or another output (files compared, not names: a symlink, './x'
    or a hard link to an input is refused). Devices and FIFOs are left out
    of the comparison: writing into them replaces nothing (two outputs to
    /dev/null are fine). The options in `files_only` (binary outputs)
    cannot be '-' (stdout)."""
    to_stdout = [option for option, path in outputs.items() if path == "-"]
    if len(to_stdout) > 1:
        # two CSV tables back to back on stdout are neither one
        raise CommandError(f"{' and '.join(to_stdout)} both go to stdout ('-'): give "
                           "one of them a file name")
    for option, path in outputs.items():
        if path == "-" and option in files_only:
            raise CommandError(f"{option} -: this output cannot go to stdout; "
                               "give a file name")
        _check_writable(path, option)
    files = {option: path for option, path in outputs.items()
             if path is None or path == "-" or not is_stream(path)}
    try:
        check_distinct(inputs, files)
    except ValueError as error:
        raise CommandError(_one_line(error)) from None


def write_output(path, option, write, binary=False):
    """write(f) fills a file object with the output of `option`.

    None or '-' is stdout (text only; a closed pipe there is not an error,
    see _Stdout). A file is replaced atomically (fastgmm._files.atomic_write:
    a temporary file in the same folder, renamed over it once complete), so a
    full disk or an interrupt leaves the previous file as it was; a symlink
    is written through, a device or FIFO written into as a stream.
    """
    if path is None or path == "-":
        if binary:
            raise CommandError(f"{option} -: this output cannot go to stdout; "
                               "give a file name")
        _stdout.write(write)
        return
    try:
        with atomic_write(path, binary=binary) as f:
            write(f)
    except OSError as error:
        raise CommandError(f"cannot write {option} {path}: {error.strerror or error}"
                           ) from None


def _write_csv(path, option, header, array, fmt):
    """A CSV with a header line; '-' or None is stdout."""
    write_output(path, option, lambda f: np.savetxt(f, array, fmt=fmt, delimiter=",",
                                                    header=header, comments=""))


def write_labels(path, labels, option="--labels"):
    _write_csv(path, option, "label", labels[:, None], "%d")


def write_proba(path, proba, option="--proba"):
    # Enough digits to read back the exact float.
    fmt = "%.17g" if proba.dtype == np.float64 else "%.9g"
    header = ",".join(f"proba_{k}" for k in range(proba.shape[1]))
    _write_csv(path, option, header, proba, fmt)


def save_model(model, path, option="--out"):
    """A mixture, or a (StandardScaler, mixture) pipeline, as
    fastgmm's model file: made in memory (zipfile seeks back in what it
    writes, which a FIFO cannot do and /dev/null does wrongly), then written
    like every other output."""
    data = io.BytesIO()
    _save(model, data)
    write_output(path, option, lambda f: f.write(data.getbuffer()), binary=True)


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


def figure_format(path, option="--plot"):
    """The figure format of `path` (its extension; without one, matplotlib's
    savefig.format), checked against what matplotlib's Agg canvas writes and
    tried on an empty figure, so that a bad name fails before the fit."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    extension = os.path.splitext(path)[1][1:].lower()
    fmt = extension or str(matplotlib.rcParams["savefig.format"]).lower()
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise CommandError(f"{option} {path}: matplotlib cannot write {fmt!r} figures; "
                           f"use one of {', '.join(sorted(supported))}")
    figure = Figure(figsize=(1, 1))
    FigureCanvasAgg(figure)
    try:
        figure.savefig(io.BytesIO(), format=fmt)
    except Exception as error:  # noqa: BLE001  backends raise many kinds
        raise CommandError(f"{option} {path}: matplotlib cannot write {fmt!r} figures "
                           f"here ({_one_line(error)})") from None
    return fmt


def _plain_text(name):
    """A file name as a figure title shows it: bytes that are not UTF-8 as
    escapes (matplotlib refused the surrogates os.fsdecode leaves), and '$'
    escaped (matplotlib reads text between two as mathematics: a name such
    as 'a$x^{$b.csv' stopped the command after its other outputs were
    written)."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("$", r"\$")


def save_figure(gmm, X, path, title=None, standardized=False, option="--plot"):
    """Component ellipses over the data, drawn with matplotlib's Agg canvas
    (no pyplot, no display needed) into memory, then written atomically.
    `standardized`: X and gmm are in standardised units, and the axes say so."""
    plot = _require_plotting(option)
    fmt = figure_format(path, option)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    plot.ellipses(gmm, X, ax=ax)
    if standardized:
        ax.set_xlabel(f"{ax.get_xlabel()} (standardised)")
        if X.shape[1] > 1:
            ax.set_ylabel(f"{ax.get_ylabel()} (standardised)")
    if title:
        ax.set_title(title)
    image = io.BytesIO()
    try:
        figure.savefig(image, format=fmt, dpi=100)
    except (ValueError, RuntimeError, OSError) as error:
        raise CommandError(f"cannot draw figure {path}: {_one_line(error)}") from None
    write_output(path, option, lambda f: f.write(image.getbuffer()), binary=True)


# ------------------------------------------------------------------ options


def parse_k_range(text):
    """'1..9' (inclusive), '2,3,5' or '4' -> a tuple of ints."""
    text = text.strip()
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split(".."))
            if high - low + 1 > MAX_CANDIDATES:
                raise CommandError(f"K range {text!r} has {high - low + 1} values, more than "
                                   f"{MAX_CANDIDATES} (one fit each): give a shorter one")
            values = tuple(range(low, high + 1))
            if not values:
                raise CommandError(f"empty K range {text!r}: the first number must not "
                                   "exceed the second")
        else:
            values = tuple(int(part) for part in text.split(","))
            if len(values) > MAX_CANDIDATES:
                raise CommandError(f"K list has {len(values)} values, more than "
                                   f"{MAX_CANDIDATES} (one fit each): give a shorter one")
    except ValueError:
        raise CommandError(f"bad K range {text!r}: use A..B (e.g. 1..9) or a list "
                           "(e.g. 2,3,5)") from None
    if any(k < 1 for k in values):
        raise CommandError(f"bad K range {text!r}: numbers of components are at least 1")
    return values


def parse_covariance_types(text):
    # each type once, in the order given ("full,full" is one type)
    types = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
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


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _fit_options():
    """The GaussianMixture options of `fit` and `select`."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("model options")
    group.add_argument("--max-iter", type=_int_at_least(0), default=100,
                       help="EM iterations at most (default 100)")
    group.add_argument("--tol", type=_non_negative_float, default=1e-3,
                       help="stop when the mean log-likelihood (with --bayesian, the "
                            "lower bound) gains less (default 1e-3)")
    group.add_argument("--n-init", type=_int_at_least(1), default=1,
                       help="initialisations, the best is kept (default 1)")
    group.add_argument("--init-params", choices=INIT_PARAMS, default="kmeans",
                       help="initialisation (default kmeans)")
    group.add_argument("--random-state", type=int, default=0,
                       help="seed of the initialisation (default 0)")
    group.add_argument("--reg-covar", type=_non_negative_float, default=1e-6,
                       help="added to the covariances' diagonal (default 1e-6)")
    group.add_argument("--standardize", action="store_true",
                       help="subtract each feature's mean and divide by its standard "
                            "deviation before fitting; the model file keeps both and "
                            "`fastgmm predict` applies them. The printed means and "
                            "criteria, and the --plot figure, are then in standardised "
                            "units")
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


def _bayesian_components(args, covariance_types):
    """fit --bayesian's n_components: one number, the most components the
    weight prior may use (-k auto, the default: DEFAULT_BAYESIAN_K)."""
    if args.k_range is not None:
        raise CommandError("--k-range goes with -k auto without --bayesian; with --bayesian, "
                           "-k is the most components the fit may use")
    if len(covariance_types) != 1:
        raise CommandError("--bayesian fits one covariance type; give one")
    text = args.k.strip().lower()
    if text == "auto":
        return DEFAULT_BAYESIAN_K
    try:
        n_components = int(text)
    except ValueError:
        raise CommandError(f"--bayesian takes one number of components, the most the fit may "
                           f"use (such as -k {DEFAULT_BAYESIAN_K}), not {args.k!r}") from None
    if n_components < 1:
        raise CommandError(f"bad -k {args.k!r}: numbers of components are at least 1")
    return n_components


def _fit_bayesian(X, args, n_components, covariance_type):
    model = BayesianGaussianMixture(
        n_components=n_components, covariance_type=covariance_type,
        weight_concentration_prior_type=args.weight_concentration_prior_type
        or WEIGHT_PRIOR_TYPES[0],
        weight_concentration_prior=args.weight_concentration_prior,
        random_state=args.random_state, n_init=args.n_init, **_gmm_params(args))
    callback = None if args.quiet else ProgressBar(desc="fit")
    try:
        model.fit(X, callback=callback)
    except ValueError as error:
        raise CommandError(_one_line(error)) from None
    return model


def _standardize(X, args):
    """(the fitted StandardScaler or None, the data the mixture is fitted on)."""
    if not args.standardize:
        return None, X
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    return scaler, scaler.fit_transform(X)      # as make_pipeline(...).fit(X) does


def _model(scaler, gmm):
    """What the model file holds: the mixture, or the scaler and the mixture
    as the pipeline make_pipeline(StandardScaler(), GaussianMixture()) fits."""
    if scaler is None:
        return gmm
    from sklearn.pipeline import make_pipeline

    return make_pipeline(scaler, gmm)


def _numbers(values, shown):
    return ", ".join(f"{v:.4g}" for v in values[:shown])


def _print_model(gmm, X, elapsed, scaler=None):
    """The fitted mixture; X is the data it was fitted on (standardised
    when `scaler` is given). A Bayesian mixture shows its lower bound and
    the components it uses (weight above EFFECTIVE_WEIGHT) instead of the
    criteria and every component."""
    bayesian = isinstance(gmm, BayesianGaussianMixture)
    n_features = X.shape[1]
    n_components = gmm.means_.shape[0]
    shown = min(n_features, 6)
    first = f" (first {shown} features)" if shown < n_features else ""
    where = (f"to {X.shape[0]:,} rows x {n_features} features"
             f"{', standardised,' if scaler is not None else ''} in {elapsed:.3f} s")
    if bayesian:
        prior = gmm.weight_concentration_prior_
        say(f"fitted a Bayesian mixture of at most {n_components} {gmm.covariance_type} "
            f"components ({gmm.weight_concentration_prior_type} prior, weight concentration "
            f"{prior:.4g}) {where}: {gmm.n_iter_} variational iterations, "
            f"converged={gmm.converged_}")
    else:
        say(f"fitted {n_components} {gmm.covariance_type} components {where}: "
            f"{gmm.n_iter_} EM iterations, converged={gmm.converged_}")
    if scaler is not None:
        say("features standardised before fitting, (x - shift) / scale; the model file "
            "keeps both and `fastgmm predict` applies them" + first + ":")
        say(f"    shift [{_numbers(scaler.mean_, shown)}]")
        say(f"    scale [{_numbers(scaler.scale_, shown)}]")
    units = " (of the standardised features)" if scaler is not None else ""
    shown_components = range(n_components)
    if bayesian:
        used = gmm.weights_ > EFFECTIVE_WEIGHT
        shown_components = np.flatnonzero(used)
        say(f"effective components: {int(used.sum())} of {n_components} (weight above "
            f"{EFFECTIVE_WEIGHT:g})")
        # score() of a Bayesian mixture is not a log-likelihood: the bound is
        # what its fit maximised.
        say(f"lower bound {gmm.lower_bound_:.6g} (variational, without constant terms)"
            + units)
    else:
        say(f"mean log-likelihood {gmm.score(X):.6g}, BIC {gmm.bic(X):.6g}, "
            f"AIC {gmm.aic(X):.6g}" + units)
    say("component  weight   mean" + (" in standardised units" if scaler is not None
                                      else "") + first)
    for k in shown_components:
        say(f"{k:>9}  {gmm.weights_[k]:.4f}   [{_numbers(gmm.means_[k], shown)}]")
    if bayesian and len(shown_components) < n_components:
        unused = np.flatnonzero(~used)
        plural = "s" if len(unused) > 1 else ""
        say(f"{len(unused)} other component{plural}, weight{plural} below "
            f"{EFFECTIVE_WEIGHT:g} (together {float(gmm.weights_[unused].sum()):.2g}): "
            f"{', '.join(map(str, unused))}")


def _fit_k_values(args, covariance_types):
    """(the K to fit, whether to choose among them) from fit's -k and --k-range.

    -k is one number, 'auto' (the K of --k-range, default 1..9) or itself
    a range or list (as for select), which is -k auto --k-range ... written
    shorter."""
    text = args.k.strip().lower()
    if text == "auto":
        return parse_k_range(args.k_range or DEFAULT_K_RANGE), True
    if args.k_range is not None:
        raise CommandError("--k-range goes with -k auto")
    k_values = parse_k_range(args.k)
    auto = ".." in text or "," in text
    if not auto and len(covariance_types) != 1:
        raise CommandError("several covariance types go with -k auto; give one")
    return k_values, auto


def cmd_fit(args):
    global _report_to_stderr
    data_out = "-" in (args.labels, args.proba)
    previous, _report_to_stderr = _report_to_stderr, _report_to_stderr or data_out
    try:
        return _fit_command(args)
    finally:
        _report_to_stderr = previous


def _fit_command(args):
    # Every option is checked before the data are read and the model fitted.
    covariance_types = parse_covariance_types(args.covariance_type)
    if args.bayesian:
        n_components = _bayesian_components(args, covariance_types)
        auto = False
    else:
        for option in ("weight_concentration_prior", "weight_concentration_prior_type"):
            if getattr(args, option) is not None:
                raise CommandError(f"--{option.replace('_', '-')} goes with --bayesian")
        k_values, auto = _fit_k_values(args, covariance_types)
    if args.criterion is not None and not auto:
        # the criterion only chooses among numbers of components: given
        # with one number (or --bayesian) it would be silently ignored
        raise CommandError("--criterion goes with -k auto (it chooses the number of "
                           "components); " + ("--bayesian chooses them itself: drop "
                                              "--criterion" if args.bayesian else
                                              "drop it, or give -k auto"))
    criterion = "bic" if args.criterion is None else args.criterion
    check_outputs({"DATA": args.data},
                  {"--out": args.out, "--labels": args.labels, "--proba": args.proba,
                   "--plot": args.plot}, files_only=("--out", "--plot"))
    if args.plot is not None:
        _require_plotting("--plot")
        figure_format(args.plot)
    X, _ = read_data(args.data)
    scaler, X_fit = _standardize(X, args)

    start = time.perf_counter()
    if args.bayesian:
        gmm = _fit_bayesian(X_fit, args, n_components, covariance_types[0])
    elif auto:
        gmm, table = _run_selection(X_fit, args, k_values, covariance_types, criterion)
        say(table)
        say()
    else:
        gmm = _fit_one(X_fit, args, k_values[0], covariance_types[0])
    elapsed = time.perf_counter() - start
    # Printing cannot stop the files below: a closed stdout pipe is caught
    # (see _Stdout) and main() reports it once they are written.
    _print_model(gmm, X_fit, elapsed, scaler)

    if args.out is not None:
        save_model(_model(scaler, gmm), args.out)
        say(f"model written to {args.out}")
    if args.labels is not None:
        write_labels(args.labels, gmm.predict(X_fit))
        _say_written("labels", args.labels)
    if args.proba is not None:
        write_proba(args.proba, gmm.predict_proba(X_fit))
        _say_written("probabilities", args.proba)
    if args.plot is not None:
        if args.bayesian:
            what = (f"Bayesian, {int((gmm.weights_ > EFFECTIVE_WEIGHT).sum())} of "
                    f"{gmm.means_.shape[0]} {gmm.covariance_type} components used")
        else:
            what = f"K={gmm.means_.shape[0]} {gmm.covariance_type}"
        save_figure(gmm, X_fit, args.plot, standardized=scaler is not None,
                    title=f"{_plain_text(os.path.basename(args.data))}: {what}"
                          f"{' (standardised)' if scaler is not None else ''}")
        say(f"figure written to {args.plot}")
    return 0


def _say_written(what, path):
    if path != "-":
        say(f"{what} written to {path}")


def cmd_predict(args):
    check_outputs({"MODEL": args.model, "DATA": args.data}, {"--out": args.out})
    if not os.path.exists(args.model):
        raise CommandError(f"no such file: {args.model}")
    try:
        model = load(args.model)   # a GaussianMixture, or a pipeline that standardises
    except ModelFileError as error:
        raise CommandError(f"bad model file: {_one_line(error)}") from None
    X, names = read_data(args.data)
    expected = model.n_features_in_
    if X.shape[1] != expected:
        raise CommandError(f"{args.data} has {X.shape[1]} feature columns, the model "
                           f"{args.model} expects {expected}")
    fitted_names = getattr(model, "feature_names_in_", None)
    if names is not None and fitted_names is not None and list(names) != list(fitted_names):
        raise CommandError(f"{args.data} has columns {names}, the model was fitted on "
                           f"{list(fitted_names)}")
    with warnings.catch_warnings():
        # Column names were compared above; the array itself has none.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if args.proba:
            write_proba(args.out, model.predict_proba(X), option="--out")
        else:
            write_labels(args.out, model.predict(X), option="--out")
    return 0


def _select_k_values(text):
    """select's --k-range; 'auto' (as fit's -k) is the default range."""
    return parse_k_range(DEFAULT_K_RANGE if text.strip().lower() == "auto" else text)


def cmd_select(args):
    k_values = _select_k_values(args.k_range)
    covariance_types = parse_covariance_types(args.covariance_type)
    check_outputs({"DATA": args.data}, {"--out": args.out, "--table": args.table},
                  files_only=("--out",))
    X, _ = read_data(args.data)
    scaler, X_fit = _standardize(X, args)
    best, table = _run_selection(X_fit, args, k_values, covariance_types, args.criterion)
    say(table)
    row = table.best
    say(f"best: K={row['n_components']} {row['covariance_type']} "
        f"({args.criterion.upper()} {row[args.criterion]:.6g}"
        f"{' of the standardised features' if scaler is not None else ''})")
    if args.out is not None:
        save_model(_model(scaler, best), args.out)
        say(f"model written to {args.out}")
    if args.table is not None:
        def write(f):
            writer = csv.writer(f)
            writer.writerow(table.columns)
            for entry in table:
                writer.writerow([repr(v) if isinstance(v, float) else v
                                 for v in entry.values()])

        write_output(args.table, "--table", write)
        _say_written("table", args.table)
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
    say(f"fastgmm {__version__}: OpenMP {'on' if openmp_enabled() else 'off'}, "
        f"{openmp_effective_n_threads()} threads")
    say(f"data: {X.shape[0]:,} points in {X.shape[1]} dimensions from 3 Gaussian blobs")
    start = time.perf_counter()
    gmm = GaussianMixture(n_components=3, covariance_type="full",
                          random_state=args.random_state)
    labels = gmm.fit_predict(X)
    elapsed = time.perf_counter() - start
    order = np.argsort(gmm.means_[:, 0] + 10 * gmm.means_[:, 1])
    true_order = np.argsort(true_means[:, 0] + 10 * true_means[:, 1])
    say(f"fit: {elapsed:.3f} s, {gmm.n_iter_} EM iterations, converged={gmm.converged_}, "
        f"mean log-likelihood {gmm.lower_bound_:.4f}")
    say("component  weight (true)   mean (true)")
    for k, t in zip(order, true_order):
        mean = ", ".join(f"{v:6.3f}" for v in gmm.means_[k])
        tmean = ", ".join(f"{v:6.3f}" for v in true_means[t])
        say(f"    {k}      {gmm.weights_[k]:.3f} ({true_weights[t]:.3f})   "
            f"[{mean}] ([{tmean}])")
    accuracy = matched_accuracy(true_labels, labels, 3)
    say(f"accuracy against the true labels: {accuracy:.4f}")
    if not args.no_plot:
        _demo_figure(gmm, X, args.plot)
    return 0 if accuracy > 0.9 else 1


def _demo_figure(gmm, X, path):
    """The demo's figure when matplotlib is there; otherwise say how to get it
    (not an error: the demo's job is done)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        say('figure: matplotlib is not installed; pip install "fastgmm[plot]" and run '
            "again to get one")
        return
    try:
        _check_writable(path, "--plot")
        save_figure(gmm, X, path, title="fastgmm demo: three Gaussian blobs")
    except CommandError as error:
        print(f"{PROG}: warning: no figure: {error}", file=sys.stderr)
        return
    say(f"figure: {path}")


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


def _covariance_type_options(command, default, help):
    """--covariance-type, documented, and --covariance-types, the same option
    under the other spelling (accepted, not shown in --help)."""
    command.add_argument("--covariance-type", dest="covariance_type", default=default,
                         metavar="TYPE[,TYPE...]", help=help)
    command.add_argument("--covariance-types", dest="covariance_type",
                         default=argparse.SUPPRESS, help=argparse.SUPPRESS)


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
        description="Fit a Gaussian mixture to DATA (with --bayesian, a variational "
                    "Bayesian one that leaves the components it does not need unused); "
                    "print it; write the model, labels, probabilities and a figure on "
                    "request.")
    fit.add_argument("data", metavar="DATA")
    fit.add_argument("-k", "--n-components", dest="k", default="auto",
                     help="number of components, or 'auto' to choose it by the criterion "
                          "among --k-range (default auto); with --bayesian, the most "
                          f"components the fit may use (auto: {DEFAULT_BAYESIAN_K})")
    fit.add_argument("--k", dest="k", default=argparse.SUPPRESS,
                     help=argparse.SUPPRESS)             # select's spelling
    fit.add_argument("--k-range", default=None, metavar="A..B",
                     help=f"with -k auto: the K to try, A..B or a list such as 2,3,5 "
                          f"(default {DEFAULT_K_RANGE})")
    _covariance_type_options(fit, "full",
                             "full, tied, diag or spherical (default full); with -k auto, "
                             "a comma-separated list to choose among")
    fit.add_argument("--criterion", choices=CRITERIA, default=None,
                     help="with -k auto: the criterion to minimise (default bic)")
    bayesian = fit.add_argument_group("Bayesian mixture (BayesianGaussianMixture)")
    bayesian.add_argument("--bayesian", action="store_true",
                          help="fit a BayesianGaussianMixture: a Dirichlet-process prior on "
                               "the weights lets one fit leave the components the data do "
                               "not need with weights near 0, instead of choosing K by a "
                               "criterion; the summary counts the components of weight "
                               f"above {EFFECTIVE_WEIGHT:g}, and `fastgmm predict` uses the "
                               "model file as any other")
    bayesian.add_argument("--weight-concentration-prior", type=_positive_float, default=None,
                          metavar="GAMMA",
                          help="with --bayesian: the weight prior's concentration; smaller "
                               "values leave fewer components in use (default 1/K)")
    bayesian.add_argument("--weight-concentration-prior-type", choices=WEIGHT_PRIOR_TYPES,
                          default=None,
                          help="with --bayesian: the weight prior (default dirichlet_process)")
    fit.add_argument("--out", metavar="MODEL.npz", help="write the fitted model")
    fit.add_argument("--labels", metavar="FILE.csv", help="write each row's component")
    fit.add_argument("--proba", metavar="FILE.csv",
                     help="write each row's component probabilities")
    fit.add_argument("--plot", metavar="FIGURE.png",
                     help="draw the components over the data (needs matplotlib; the "
                          "format from the extension: png, pdf, svg, ...). With "
                          "--standardize the figure is in standardised units, where the "
                          "model's components are defined")
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
                    "the best model (GaussianMixture only: for a Bayesian mixture, which "
                    "chooses its components itself, use fit --bayesian).")
    select.add_argument("data", metavar="DATA")
    select.add_argument("--k-range", default=DEFAULT_K_RANGE, metavar="A..B",
                        help=f"the K to try, A..B or a list such as 2,3,5 (default "
                             f"{DEFAULT_K_RANGE})")
    select.add_argument("-k", "--k", dest="k_range", default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)          # fit's spelling
    _covariance_type_options(select, ",".join(COVARIANCE_TYPES),
                             "comma-separated list of full, tied, diag, spherical "
                             "(default all four)")
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
    global _stdout
    _stdout = _Stdout()
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            status = args.func(args)
            _stdout.write(lambda f: None)      # the last flush, through the guard
            # Every file is written; stdout lost part of its text to a closed pipe.
            return 141 if _stdout.broken and status == 0 else status
        except CommandError as error:
            message = _one_line(error)
        except KeyboardInterrupt:
            print(f"\n{PROG}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # A write to stdout outside _Stdout (the demo, bench): stop quietly,
            # as a program killed by SIGPIPE would.
            _stdout_to_devnull()
            return 141
        except (OSError, ValueError, ImportError, MemoryError) as error:
            message = _one_line(error)
        except Exception as error:  # noqa: BLE001  never a traceback for the user
            message = (f"unexpected {type(error).__name__}: {_one_line(error)} "
                       "(please report this)")
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1
