"""A model file that is safe to load: .npz arrays plus a JSON header, no pickles.

Layout of a fastgmm model file (format version 1), an uncompressed .npz
archive written by numpy:

``header``
    uint8, the UTF-8 text of a JSON object: ``format`` ("fastgmm-model"),
    ``format_version`` (1), ``fastgmm_version``, ``params`` (get_params(),
    arrays and RandomState instances replaced by references to the arrays
    below), ``n_features_in_``, ``feature_names_in_`` (a list of str, when
    the model has them), ``converged_``, ``n_iter_``, ``lower_bound_``,
    ``lower_bounds_`` and ``online_updates`` (partial_fit's update count).
``weights_``, ``means_``, ``covariances_``, ``precisions_cholesky_``, ``precisions_``
    The fitted arrays, stored as they are (float32 or float64): loading
    recomputes nothing, so a loaded model is bitwise the saved one.
``param_weights_init``, ``param_means_init``, ``param_precisions_init``, ``param_random_state_key``
    Only when those parameters are arrays (or a RandomState).

Loading reads every member with ``allow_pickle=False`` after checking its
.npy header (plain numeric dtype, size matching the bytes present), and
checks the model itself: shapes, dtypes, finite values, weights summing to
one, positive definite covariances, precision factors consistent with them.
Any failure raises :class:`ModelFileError` (a ValueError) saying what is
wrong.
"""

import io
import json
import os
import zipfile

import numpy as np
from scipy import linalg
from sklearn.utils.validation import check_is_fitted

from fastgmm._files import atomic_write
from fastgmm._gaussian_mixture import _PRECISION_SHAPES, GaussianMixture
from fastgmm._version import __version__

FORMAT_NAME = "fastgmm-model"
FORMAT_VERSION = 1

FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
ARRAY_PARAMS = ("weights_init", "means_init", "precisions_init")
_ZIP_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A file that :func:`fastgmm.load` refuses: not a fastgmm model, of an
    unknown format version, truncated, or with inconsistent contents."""


# ---------------------------------------------------------------------- save


def save_model(gmm: GaussianMixture, path) -> None:
    """Write a fitted GaussianMixture to `path` (see the module docstring)."""
    check_is_fitted(gmm)
    arrays = {name: np.asarray(getattr(gmm, name)) for name in FITTED_ARRAYS}
    params = {}
    for name, value in gmm.get_params(deep=False).items():
        params[name] = _encode_param(name, value, arrays)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastgmm_version": __version__,
        "params": params,
        "n_features_in_": int(gmm.n_features_in_),
        "converged_": bool(gmm.converged_),
        "n_iter_": int(gmm.n_iter_),
        "lower_bound_": float(gmm.lower_bound_),
        "lower_bounds_": [float(v) for v in gmm.lower_bounds_],
    }
    if hasattr(gmm, "feature_names_in_"):
        header["feature_names_in_"] = [str(v) for v in gmm.feature_names_in_]
    if hasattr(gmm, "_online_updates"):
        header["online_updates"] = int(gmm._online_updates)
    text = json.dumps(header, allow_nan=True, sort_keys=True)
    arrays["header"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_npz(path, arrays)


def _encode_param(name, value, arrays):
    """JSON for one constructor parameter; arrays go to `arrays`."""
    if isinstance(value, np.random.RandomState):
        kind, key, pos, has_gauss, cached_gaussian = value.get_state(legacy=True)
        arrays["param_random_state_key"] = np.asarray(key, dtype=np.uint32)
        return {"$random_state": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                                  "cached_gaussian": float(cached_gaussian)}}
    if name in ARRAY_PARAMS and value is not None:
        arrays["param_" + name] = np.asarray(value, dtype=np.result_type(np.asarray(value),
                                                                          np.float32))
        return {"$array": "param_" + name}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_npz(path, arrays):
    """np.savez to a file object (so the name is kept as given, with no
    '.npz' appended); to a path through _files.atomic_write (temporary file
    in the same folder, fsync, rename): a failed save leaves no truncated
    model behind, and the file gets the mode open() would give it (0666 less
    the umask, or the replaced file's), not mkstemp's 0600."""
    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return
    with atomic_write(path, binary=True) as f:
        np.savez(f, **arrays)


# ---------------------------------------------------------------------- load


def load(path) -> GaussianMixture:
    """Load a GaussianMixture saved with :meth:`GaussianMixture.save`.

    The file is read as data only (no pickles, no code runs) and checked
    before an estimator is built from it.

    Parameters
    ----------
    path : str, path-like or binary file object

    Returns
    -------
    GaussianMixture
        Fitted, with attributes bitwise equal to the saved model's.

    Raises
    ------
    ModelFileError
        (a ValueError) if the file is not a fastgmm model, has an unknown
        format version, is truncated or corrupt, or its arrays are missing,
        misshapen, not finite or inconsistent.
    FileNotFoundError
        If there is no such file.
    """
    if hasattr(path, "read"):
        name = getattr(path, "name", "<file object>")
        data = path.read()
    else:
        name = os.fspath(path)
        with open(path, "rb") as f:
            data = f.read()
    try:
        return _load_bytes(data)
    except ModelFileError as error:
        raise ModelFileError(f"{name}: {error}") from None


def _load_bytes(data):
    if not data.startswith(_ZIP_MAGIC):
        raise ModelFileError("not a fastgmm model file (not an .npz archive)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ModelFileError(
            f"truncated or corrupt model file (not a complete .npz archive: {error})"
        ) from None
    with archive:
        members = _read_members(archive)
    if "header" not in members:
        raise ModelFileError("not a fastgmm model file (no 'header' array)")
    header = _parse_header(members.pop("header"))
    return _build_estimator(header, members)


def _read_members(archive):
    """Every member as an array, through np.load(allow_pickle=False), after
    checking its .npy header against the bytes that are really there."""
    members = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ModelFileError(f"not a fastgmm model file (unexpected member "
                                 f"{info.filename!r})")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(f"member {info.filename!r} is compressed; fastgmm writes "
                                 "uncompressed archives")
        key = info.filename[: -len(".npy")]
        try:
            raw = archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise ModelFileError(f"truncated or corrupt model file (member {key!r}: "
                                 f"{error})") from None
        stream = io.BytesIO(raw)
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as error:
            raise ModelFileError(f"array {key!r} has a bad .npy header ({error})") from None
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise ModelFileError(f"array {key!r} has dtype {dtype}, not a plain numeric type")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(raw) - stream.tell() != expected:
            raise ModelFileError(
                f"truncated or corrupt model file (array {key!r} of shape {shape} needs "
                f"{expected} bytes, {len(raw) - stream.tell()} are there)"
            )
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as error:
            raise ModelFileError(f"array {key!r} cannot be read ({error})") from None
        if array.dtype.byteorder not in ("=", "|"):
            array = array.astype(array.dtype.newbyteorder("="))
        members[key] = array
    return members


def _parse_header(header_array):
    if header_array.dtype != np.uint8 or header_array.ndim != 1:
        raise ModelFileError("not a fastgmm model file ('header' is not JSON text)")
    try:
        header = json.loads(header_array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ModelFileError("not a fastgmm model file ('header' is not JSON text)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"not a fastgmm model file (header format is not {FORMAT_NAME!r})"
        )
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"unknown model file format version {version!r} (written by fastgmm "
            f"{header.get('fastgmm_version', '?')}); this fastgmm {__version__} reads "
            f"version {FORMAT_VERSION}. Load it with a matching fastgmm version."
        )
    return header


_HEADER_FIELDS = {
    "params": dict,
    "n_features_in_": int,
    "converged_": bool,
    "n_iter_": int,
    "lower_bound_": (int, float),
    "lower_bounds_": list,
}


def _build_estimator(header, members):
    for field, kind in _HEADER_FIELDS.items():
        if field not in header:
            raise ModelFileError(f"the header has no {field!r}")
        value = header[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelFileError(f"header field {field!r} has the wrong type "
                                 f"({type(value).__name__})")
    params = {name: _decode_param(name, value, members)
              for name, value in header["params"].items()}
    try:
        gmm = GaussianMixture(**params)
        gmm._validate_params()
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"bad estimator parameters in the header: {error}") from None

    missing = [name for name in FITTED_ARRAYS if name not in members]
    if missing:
        raise ModelFileError(f"missing array(s) {missing}")
    extra = sorted(set(members) - set(FITTED_ARRAYS))
    if extra:
        raise ModelFileError(f"unexpected array(s) {extra}")
    fitted = {name: members[name] for name in FITTED_ARRAYS}
    _check_fitted_arrays(fitted, gmm.covariance_type, header["n_features_in_"])

    lower_bounds = header["lower_bounds_"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lower_bounds):
        raise ModelFileError("header field 'lower_bounds_' must be a list of numbers")
    if header["n_iter_"] < 0:
        raise ModelFileError(f"n_iter_ = {header['n_iter_']} is negative")

    for name, array in fitted.items():
        setattr(gmm, name, array)
    gmm.n_features_in_ = header["n_features_in_"]
    if "feature_names_in_" in header:
        names = header["feature_names_in_"]
        if (not isinstance(names, list) or len(names) != gmm.n_features_in_
                or not all(isinstance(v, str) for v in names)):
            raise ModelFileError(
                f"feature_names_in_ must be {gmm.n_features_in_} strings, got {names!r}"
            )
        gmm.feature_names_in_ = np.asarray(names, dtype=object)
    gmm.converged_ = header["converged_"]
    gmm.n_iter_ = header["n_iter_"]
    gmm.lower_bound_ = float(header["lower_bound_"])
    gmm.lower_bounds_ = [float(v) for v in lower_bounds]
    if "online_updates" in header:
        updates = header["online_updates"]
        if not isinstance(updates, int) or isinstance(updates, bool) or updates < 0:
            raise ModelFileError(f"online_updates must be a count, got {updates!r}")
        gmm._online_updates = updates
    return gmm


def _decode_param(name, value, members):
    if isinstance(value, dict) and "$array" in value:
        key = value["$array"]
        if key != "param_" + name or name not in ARRAY_PARAMS or key not in members:
            raise ModelFileError(f"parameter {name!r} refers to a missing array {key!r}")
        array = members.pop(key)
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise ModelFileError(f"parameter {name!r} must be finite floats")
        return array
    if isinstance(value, dict) and "$random_state" in value and name == "random_state":
        key = members.pop("param_random_state_key", None)
        state = value["$random_state"]
        try:
            if key is None or key.dtype != np.uint32 or key.shape != (624,):
                raise ValueError("the key must be 624 uint32")
            random_state = np.random.RandomState()
            random_state.set_state((state["kind"], key, int(state["pos"]),
                                    int(state["has_gauss"]), float(state["cached_gaussian"])))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"bad random_state in the model file: {error}") from None
        return random_state
    if isinstance(value, dict):
        raise ModelFileError(f"parameter {name!r} has an unknown value {value!r}")
    return value


def _check_fitted_arrays(fitted, covariance_type, n_features_in):
    """Shapes, dtypes and the model's own consistency."""
    weights, means = fitted["weights_"], fitted["means_"]
    dtype = means.dtype
    if dtype not in (np.float32, np.float64):
        raise ModelFileError(f"means_ has dtype {dtype}; a model is float32 or float64")
    for name, array in fitted.items():
        if array.dtype != dtype:
            raise ModelFileError(f"{name} has dtype {array.dtype}, means_ has {dtype}: "
                                 "a model's arrays share one dtype")
    if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
        raise ModelFileError(f"means_ has shape {means.shape}, expected "
                             "(n_components, n_features)")
    n_components, n_features = means.shape
    if n_features != n_features_in:
        raise ModelFileError(f"means_ has {n_features} features but n_features_in_ is "
                             f"{n_features_in}")
    precision_shape = _PRECISION_SHAPES[covariance_type](n_components, n_features)
    expected = {"weights_": (n_components,), "means_": means.shape,
                "covariances_": precision_shape, "precisions_cholesky_": precision_shape,
                "precisions_": precision_shape}
    for name, shape in expected.items():
        if fitted[name].shape != shape:
            raise ModelFileError(
                f"{name} has shape {fitted[name].shape}, expected {shape} for "
                f"{n_components} {covariance_type!r} components in {n_features} dimensions"
            )
    for name, array in fitted.items():
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{name} contains NaN or infinite values")

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
