"""A model file that is safe to load: .npz arrays plus a JSON header, no pickles.

Layout of a fastgmm model file, an uncompressed .npz archive written by numpy:

``header``
    uint8, the UTF-8 text of a JSON object: ``format`` ("fastgmm-model"),
    ``format_version``, ``fastgmm_version``, ``params`` (get_params(),
    arrays and RandomState instances replaced by references to the arrays
    below), ``n_features_in_``, ``feature_names_in_`` (a list of str, when
    the model has them), ``converged_``, ``n_iter_``, ``lower_bound_``,
    ``lower_bounds_`` and ``online_updates`` (partial_fit's update count).
    Version 2 adds ``standardize``: the StandardScaler's ``with_mean``,
    ``with_std`` and ``copy``, and its ``feature_names_in_`` when it has them.
``weights_``, ``means_``, ``covariances_``, ``precisions_cholesky_``, ``precisions_``
    The fitted arrays, stored as they are (float32 or float64): loading
    recomputes nothing, so a loaded model is bitwise the saved one.
``param_weights_init``, ``param_means_init``, ``param_precisions_init``, ``param_random_state_key``
    Only when those parameters are arrays (or a RandomState).
``lower_bounds_`` (any version, optional)
    float64: ``lower_bounds_`` when it holds more than 10,000 values (a
    long partial_fit stream); the header's ``lower_bounds_`` is then
    ``{"$array": "lower_bounds_", "length": n}`` instead of the list. Files
    without it are as before, and older fastgmm versions read them.
``standardize_shift``, ``standardize_scale`` (format version 2; optional in 3)
    float64, length n_features: what the StandardScaler subtracts (its
    ``mean_``, zeros when ``with_mean=False``) and divides by (its ``scale_``,
    ones when ``with_std=False``). A file with them loads as
    ``make_pipeline(StandardScaler(...), <the estimator>(...))``.

Version 3 adds ``estimator`` to the header, "GaussianMixture" or
"BayesianGaussianMixture" (versions 1 and 2 hold a GaussianMixture), and
``standardize`` becomes optional (present: the arrays above are too). A
BayesianGaussianMixture's file has, besides the fitted arrays above:

``weight_concentration_prior_``, ``mean_precision_prior_``, ``degrees_of_freedom_prior_`` (header)
    Numbers: a JSON number for a Python int or float, or ``{"$scalar":
    "float32" | "float64", "value": x}`` for a numpy scalar (the type comes
    back too). Tied: ``degrees_of_freedom_`` too; spherical:
    ``covariance_prior_`` too (the arrays below otherwise).
``weight_concentration_``
    float64, (2, K) for a Dirichlet process (the tuple's two arrays), (K,)
    for a Dirichlet distribution.
``mean_precision_``, ``degrees_of_freedom_`` (not tied)
    float64, (K,).
``mean_prior_``, ``covariance_prior_`` (not spherical)
    float32 or float64: (D,); (D, D) for full and tied, (D,) for diag.
``param_mean_prior``, ``param_covariance_prior``
    Those parameters, when they are arrays.
``svi_state`` (header), ``svi_nk``, ``svi_first``, ``svi_second``
    Only after partial_fit (the stochastic variational stream it continues):
    the rows seen and the update count, and the per-row moments (float64;
    (K,), (K, D), and (K, D, D) full, (D, D) tied, (K, D) diag and spherical).

Version 1 files (no standardisation) are still written for a plain
GaussianMixture, and version 2 for a GaussianMixture with a scaler, so that
older fastgmm versions read them; a BayesianGaussianMixture is written as
version 3.

Loading reads the file only as far as it has to, and checks it in this order:
the zip signature (4 bytes); the end-of-archive record and the central
directory (at most one entry per possible member, each a stored ``.npy``
listed once, no flags but UTF-8 names and data descriptors, every member
inside the archive and no two overlapping); the header member (at most
``_MAX_HEADER_BYTES``, its nesting bounded before JSON parses it); then each
other member, whose declared size must fit the shape that the header's
n_components, n_features_in_ and covariance_type give it, read in bounded
chunks with its CRC checked, its .npy header parsed with a bounded size
(plain numeric dtypes only, ``allow_pickle`` never). Then the model itself:
shapes, dtypes, finite values, weights summing to one, positive definite
covariances, precision factors consistent with them, the standardisation's
scale positive; for a BayesianGaussianMixture also positive posterior and
prior concentrations, precisions and degrees of freedom (above D - 1),
weights matching the weight posterior, a positive semi-definite covariance
prior, and a stream state of finite, non-negative counts. Any failure raises
:class:`ModelFileError` (a ValueError) saying what is wrong; an operating-system error opening or reading the file
(FileNotFoundError, PermissionError, EIO) is raised as it is.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, Union

import numpy as np
from scipy import linalg
from sklearn.utils.validation import check_is_fitted

from fastgmm._files import atomic_write
from fastgmm._parameters import PRECISION_SHAPES as _PRECISION_SHAPES
from fastgmm._version import __version__

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from fastgmm._bayesian_mixture import BayesianGaussianMixture
    from fastgmm._gaussian_mixture import GaussianMixture

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]

FORMAT_NAME = "fastgmm-model"
FORMAT_VERSION = 1                  # a GaussianMixture alone
FORMAT_VERSION_STANDARDIZED = 2     # with a StandardScaler's shift and scale
FORMAT_VERSION_KIND = 3             # the estimator named; a scaler optional
READABLE_VERSIONS = (FORMAT_VERSION, FORMAT_VERSION_STANDARDIZED, FORMAT_VERSION_KIND)

GAUSSIAN = "GaussianMixture"
BAYESIAN = "BayesianGaussianMixture"
ESTIMATORS = (GAUSSIAN, BAYESIAN)

FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
ARRAY_PARAMS = ("weights_init", "means_init", "precisions_init")
BAYESIAN_ARRAY_PARAMS = ("mean_prior", "covariance_prior")
STANDARDIZE_ARRAYS = ("standardize_shift", "standardize_scale")
# A BayesianGaussianMixture's posteriors and priors; the first three are
# always float64 (sums of responsibilities), the priors float32 or float64.
BAYESIAN_ARRAYS = ("weight_concentration_", "mean_precision_", "degrees_of_freedom_",
                   "mean_prior_", "covariance_prior_")
_FLOAT64_ONLY = frozenset(("weight_concentration_", "mean_precision_", "degrees_of_freedom_",
                           "svi_nk", "svi_first", "svi_second"))
# Always in its header (a number each), and those of one covariance type.
BAYESIAN_SCALARS = ("weight_concentration_prior_", "mean_precision_prior_",
                    "degrees_of_freedom_prior_")
_SCALAR_OF_TYPE = {"tied": "degrees_of_freedom_", "spherical": "covariance_prior_"}
SVI_ARRAYS = ("svi_nk", "svi_first", "svi_second")
_SCALAR_DTYPES = ("float32", "float64")
_RANDOM_STATE_KEY = "param_random_state_key"
LOWER_BOUNDS_ARRAY = "lower_bounds_"     # see _MAX_LISTED_BOUNDS
_ALL_MEMBERS = frozenset(("header", *FITTED_ARRAYS, *("param_" + name for name in ARRAY_PARAMS),
                          *("param_" + name for name in BAYESIAN_ARRAY_PARAMS),
                          _RANDOM_STATE_KEY, *STANDARDIZE_ARRAYS, *BAYESIAN_ARRAYS,
                          *SVI_ARRAYS, LOWER_BOUNDS_ARRAY))

_ZIP_MAGIC = b"PK\x03\x04"
_END_RECORD = struct.Struct("<IHHHHIIH")           # end of central directory, 22 bytes
_ZIP64_LOCATOR = struct.Struct("<IIQI")            # 20 bytes
_ZIP64_END_RECORD = struct.Struct("<IQHHIIQQQQ")   # 56 bytes
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")      # 30 bytes
_MAX_MEMBERS = len(_ALL_MEMBERS)
_MAX_DIRECTORY_ENTRY = 1024        # 46 fixed bytes, a short name, a zip64 extra field
_ALLOWED_FLAGS = 0x08 | 0x800      # data descriptor, UTF-8 name
_MAX_HEADER_BYTES = 16 * 2**20     # the JSON header: feature names, lower_bounds_
# lower_bounds_ longer than this (partial_fit adds one an update) is stored
# as a float64 array member, LOWER_BOUNDS_ARRAY, its length in the header
_MAX_LISTED_BOUNDS = 10_000
_MAX_NPY_HEADER = 4096             # numpy writes 64 to 128 bytes
_MAX_ITEMSIZE = 16                 # longdouble parameter arrays
_MAX_JSON_DEPTH = 8                # the header nests 4 deep
_MAX_DIMENSION = 2**40             # n_components, n_features_in_
_MAX_COUNT = 2**63 - 1             # n_iter_, online_updates
_READ_CHUNK = 2**20


class ModelFileError(ValueError):
    """A file that :func:`fastgmm.load` refuses: not a fastgmm model, of an
    unknown format version, truncated, or with inconsistent contents."""


# ---------------------------------------------------------------------- save


def save(model: "GaussianMixture | BayesianGaussianMixture | Pipeline",
         path: PathOrFile) -> None:
    """Write a fitted model to a pickle-free file; read it back with
    :func:`fastgmm.load`.

    Parameters
    ----------
    model : GaussianMixture, BayesianGaussianMixture or Pipeline
        A fitted :class:`fastgmm.GaussianMixture` or
        :class:`fastgmm.BayesianGaussianMixture`, or a fitted
        ``sklearn.pipeline.Pipeline`` of exactly two steps, a
        ``StandardScaler`` (any ``with_mean`` / ``with_std``) followed by
        one of them, as ``make_pipeline(StandardScaler(),
        GaussianMixture(...))`` builds. The scaler is stored as two float64
        arrays (the shift it subtracts and the scale it divides by), and
        :func:`fastgmm.load` gives back such a pipeline, whose predictions
        are bitwise the saved one's. A BayesianGaussianMixture keeps its
        priors and posteriors, and the state partial_fit continues from.
    path : str, path-like or binary file object
        Written under the name given (no '.npz' appended), through a
        temporary file in the same folder renamed over it: a failed save
        leaves the previous file as it was. A new file gets 0666 less the
        umask; a replaced one keeps its mode.

    Raises
    ------
    TypeError
        If `model` is neither of the above.
    NotFittedError
        If the model (or the pipeline's scaler) is not fitted.
    ValueError
        If the model is inconsistent with its own parameters (n_components
        changed after fitting, a scaler fitted on other features; for a
        BayesianGaussianMixture, anything :func:`fastgmm.load` would refuse,
        such as a ``mean_prior`` of other features set after fitting).
    """
    gmm, scaler = _split_model(model)
    # Everything is read from one copy of the estimator's attributes: a fit
    # in another thread publishes a new attribute dict in one assignment,
    # and reading the live estimator field by field wrote files with one
    # fit's means and the other's lower bound (an outside audit, 4 in 1336).
    gmm = _snapshot(gmm)
    kind = BAYESIAN if _is_bayesian(gmm) else GAUSSIAN
    arrays = {name: np.asarray(getattr(gmm, name)) for name in FITTED_ARRAYS}
    if gmm.means_.shape[0] != gmm.n_components:
        raise ValueError(f"n_components is {gmm.n_components} but the model was fitted with "
                         f"{gmm.means_.shape[0]} components: such a file would not load; "
                         "set n_components back or fit again"
                         + (" with warm_start=False (a warm start keeps the fitted "
                            "components, as scikit-learn's does)" if gmm.warm_start else ""))
    if kind == BAYESIAN:
        version = FORMAT_VERSION_KIND
    else:   # the versions older fastgmm versions read
        version = FORMAT_VERSION if scaler is None else FORMAT_VERSION_STANDARDIZED
    header = {
        "format": FORMAT_NAME,
        "format_version": version,
        "fastgmm_version": __version__,
    }
    if version == FORMAT_VERSION_KIND:
        header["estimator"] = kind
    array_params = BAYESIAN_ARRAY_PARAMS if kind == BAYESIAN else ARRAY_PARAMS
    params = {}
    for name, value in gmm.get_params(deep=False).items():
        params[name] = _encode_param(name, value, arrays, array_params)
    header.update({
        "params": params,
        "n_features_in_": int(gmm.n_features_in_),
        "converged_": bool(gmm.converged_),
        "n_iter_": int(gmm.n_iter_),
        "lower_bound_": float(gmm.lower_bound_),
    })
    bounds = np.asarray(gmm.lower_bounds_, dtype=np.float64).reshape(-1)
    if bounds.shape[0] <= _MAX_LISTED_BOUNDS:
        header["lower_bounds_"] = [float(v) for v in bounds]
    else:   # a long stream of partial_fit updates: an array, not JSON text
        header["lower_bounds_"] = {"$array": LOWER_BOUNDS_ARRAY, "length": int(bounds.shape[0])}
        arrays[LOWER_BOUNDS_ARRAY] = bounds
    if hasattr(gmm, "feature_names_in_"):
        header["feature_names_in_"] = [str(v) for v in gmm.feature_names_in_]
    if hasattr(gmm, "_online_updates"):
        header["online_updates"] = int(gmm._online_updates)
    if kind == BAYESIAN:
        _encode_bayesian(gmm, header, arrays)
    if scaler is not None:
        header["standardize"], shift, scale = _encode_scaler(scaler, gmm.n_features_in_)
        arrays["standardize_shift"] = shift
        arrays["standardize_scale"] = scale
    try:
        text = json.dumps(header, allow_nan=True, sort_keys=True)
        encoded = text.encode("utf-8")
    except TypeError as error:      # a parameter set to something else (a Generator, ...)
        raise ValueError(f"the model cannot be saved: a parameter is not a number, text, "
                         f"array, None or a RandomState ({error}); set it to one") from None
    if len(encoded) > _MAX_HEADER_BYTES:
        raise ValueError(f"the model cannot be saved: its header would be {len(encoded)} bytes, "
                         f"more than load reads ({_MAX_HEADER_BYTES}); shorten "
                         "feature_names_in_")
    _check_loadable(encoded, arrays)
    arrays["header"] = np.frombuffer(encoded, dtype=np.uint8)
    _write_npz(path, arrays)


def save_model(gmm: "GaussianMixture | BayesianGaussianMixture", path: PathOrFile) -> None:
    """The estimators' ``save`` method: :func:`save` for one estimator."""
    save(gmm, path)


def _mixture_classes():
    from fastgmm._bayesian_mixture import BayesianGaussianMixture  # no estimator at
    from fastgmm._gaussian_mixture import GaussianMixture          # import time

    return GaussianMixture, BayesianGaussianMixture


def _is_bayesian(model):
    return isinstance(model, _mixture_classes()[1])


def _snapshot(estimator):
    """An instance of the estimator's class sharing a copy of its attribute
    dict, taken in one step (dict() of a dict runs without releasing the GIL)."""
    copy = object.__new__(type(estimator))
    copy.__dict__ = dict(estimator.__dict__)
    return copy


def _split_model(model):
    """(gaussian mixture, scaler or None) of a model save accepts."""
    mixtures = _mixture_classes()
    if isinstance(model, mixtures):
        check_is_fitted(model)
        return model, None
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = model.steps if isinstance(model, Pipeline) else None
    if (steps is None or len(steps) != 2 or type(steps[0][1]) is not StandardScaler
            or not isinstance(steps[1][1], mixtures)):
        if steps is not None:
            what = "a Pipeline of " + ", ".join(type(step).__name__ for _, step in steps)
        else:
            what = f"a {type(model).__module__}.{type(model).__qualname__}"
        raise TypeError(
            "fastgmm.save takes a fitted fastgmm.GaussianMixture or "
            "fastgmm.BayesianGaussianMixture, or a Pipeline of a StandardScaler followed "
            "by one of them (as make_pipeline(StandardScaler(), GaussianMixture(...)) "
            f"builds); got {what}"
        )
    scaler, gmm = steps[0][1], steps[1][1]
    check_is_fitted(scaler)
    check_is_fitted(gmm)
    return gmm, scaler


def _encode_scalar(name, value):
    """A fitted number for the header: a Python int or float as JSON, a
    numpy float32 / float64 scalar tagged with its type."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.floating) and value.dtype.name in _SCALAR_DTYPES:
        return {"$scalar": value.dtype.name, "value": float(value)}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} is {_short(value)}, not a number: the model cannot be saved")
    return value


def _encode_bayesian(model, header, arrays):
    """A BayesianGaussianMixture's priors, posteriors and stream state."""
    for name in BAYESIAN_SCALARS:
        header[name] = _encode_scalar(name, getattr(model, name))
    concentration = model.weight_concentration_
    if isinstance(concentration, tuple):    # a Dirichlet process: two Beta parameters
        first, second = (np.asarray(part) for part in concentration)
        if first.dtype != second.dtype or first.shape != second.shape:
            raise ValueError("weight_concentration_ is two arrays of different dtypes or "
                             "shapes: the model cannot be saved")
        concentration = np.stack((first, second))
    arrays["weight_concentration_"] = np.asarray(concentration)
    arrays["mean_precision_"] = np.asarray(model.mean_precision_)
    arrays["mean_prior_"] = np.asarray(model.mean_prior_)
    for name in ("degrees_of_freedom_", "covariance_prior_"):
        if _SCALAR_OF_TYPE.get(model.covariance_type) == name:
            header[name] = _encode_scalar(name, getattr(model, name))
        else:
            arrays[name] = np.asarray(getattr(model, name))
    state = getattr(model, "_svi_state", None)
    if state is not None:
        header["svi_state"] = {"rows": float(state["rows"]), "updates": int(state["updates"])}
        for name, moment in zip(SVI_ARRAYS, state["moments"]):
            arrays[name] = np.asarray(moment)


def _check_loadable(encoded, arrays):
    """Refuse, before anything is written, a model whose file load would
    refuse (parameters changed after fitting to ones of another shape);
    `encoded`: the header's UTF-8 bytes."""
    try:
        header = _parse_header(np.frombuffer(encoded, dtype=np.uint8))
        expected = set(_expected_members(header))
        if expected != set(arrays):
            raise ModelFileError(f"its arrays {sorted(arrays)} are not {sorted(expected)}")
        _build_model(header, arrays)
    except ModelFileError as error:
        raise ValueError(f"the model cannot be saved: load would refuse its file ({error})") \
            from None


def _encode_scaler(scaler, n_features):
    """The header's 'standardize' object and the shift and scale arrays."""
    if scaler.n_features_in_ != n_features:
        raise ValueError(f"the StandardScaler was fitted on {scaler.n_features_in_} features, "
                         f"the GaussianMixture on {n_features}")
    shift = np.zeros(n_features)
    scale = np.ones(n_features)
    if scaler.with_mean:
        shift = np.array(scaler.mean_, dtype=np.float64)
    if scaler.with_std:
        scale = np.array(scaler.scale_, dtype=np.float64)
    for name, array in (("mean_", shift), ("scale_", scale)):
        if array.shape != (n_features,) or not np.all(np.isfinite(array)):
            raise ValueError(f"the StandardScaler's {name} is not {n_features} finite numbers")
    standardize = {"with_mean": bool(scaler.with_mean), "with_std": bool(scaler.with_std),
                   "copy": bool(scaler.copy)}
    if hasattr(scaler, "feature_names_in_"):
        standardize["feature_names_in_"] = [str(v) for v in scaler.feature_names_in_]
    return standardize, shift, scale


def _encode_param(name, value, arrays, array_params=ARRAY_PARAMS):
    """JSON for one constructor parameter; arrays go to `arrays`."""
    if isinstance(value, np.random.RandomState):
        kind, key, pos, has_gauss, cached_gaussian = value.get_state(legacy=True)
        arrays[_RANDOM_STATE_KEY] = np.asarray(key, dtype=np.uint32)
        return {"$random_state": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                                  "cached_gaussian": float(cached_gaussian)}}
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if name in array_params and value is not None and not isinstance(value, (np.generic,
                                                                            int, float)):
        arrays["param_" + name] = np.asarray(value, dtype=np.result_type(np.asarray(value),
                                                                          np.float32))
        return {"$array": "param_" + name}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_npz(path, arrays):
    """np.savez to a file object (so the name is kept as given, with no
    '.npz' appended); to a path through _files.atomic_write (temporary file,
    fsync, rename; the umask or the replaced file's mode)."""
    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return
    # The archive is built in memory, then written: a device such as
    # /dev/null reports position 0 after every write, and zipfile's offsets
    # from it failed (struct.error); a model is small beside its data.
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_write(path, binary=True) as f:
        f.write(buffer.getbuffer())


# ---------------------------------------------------------------------- load


def load(path: PathOrFile) -> "GaussianMixture | BayesianGaussianMixture | Pipeline":
    """Load a model saved with :func:`fastgmm.save` or an estimator's
    ``save`` method.

    The file is read as data only (no pickles, no code runs), and only as far
    as it has to be: its structure and declared sizes are checked before any
    array is read, and the model is checked before an estimator is built
    from it.

    Parameters
    ----------
    path : str, path-like or binary file object
        A file object is read from its current position to its end; one that
        cannot seek (a pipe) is first copied to a temporary file.

    Returns
    -------
    GaussianMixture, BayesianGaussianMixture or Pipeline
        The fitted estimator that was saved, with attributes bitwise equal
        to the saved model's (a BayesianGaussianMixture's priors, posteriors
        and partial_fit stream included); for a file saved from a
        StandardScaler + estimator pipeline, ``make_pipeline(StandardScaler(...),
        GaussianMixture(...))`` (steps 'standardscaler' and 'gaussianmixture';
        'bayesiangaussianmixture' for the other estimator), fitted,
        predicting bitwise as the saved pipeline did. Its scaler has ``mean_`` (None
        when ``with_mean=False``), ``scale_`` (None when ``with_std=False``),
        ``n_features_in_`` and ``feature_names_in_`` as saved, but not
        ``var_`` or ``n_samples_seen_``.

    Raises
    ------
    ModelFileError
        (a ValueError) if the file is not a fastgmm model, has an unknown
        format version, is truncated or corrupt, or its arrays are missing,
        misshapen, not finite or inconsistent.
    FileNotFoundError, PermissionError, IsADirectoryError
        Opening the file failed.
    """
    if hasattr(path, "read"):
        if isinstance(path, io.TextIOBase):
            raise TypeError("fastgmm.load reads a binary file object (open(path, 'rb')) or a "
                            "path; got a file open in text mode")
        return _load_named(path, getattr(path, "name", "<file object>"))
    name = os.fspath(path)
    with open(path, "rb") as f:
        return _load_named(f, name)


def _load_named(f, name):
    try:
        return _load_stream(f)
    except ModelFileError as error:
        raise ModelFileError(f"{name}: {error}") from None


# What a malformed file can make the zip, .npy, JSON and numpy parsers raise.
# OSError is not among them: an error of the disk or the operating system is
# not the file's contents.
_MALFORMED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, struct.error,
              ValueError, KeyError, IndexError, TypeError, OverflowError, RuntimeError)


def _load_stream(f):
    try:
        seekable = bool(f.seekable())
    except (AttributeError, ValueError, OSError):
        seekable = False
    base = f.tell() if seekable else 0
    magic = _read_up_to(f, len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        raise ModelFileError("not a fastgmm model file (not an .npz archive)")
    if seekable:
        return _load_archive(f, base)
    with tempfile.SpooledTemporaryFile(max_size=_MAX_HEADER_BYTES) as spool:
        spool.write(magic)
        shutil.copyfileobj(f, spool, _READ_CHUNK)
        return _load_archive(spool, 0)


def _read_up_to(f, n):
    data = b""
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            break
        if not isinstance(chunk, bytes):
            return None         # a text file object
        data += chunk
    return data


def _load_archive(f, base):
    """Check the archive's structure, then read and check the model."""
    try:
        cd_start, count = _check_end_record(f, base)
        archive = zipfile.ZipFile(f)
        if archive.start_dir != cd_start:     # zipfile found the same directory
            archive.close()
            raise ModelFileError("truncated or corrupt model file (two readings of the "
                                 "archive's directory disagree)")
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError("not enough memory for the archive's directory "
                             "(a corrupt file declaring a huge size?)") from None
    except _MALFORMED as error:
        raise ModelFileError(f"truncated or corrupt model file (not a readable .npz "
                             f"archive: {type(error).__name__}: {error})") from None
    with archive:
        try:
            infos = _check_directory(f, archive, base, cd_start, count)
            header = _parse_header(_read_member(archive, infos["header"], _MAX_HEADER_BYTES))
            bounds = _member_bounds(header, infos)
            members = {key: _read_member(archive, infos[key], bounds[key]) for key in bounds}
            return _build_model(header, members)
        except ModelFileError:
            raise
        except MemoryError:
            raise ModelFileError("not enough memory for the model's arrays") from None
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            # A CRC that does not match, a local header that is not the
            # directory's, a member that ends early.
            raise ModelFileError(f"truncated or corrupt model file ({type(error).__name__}: "
                                 f"{error})") from None
        except _MALFORMED as error:
            raise ModelFileError(f"malformed model file ({type(error).__name__}: {error})") \
                from None


def _check_end_record(f, base):
    """The central directory's absolute offset and its number of entries,
    from the end-of-archive record that must end the file, found as zipfile
    finds it. Bounds the directory's size by the most members a model file
    has, before zipfile reads it."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    if end - base < _END_RECORD.size + _LOCAL_HEADER.size:
        raise ModelFileError("truncated or corrupt model file (too short for an archive)")
    f.seek(end - _END_RECORD.size)
    (signature, disk, cd_disk, count_disk, count, cd_size, cd_offset,
     comment) = _END_RECORD.unpack(f.read(_END_RECORD.size))
    if signature != 0x06054B50 or comment != 0:
        raise ModelFileError("truncated or corrupt model file (the file does not end with "
                             "an archive's end record)")
    record = end - _END_RECORD.size
    if record - base >= _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size:
        f.seek(record - _ZIP64_LOCATOR.size)
        locator = _ZIP64_LOCATOR.unpack(f.read(_ZIP64_LOCATOR.size))
        if locator[0] == 0x07064B50:
            if locator[1] != 0 or locator[3] > 1:
                raise ModelFileError("truncated or corrupt model file (a multi-disk archive)")
            f.seek(record - _ZIP64_LOCATOR.size - _ZIP64_END_RECORD.size)
            zip64 = _ZIP64_END_RECORD.unpack(f.read(_ZIP64_END_RECORD.size))
            if zip64[0] == 0x06064B50:
                disk, cd_disk, count_disk, count, cd_size, cd_offset = zip64[4:]
                record -= _ZIP64_LOCATOR.size + _ZIP64_END_RECORD.size
    if disk != 0 or cd_disk != 0 or count_disk != count:
        raise ModelFileError("truncated or corrupt model file (a multi-disk archive)")
    if count > _MAX_MEMBERS:
        raise ModelFileError(f"not a fastgmm model file (the archive has {count} members; "
                             f"a model file has at most {_MAX_MEMBERS})")
    if cd_size > count * _MAX_DIRECTORY_ENTRY:
        raise ModelFileError(f"truncated or corrupt model file (a directory of {cd_size} "
                             f"bytes for {count} members)")
    # The directory ends where the end record starts. Its recorded offset is
    # counted from the archive's start (np.savez into a fresh file) or from
    # the file's (zipfile writing into a file object after other data):
    # zipfile reads either, and so does this.
    cd_start = record - cd_size
    if cd_start - cd_offset not in (0, base) or cd_start < base + _LOCAL_HEADER.size:
        raise ModelFileError("truncated or corrupt model file (the archive's directory is "
                             "not where its end record says)")
    return cd_start, count


def _check_directory(f, archive, base, cd_start, count):
    """The members by key ('means_' for means_.npy) after checking, before
    any is read, that each is a stored .npy listed once, and that they lie
    within the archive without overlapping."""
    infos = archive.infolist()
    if len(infos) != count:
        raise ModelFileError(f"truncated or corrupt model file (the directory lists "
                             f"{len(infos)} members, its end record {count})")
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ModelFileError(f"not a fastgmm model file (unexpected member "
                                 f"{info.filename!r})")
    keys = {}
    for info in infos:
        key = info.filename[: -len(".npy")]
        if key in keys:
            raise ModelFileError(f"member {info.filename!r} is listed more than once")
        keys[key] = info
    if "header" not in keys:
        raise ModelFileError("not a fastgmm model file (no 'header' array)")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(f"member {info.filename!r} is compressed (method "
                                 f"{info.compress_type}); fastgmm writes uncompressed archives")
        if info.flag_bits & ~_ALLOWED_FLAGS:
            raise ModelFileError(f"member {info.filename!r} has zip flags {info.flag_bits:#x} "
                                 "(encrypted or an unsupported zip feature)")
        if info.compress_size != info.file_size:
            raise ModelFileError(f"truncated or corrupt model file (stored member "
                                 f"{info.filename!r} has two sizes)")
    extents = []
    for info in infos:
        start = info.header_offset
        if not base <= start <= cd_start - _LOCAL_HEADER.size:
            raise ModelFileError(f"truncated or corrupt model file (member {info.filename!r} "
                                 "starts outside the archive)")
        f.seek(start)
        local = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if local[0] != 0x04034B50:
            raise ModelFileError(f"truncated or corrupt model file (no local header for member "
                                 f"{info.filename!r})")
        stop = start + _LOCAL_HEADER.size + local[9] + local[10] + info.compress_size
        if stop > cd_start:
            raise ModelFileError(f"truncated or corrupt model file (member {info.filename!r} "
                                 f"extends past the archive's data: {info.compress_size} bytes "
                                 "declared)")
        extents.append((start, stop, info.filename))
    extents.sort()
    for (_, stop, name), (start, _, other) in zip(extents, extents[1:]):
        if start < stop:
            raise ModelFileError(f"truncated or corrupt model file (members {name!r} and "
                                 f"{other!r} overlap)")
    return keys


def _read_member(archive, info, max_bytes):
    """One member as an array: its declared size within `max_bytes`, its .npy
    header parsed from at most _MAX_NPY_HEADER bytes, a plain numeric dtype,
    the data read in chunks into an array of exactly the declared size (no
    pickles, no copy of the whole member), the CRC checked."""
    key = info.filename[: -len(".npy")]
    if info.file_size > max_bytes:
        raise ModelFileError(f"member {info.filename!r} declares {info.file_size} bytes; "
                             f"this model's {key!r} has at most {max_bytes}")
    with archive.open(info) as stream:
        prefix = stream.read(min(info.file_size, _MAX_NPY_HEADER))
        head = io.BytesIO(prefix)
        try:
            version = np.lib.format.read_magic(head)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(
                    head, max_header_size=_MAX_NPY_HEADER)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(
                    head, max_header_size=_MAX_NPY_HEADER)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as error:  # noqa: BLE001 - numpy's parser on untrusted bytes
            # ValueError mostly; also tokenize.TokenError, TypeError (keys of
            # mixed types sorted), RecursionError, MemoryError.
            raise ModelFileError(f"array {key!r} has a bad .npy header "
                                 f"({type(error).__name__}: {error})") from None
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise ModelFileError(f"array {key!r} has dtype {dtype}, not a plain numeric type")
        if len(shape) > 3 or any(n < 0 for n in shape):
            raise ModelFileError(f"array {key!r} has shape {_short(shape)}, not an array a "
                                 "model has")
        needed = math.prod(shape) * dtype.itemsize
        start = head.tell()
        present = info.file_size - start
        if needed != present:
            raise ModelFileError(
                f"truncated or corrupt model file (array {key!r} of shape {_short(shape)} "
                f"needs {_short(needed)} bytes, {present} are there)"
            )
        data = bytearray(needed)
        view = memoryview(data)
        done = len(prefix) - start
        view[:done] = prefix[start:]
        while done < needed:
            chunk = stream.read(min(needed - done, _READ_CHUNK))
            if not chunk:
                raise ModelFileError(f"truncated or corrupt model file (array {key!r} ends "
                                     "early)")
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
        stream.read(1)          # at the end: zipfile checks the CRC (done above
        #                         when the last byte came in; a no-op then)
    array = np.frombuffer(data, dtype=dtype)
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _is_bound(value):
    """A lower bound as a fit records one: a float, -inf allowed, never NaN
    or +inf."""
    return not math.isnan(value) and value != math.inf


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...)"


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}"]')


def _check_nesting(text):
    """Refuse JSON nested deeper than a header is, before json.loads recurses
    into it. Linear: a string that does not close stops the scan (json.loads
    then fails there)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > _MAX_JSON_DEPTH:
                raise ModelFileError(f"the header is nested more than {_MAX_JSON_DEPTH} "
                                     "levels deep; a model's is not")
        elif token in "]}":
            depth -= 1
        elif token == '"':
            break


def _parse_header(header_array):
    if header_array.dtype != np.uint8 or header_array.ndim != 1:
        raise ModelFileError("not a fastgmm model file ('header' is not JSON text)")
    try:
        text = header_array.tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError("not a fastgmm model file ('header' is not JSON text)") from None
    _check_nesting(text)
    try:
        header = json.loads(text)
    except ValueError:
        raise ModelFileError("not a fastgmm model file ('header' is not JSON text)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"not a fastgmm model file (header format is not {FORMAT_NAME!r})"
        )
    version = header.get("format_version")
    if not _is_int(version) or version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"unknown model file format version {_short(version)} (written by fastgmm "
            f"{_short(header.get('fastgmm_version', '?'))}); this fastgmm {__version__} reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}. Load it with a matching "
            "fastgmm version."
        )
    _check_header_fields(header)
    return header


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    if isinstance(value, float):
        return True
    if not _is_int(value):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


_HEADER_FIELDS = {
    "params": dict,
    "n_features_in_": int,
    "converged_": bool,
    "n_iter_": int,
    "lower_bound_": (int, float),
    "lower_bounds_": (list, dict),
}


def _check_header_fields(header):
    """Types and ranges of the header's fields, before any array is read
    (n_components, n_features_in_ and covariance_type bound the arrays)."""
    for field, kind in _HEADER_FIELDS.items():
        if field not in header:
            raise ModelFileError(f"the header has no {field!r}")
        value = header[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelFileError(f"header field {field!r} has the wrong type "
                                 f"({type(value).__name__})")
    if not 1 <= header["n_features_in_"] <= _MAX_DIMENSION:
        raise ModelFileError(f"header field 'n_features_in_' = "
                             f"{_short(header['n_features_in_'])} is out of range")
    if not 0 <= header["n_iter_"] <= _MAX_COUNT:
        raise ModelFileError(f"n_iter_ = {_short(header['n_iter_'])} is "
                             f"{'negative' if header['n_iter_'] < 0 else 'out of range'}")
    if not _is_number(header["lower_bound_"]) or not _is_bound(header["lower_bound_"]):
        raise ModelFileError(f"header field 'lower_bound_' = {_short(header['lower_bound_'])} "
                             "is not a lower bound (a float below +inf)")
    bounds = header["lower_bounds_"]
    if isinstance(bounds, dict):
        if (set(bounds) != {"$array", "length"} or bounds["$array"] != LOWER_BOUNDS_ARRAY
                or not _is_int(bounds["length"]) or not 0 <= bounds["length"] <= _MAX_COUNT):
            raise ModelFileError("header field 'lower_bounds_' must be a list of numbers or "
                                 f"{{'$array': {LOWER_BOUNDS_ARRAY!r}, 'length': a count}}, "
                                 f"got {_short(bounds)}")
    elif not all(_is_number(v) for v in bounds):
        raise ModelFileError("header field 'lower_bounds_' must be a list of numbers")
    elif not all(_is_bound(v) for v in bounds):
        raise ModelFileError("header field 'lower_bounds_' holds NaN or +inf: not lower bounds")
    if "online_updates" in header:
        updates = header["online_updates"]
        if not _is_int(updates) or not 0 <= updates <= _MAX_COUNT:
            raise ModelFileError(f"online_updates must be a count, got {_short(updates)}")

    params = header["params"]
    n_components = params.get("n_components")
    if not _is_int(n_components) or not 1 <= n_components <= _MAX_DIMENSION:
        raise ModelFileError(f"bad estimator parameters in the header: n_components = "
                             f"{_short(n_components)}")
    covariance_type = params.get("covariance_type")
    if not isinstance(covariance_type, str) or covariance_type not in _PRECISION_SHAPES:
        raise ModelFileError(f"bad estimator parameters in the header: covariance_type = "
                             f"{_short(covariance_type)}")
    kind = _estimator_kind(header)
    array_params = BAYESIAN_ARRAY_PARAMS if kind == BAYESIAN else ARRAY_PARAMS
    for name, value in params.items():
        if isinstance(value, dict) and "$array" in value:
            if value["$array"] != "param_" + name or name not in array_params:
                raise ModelFileError(f"parameter {name!r} refers to a missing array "
                                     f"{_short(value['$array'])}")
            if name == "covariance_prior" and covariance_type == "spherical":
                raise ModelFileError("parameter 'covariance_prior' of a spherical model is "
                                     "a number, not an array")
        elif isinstance(value, dict) and "$random_state" in value and name == "random_state":
            _check_random_state(value["$random_state"])
        elif isinstance(value, dict):
            raise ModelFileError(f"parameter {name!r} has an unknown value {_short(value)}")

    if kind == BAYESIAN:
        _check_bayesian_header(header)

    if _standardized(header):
        standardize = header.get("standardize")
        if not isinstance(standardize, dict):
            raise ModelFileError(f"the header (format version {header['format_version']}) "
                                 "has no 'standardize' object")
        for flag in ("with_mean", "with_std", "copy"):
            if not isinstance(standardize.get(flag), bool):
                raise ModelFileError(f"header field 'standardize': {flag} must be true or "
                                     f"false, got {_short(standardize.get(flag))}")
        names = standardize.get("feature_names_in_")
        if names is not None and (not isinstance(names, list)
                                  or len(names) != header["n_features_in_"]
                                  or not all(isinstance(v, str) for v in names)):
            raise ModelFileError(f"header field 'standardize': feature_names_in_ must be "
                                 f"{header['n_features_in_']} strings")


def _estimator_kind(header):
    """The estimator a (checked) header describes: versions 1 and 2 hold a
    GaussianMixture, version 3 names it."""
    if header["format_version"] != FORMAT_VERSION_KIND:
        return GAUSSIAN
    if "estimator" not in header:
        raise ModelFileError(f"the header (format version {FORMAT_VERSION_KIND}) has no "
                             "'estimator'")
    kind = header["estimator"]
    if not isinstance(kind, str) or kind not in ESTIMATORS:
        raise ModelFileError(f"header field 'estimator' is {_short(kind)}, not one of "
                             f"{', '.join(ESTIMATORS)}")
    return kind


def _standardized(header):
    """Whether the file holds a StandardScaler's shift and scale."""
    version = header["format_version"]
    return version == FORMAT_VERSION_STANDARDIZED or (version == FORMAT_VERSION_KIND
                                                      and "standardize" in header)


def _scalar(header, name, low, inclusive=False):
    """A number of the header, finite and above `low` (or at it, when
    `inclusive`), as the value it was: an int, a float, or a numpy float32
    or float64 scalar."""
    if name not in header:
        raise ModelFileError(f"the header has no {name!r}")
    value = header[name]
    if isinstance(value, dict):
        if (set(value) != {"$scalar", "value"} or value["$scalar"] not in _SCALAR_DTYPES
                or not _is_number(value["value"])):
            raise ModelFileError(f"header field {name!r} is not a number: {_short(value)}")
        number = float(value["value"])
        if value["$scalar"] == "float32" and abs(number) > float(np.finfo(np.float32).max):
            raise ModelFileError(f"{name} = {_short(value)} is not a finite float32")
        result = np.dtype(value["$scalar"]).type(number)
        number = float(result)          # as the model will see it (a float32 may be 0)
    elif _is_number(value):
        number = result = value
    else:
        raise ModelFileError(f"header field {name!r} is not a number: {_short(value)}")
    if not math.isfinite(number) or not (number > low or (inclusive and number >= low)):
        raise ModelFileError(f"{name} = {_short(value)} must be a finite number "
                             f"{'>=' if inclusive else '>'} {low}")
    return result


def _bayesian_scalars(header):
    """The header's priors (and tied's degrees of freedom, spherical's
    covariance prior), checked, by attribute name."""
    n_features = header["n_features_in_"]
    lows = {"weight_concentration_prior_": (0, False), "mean_precision_prior_": (0, False),
            "degrees_of_freedom_prior_": (n_features - 1, False),
            "degrees_of_freedom_": (n_features - 1, False),
            "covariance_prior_": (0, True)}
    names = list(BAYESIAN_SCALARS)
    own = _SCALAR_OF_TYPE.get(header["params"]["covariance_type"])
    if own is not None:
        names.append(own)
    return {name: _scalar(header, name, *lows[name]) for name in names}


def _check_bayesian_header(header):
    """What a BayesianGaussianMixture's header adds, before any array is
    read: the weight prior's type (it shapes weight_concentration_), the
    prior numbers, the stream state."""
    prior_type = header["params"].get("weight_concentration_prior_type")
    if not isinstance(prior_type, str) or prior_type not in ("dirichlet_process",
                                                             "dirichlet_distribution"):
        raise ModelFileError(f"bad estimator parameters in the header: "
                             f"weight_concentration_prior_type = {_short(prior_type)}")
    _bayesian_scalars(header)
    if "svi_state" in header:
        state = header["svi_state"]
        if not isinstance(state, dict) or set(state) != {"rows", "updates"}:
            raise ModelFileError(f"header field 'svi_state' must be an object of 'rows' and "
                                 f"'updates', got {_short(state)}")
        rows, updates = state["rows"], state["updates"]
        if not _is_number(rows) or not math.isfinite(rows) or not rows > 0:
            raise ModelFileError(f"svi_state: rows = {_short(rows)} must be a positive, "
                                 "finite number")
        if not _is_int(updates) or not 0 <= updates <= _MAX_COUNT:
            raise ModelFileError(f"svi_state: updates = {_short(updates)} must be a count")


def _bayesian_shapes(header):
    """Shapes of a BayesianGaussianMixture's own arrays (the header checked)."""
    params = header["params"]
    n_components, n_features = params["n_components"], header["n_features_in_"]
    covariance_type = params["covariance_type"]
    K, D = n_components, n_features
    shapes = {"weight_concentration_": ((2, K) if params["weight_concentration_prior_type"]
                                        == "dirichlet_process" else (K,)),
              "mean_precision_": (K,), "mean_prior_": (D,)}
    if covariance_type != "tied":
        shapes["degrees_of_freedom_"] = (K,)
    if covariance_type != "spherical":
        shapes["covariance_prior_"] = (D,) if covariance_type == "diag" else (D, D)
    if "svi_state" in header:
        shapes["svi_nk"] = (K,)
        shapes["svi_first"] = (K, D)
        shapes["svi_second"] = {"full": (K, D, D), "tied": (D, D)}.get(covariance_type,
                                                                          (K, D))
    return shapes


def _check_random_state(state):
    def bad(reason):
        return ModelFileError(f"bad random_state in the model file: {reason}")

    if not isinstance(state, dict):
        raise bad("not an object")
    for field in ("kind", "pos", "has_gauss", "cached_gaussian"):
        if field not in state:
            raise bad(f"no {field!r}")
    if state["kind"] != "MT19937":
        raise bad(f"kind is {_short(state['kind'])}, not 'MT19937'")
    if not _is_int(state["pos"]) or not 0 <= state["pos"] <= 624:
        raise bad(f"pos = {_short(state['pos'])} is not in [0, 624]")
    if not _is_int(state["has_gauss"]) or state["has_gauss"] not in (0, 1):
        raise bad(f"has_gauss = {_short(state['has_gauss'])} is not 0 or 1")
    if not _is_number(state["cached_gaussian"]) or not math.isfinite(state["cached_gaussian"]):
        raise bad(f"cached_gaussian = {_short(state['cached_gaussian'])} is not a finite "
                  "number")


def _expected_members(header):
    """Shapes of the arrays the header says the file has (besides 'header')."""
    params = header["params"]
    n_components, n_features = params["n_components"], header["n_features_in_"]
    precision_shape = _PRECISION_SHAPES[params["covariance_type"]](n_components, n_features)
    shapes = {"weights_": (n_components,), "means_": (n_components, n_features),
              "covariances_": precision_shape, "precisions_cholesky_": precision_shape,
              "precisions_": precision_shape}
    if _estimator_kind(header) == BAYESIAN:
        param_shapes = {"mean_prior": (n_features,)}
        if params["covariance_type"] != "spherical":
            param_shapes["covariance_prior"] = _bayesian_shapes(header)["covariance_prior_"]
        shapes.update(_bayesian_shapes(header))
    else:
        param_shapes = {"weights_init": (n_components,),
                        "means_init": (n_components, n_features),
                        "precisions_init": precision_shape}
    for name, value in params.items():
        if isinstance(value, dict) and "$array" in value:
            shapes["param_" + name] = param_shapes[name]
        elif isinstance(value, dict) and "$random_state" in value:
            shapes[_RANDOM_STATE_KEY] = (624,)
    if _standardized(header):
        for name in STANDARDIZE_ARRAYS:
            shapes[name] = (n_features,)
    if isinstance(header["lower_bounds_"], dict):
        shapes[LOWER_BOUNDS_ARRAY] = (header["lower_bounds_"]["length"],)
    return shapes


def _member_bounds(header, infos):
    """The most bytes each expected member may declare: its shape from the
    header, at the widest item a model file has, plus a .npy header. Refuses
    missing and unexpected members before any of them is read."""
    shapes = _expected_members(header)
    present = set(infos) - {"header"}
    missing = [name for name in shapes if name not in present]
    for name in missing:
        if name.startswith("param_"):
            param = name[len("param_"):]
            if param == "random_state_key":
                raise ModelFileError(f"bad random_state in the model file: no {name!r} array")
            raise ModelFileError(f"parameter {param!r} refers to a missing array {name!r}")
    if missing:
        raise ModelFileError(f"missing array(s) {missing}")
    extra = sorted(present - set(shapes))
    if extra:
        raise ModelFileError(f"unexpected array(s) {extra}")
    return {name: _MAX_NPY_HEADER + _MAX_ITEMSIZE * math.prod(shape)
            for name, shape in shapes.items()}


def _build_model(header, members):
    gmm = _build_estimator(header, members)
    if not _standardized(header):
        return gmm
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    standardize = header["standardize"]
    shift, scale = members["standardize_shift"], members["standardize_scale"]
    n_features = gmm.n_features_in_
    for name, array in (("standardize_shift", shift), ("standardize_scale", scale)):
        if array.dtype != np.float64:
            raise ModelFileError(f"{name} has dtype {array.dtype}, expected float64")
        if array.shape != (n_features,):
            raise ModelFileError(f"{name} has shape {array.shape}, expected ({n_features},)")
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{name} contains NaN or infinite values")
    if np.any(scale <= 0):
        raise ModelFileError(f"standardize_scale must be positive (min {float(scale.min())!r})")
    if not standardize["with_mean"] and np.any(shift != 0):
        raise ModelFileError("standardize_shift must be zeros when with_mean is false")
    if not standardize["with_std"] and np.any(scale != 1):
        raise ModelFileError("standardize_scale must be ones when with_std is false")
    scaler = StandardScaler(with_mean=standardize["with_mean"],
                            with_std=standardize["with_std"], copy=standardize["copy"])
    scaler.mean_ = shift if standardize["with_mean"] else None
    scaler.scale_ = scale if standardize["with_std"] else None
    scaler.n_features_in_ = n_features
    if "feature_names_in_" in standardize:
        scaler.feature_names_in_ = np.asarray(standardize["feature_names_in_"], dtype=object)
    return make_pipeline(scaler, gmm)


def _build_estimator(header, members):
    kind = _estimator_kind(header)
    shapes = _expected_members(header) if kind == BAYESIAN else None
    params = {name: _decode_param(name, value, members, shapes)
              for name, value in header["params"].items()}
    try:
        GaussianMixture, BayesianGaussianMixture = _mixture_classes()
        gmm = (BayesianGaussianMixture if kind == BAYESIAN else GaussianMixture)(**params)
        gmm._validate_params()
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"bad estimator parameters in the header: {error}") from None

    fitted = {name: members[name] for name in FITTED_ARRAYS}
    _check_fitted_arrays(fitted, gmm.covariance_type, gmm.n_components,
                         header["n_features_in_"])

    for name, array in fitted.items():
        setattr(gmm, name, array)
    gmm._fitted_covariance_type = gmm.covariance_type     # the arrays' type (checked above)
    gmm.n_features_in_ = header["n_features_in_"]
    if "feature_names_in_" in header:
        names = header["feature_names_in_"]
        if (not isinstance(names, list) or len(names) != gmm.n_features_in_
                or not all(isinstance(v, str) for v in names)):
            raise ModelFileError(
                f"feature_names_in_ must be {gmm.n_features_in_} strings, got {_short(names)}"
            )
        gmm.feature_names_in_ = np.asarray(names, dtype=object)
    gmm.converged_ = header["converged_"]
    gmm.n_iter_ = header["n_iter_"]
    gmm.lower_bound_ = float(header["lower_bound_"])
    if isinstance(header["lower_bounds_"], dict):
        bounds = members[LOWER_BOUNDS_ARRAY]
        length = header["lower_bounds_"]["length"]
        if bounds.dtype != np.float64 or bounds.shape != (length,):
            raise ModelFileError(f"{LOWER_BOUNDS_ARRAY} has dtype {bounds.dtype} and shape "
                                 f"{bounds.shape}, expected float64 ({length},)")
        if np.any(np.isnan(bounds)) or np.any(bounds == np.inf):
            raise ModelFileError(f"{LOWER_BOUNDS_ARRAY} holds NaN or +inf: not lower bounds")
        gmm.lower_bounds_ = bounds.tolist()
    else:
        gmm.lower_bounds_ = [float(v) for v in header["lower_bounds_"]]
    if "online_updates" in header:
        gmm._online_updates = header["online_updates"]
    if kind == BAYESIAN:
        _set_bayesian(gmm, header, members, shapes)
    return gmm


def _set_bayesian(model, header, members, shapes):
    """Check a BayesianGaussianMixture's own arrays and set them, with the
    header's numbers and stream state, on `model` (its fitted arrays set)."""
    n_features = header["n_features_in_"]
    covariance_type = model.covariance_type
    arrays = {}
    for name in (*BAYESIAN_ARRAYS, *SVI_ARRAYS):
        if name not in shapes:
            continue
        array = members[name]
        allowed = (np.float64,) if name in _FLOAT64_ONLY else (np.float32, np.float64)
        if array.dtype not in allowed:
            raise ModelFileError(f"{name} has dtype {array.dtype}, expected "
                                 f"{' or '.join(np.dtype(t).name for t in allowed)}")
        if array.shape != shapes[name]:
            raise ModelFileError(f"{name} has shape {array.shape}, expected {shapes[name]} "
                                 f"for {model.n_components} {covariance_type!r} components in "
                                 f"{n_features} dimensions")
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{name} contains NaN or infinite values")
        arrays[name] = array
    for name in ("weight_concentration_", "mean_precision_"):
        # a fit's are at least the prior plus 10 eps rows; a subnormal one
        # (5e-324) overflowed predict's divisions to NaN (an outside audit)
        if np.any(arrays[name] < np.finfo(np.float64).tiny):
            raise ModelFileError(f"{name} must be positive and above "
                                 f"{np.finfo(np.float64).tiny:.3g} (min "
                                 f"{float(arrays[name].min())!r})")
    if "degrees_of_freedom_" in arrays and np.any(arrays["degrees_of_freedom_"]
                                                  <= n_features - 1):
        raise ModelFileError(f"degrees_of_freedom_ must be above n_features - 1 = "
                             f"{n_features - 1} (min "
                             f"{float(arrays['degrees_of_freedom_'].min())!r})")
    if "covariance_prior_" in arrays:
        _check_covariance_prior(arrays["covariance_prior_"], covariance_type)
    if "svi_nk" in arrays and np.any(arrays["svi_nk"] < 0):
        raise ModelFileError("svi_nk must be non-negative")

    scalars = _bayesian_scalars(header)
    concentration = arrays["weight_concentration_"]
    if model.weight_concentration_prior_type == "dirichlet_process":
        concentration = (concentration[0].copy(), concentration[1].copy())
    weights = np.asarray(model.weights_, dtype=np.float64)
    expected = np.asarray(model._weights_from(concentration), dtype=np.float64)
    rtol = 1e-9 if model.weights_.dtype == np.float64 else 1e-5
    if not np.allclose(weights, expected, rtol=rtol, atol=1e-30):
        raise ModelFileError("weights_ does not match weight_concentration_ (the weights "
                             "are the posterior's expected weights)")

    model.weight_concentration_prior_ = scalars["weight_concentration_prior_"]
    model.mean_precision_prior_ = scalars["mean_precision_prior_"]
    model.degrees_of_freedom_prior_ = scalars["degrees_of_freedom_prior_"]
    model.mean_prior_ = arrays["mean_prior_"]
    model.covariance_prior_ = (scalars["covariance_prior_"] if covariance_type == "spherical"
                               else arrays["covariance_prior_"])
    model.weight_concentration_ = concentration
    model.mean_precision_ = arrays["mean_precision_"]
    model.degrees_of_freedom_ = (scalars["degrees_of_freedom_"] if covariance_type == "tied"
                                 else arrays["degrees_of_freedom_"])
    if "svi_state" in header:
        state = header["svi_state"]
        model._svi_state = {"rows": float(state["rows"]),
                            "moments": tuple(arrays[name] for name in SVI_ARRAYS),
                            "updates": state["updates"]}


def _check_covariance_prior(prior, covariance_type):
    """Non-negative variances (diag), a symmetric positive semi-definite
    matrix (full, tied): as a data covariance or a user's prior is."""
    if covariance_type == "diag":
        if np.any(prior < 0):
            raise ModelFileError("covariance_prior_ has a negative variance")
        return
    prior = np.asarray(prior, dtype=np.float64)
    scale = max(float(np.max(np.abs(prior))), np.finfo(np.float64).tiny)
    tol = 1e-6 if prior.dtype == np.float64 else 1e-4
    if not np.allclose(prior, prior.T, rtol=tol, atol=tol * scale):
        raise ModelFileError("covariance_prior_ is not symmetric")
    eigenvalues = np.linalg.eigvalsh(prior)
    if eigenvalues.min() < -tol * scale:
        raise ModelFileError(f"covariance_prior_ is not positive semi-definite (eigenvalue "
                             f"{float(eigenvalues.min())!r})")


def _decode_param(name, value, members, shapes=None):
    if isinstance(value, dict) and "$array" in value:
        array = members["param_" + name]
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise ModelFileError(f"parameter {name!r} must be finite floats")
        if shapes is not None and array.shape != shapes["param_" + name]:
            raise ModelFileError(f"parameter {name!r} has shape {array.shape}, expected "
                                 f"{shapes['param_' + name]}")
        return array
    if isinstance(value, dict) and "$random_state" in value:
        key = members[_RANDOM_STATE_KEY]
        state = value["$random_state"]
        if key.dtype != np.uint32 or key.shape != (624,):
            raise ModelFileError("bad random_state in the model file: the key must be 624 "
                                 "uint32")
        random_state = np.random.RandomState()
        random_state.set_state((state["kind"], key, state["pos"], state["has_gauss"],
                                float(state["cached_gaussian"])))
        return random_state
    return value


def _check_fitted_arrays(fitted, covariance_type, n_components, n_features_in):
    """Shapes (those the header's n_components, covariance_type and
    n_features_in_ give), dtypes and the model's own consistency."""
    weights, means = fitted["weights_"], fitted["means_"]
    dtype = means.dtype
    if dtype not in (np.float32, np.float64):
        raise ModelFileError(f"means_ has dtype {dtype}; a model is float32 or float64")
    for name, array in fitted.items():
        if array.dtype != dtype:
            raise ModelFileError(f"{name} has dtype {array.dtype}, means_ has {dtype}: "
                                 "a model's arrays share one dtype")
    if means.ndim == 2 and means.shape[1] != n_features_in:
        raise ModelFileError(f"means_ has {means.shape[1]} features but n_features_in_ is "
                             f"{n_features_in}")
    n_features = n_features_in
    precision_shape = _PRECISION_SHAPES[covariance_type](n_components, n_features)
    expected = {"weights_": (n_components,), "means_": (n_components, n_features),
                "covariances_": precision_shape, "precisions_cholesky_": precision_shape,
                "precisions_": precision_shape}
    for name, shape in expected.items():
        if fitted[name].shape != shape:
            raise ModelFileError(
                f"{name} has shape {fitted[name].shape}, expected {shape} for "
                f"{n_components} {covariance_type!r} components in {n_features} dimensions "
                f"(n_components = {n_components} in the header)"
            )
    for name, array in fitted.items():
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{name} contains NaN or infinite values")
    # No fit makes means whose squares overflow (it refuses such data), and
    # the far-row comparisons of predict need those squares: a file with
    # means of 1e200 loaded and predicted NaN (an outside audit).
    limit = math.sqrt(float(np.finfo(dtype).max))
    largest = float(np.max(np.abs(fitted["means_"]), initial=0.0))
    if largest >= limit:
        raise ModelFileError(f"means_ reach {largest:.3g}, past what {np.dtype(dtype).name} "
                             f"can square ({limit:.3g}): no fit makes such a model")

    total = float(np.sum(weights, dtype=np.float64))
    atol = 1e-6 if dtype == np.float32 else 1e-10
    if np.any(weights < 0) or abs(total - 1.0) > atol * max(1, n_components):
        raise ModelFileError(
            f"weights_ must be non-negative and sum to one (sum {total!r}, "
            f"min {float(weights.min())!r})"
        )

    covariances = np.asarray(fitted["covariances_"], dtype=np.float64)
    chol = np.asarray(fitted["precisions_cholesky_"], dtype=np.float64)
    precisions = np.asarray(fitted["precisions_"], dtype=np.float64)
    # Tolerances: the arrays were computed in float64 and rounded to the
    # model's dtype; the checks are about consistency, not rounding.
    tol = 1e-6 if dtype == np.float64 else 1e-2
    if covariance_type in ("full", "tied"):
        cov_stack = covariances if covariance_type == "full" else covariances[None]
        chol_stack = chol if covariance_type == "full" else chol[None]
        prec_stack = precisions if covariance_type == "full" else precisions[None]
        for k, (cov, factor, prec) in enumerate(zip(cov_stack, chol_stack, prec_stack)):
            where = f" (component {k})" if covariance_type == "full" else ""
            scale = np.max(np.abs(cov))
            if not np.allclose(cov, cov.T, rtol=tol, atol=tol * scale):
                raise ModelFileError(f"covariances_ is not symmetric{where}")
            try:
                cov_chol = linalg.cholesky(cov, lower=True)
            except linalg.LinAlgError:
                raise ModelFileError(
                    f"covariances_ is not positive definite{where}"
                ) from None
            if np.any(np.tril(factor, -1) != 0) or np.any(np.diag(factor) <= 0):
                raise ModelFileError(
                    f"precisions_cholesky_ is not upper triangular with a positive "
                    f"diagonal{where}"
                )
            # U = L^-T for covariance = L L^T: L^T U is the identity.
            if np.max(np.abs(cov_chol.T @ factor - np.eye(n_features))) > tol:
                raise ModelFileError(
                    f"precisions_cholesky_ does not match covariances_{where}"
                )
            expected_prec = factor @ factor.T
            if not np.allclose(prec, expected_prec, rtol=tol,
                               atol=tol * np.max(np.abs(expected_prec))):
                raise ModelFileError(
                    f"precisions_ does not match precisions_cholesky_{where}"
                )
    else:
        if np.any(covariances <= 0):
            raise ModelFileError("covariances_ is not positive definite "
                                 "(a variance is not positive)")
        if np.any(chol <= 0) or np.max(np.abs(chol**2 * covariances - 1.0)) > tol:
            raise ModelFileError("precisions_cholesky_ does not match covariances_")
        if not np.allclose(precisions, chol**2, rtol=tol, atol=0):
            raise ModelFileError("precisions_ does not match precisions_cholesky_")
