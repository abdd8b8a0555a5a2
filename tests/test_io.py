"""GaussianMixture.save / fastgmm.load: exact round trip, and every refusal."""

import base64
import io
import json
import os
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import fastgmm
from fastgmm import BayesianGaussianMixture, GaussianMixture, ModelFileError, load
from conftest import make_mixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def _fitted(covariance_type="full", dtype=np.float64, **params):
    X, _ = make_mixture(n_samples=400, n_features=3, n_components=3, dtype=dtype, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                              **params).fit(X)
    return gmm, X


def _assert_identical(loaded, gmm):
    for name in FITTED:
        a, b = getattr(loaded, name), getattr(gmm, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name
    assert loaded.converged_ == gmm.converged_
    assert loaded.n_iter_ == gmm.n_iter_
    assert loaded.lower_bound_ == gmm.lower_bound_
    assert loaded.lower_bounds_ == gmm.lower_bounds_
    assert loaded.n_features_in_ == gmm.n_features_in_
    assert hasattr(loaded, "feature_names_in_") == hasattr(gmm, "feature_names_in_")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path, covariance_type, dtype):
    gmm, X = _fitted(covariance_type, dtype)
    path = tmp_path / "model.npz"
    gmm.save(path)
    loaded = load(path)
    assert type(loaded) is GaussianMixture
    _assert_identical(loaded, gmm)
    assert loaded.get_params() == gmm.get_params()
    np.testing.assert_array_equal(loaded.predict(X), gmm.predict(X))
    assert loaded.predict_proba(X).tobytes() == gmm.predict_proba(X).tobytes()
    assert loaded.score_samples(X).tobytes() == gmm.score_samples(X).tobytes()
    assert loaded.bic(X) == gmm.bic(X)
    # The same draws from sample (same random_state).
    np.testing.assert_array_equal(loaded.sample(5)[0], gmm.sample(5)[0])


def test_name_kept_and_file_objects(tmp_path):
    gmm, X = _fitted("diag")
    path = tmp_path / "model.gmm"           # numpy's savez would append '.npz'
    gmm.save(str(path))
    assert path.exists() and not (tmp_path / "model.gmm.npz").exists()
    assert list(tmp_path.iterdir()) == [path]   # no temporary file left
    buffer = io.BytesIO()
    gmm.save(buffer)
    buffer.seek(0)
    _assert_identical(load(buffer), gmm)
    with open(path, "rb") as f:
        _assert_identical(load(f), gmm)


def test_params_arrays_random_state_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, _ = make_mixture(n_samples=300, n_features=2, n_components=2, seed=4)
    frame = pd.DataFrame(X, columns=["height", "weight"])
    rng = np.random.RandomState(12)
    rng.normal(size=3)  # a state part-way through, with a cached gaussian maybe
    gmm = GaussianMixture(2, weights_init=[0.5, 0.5], means_init=X[:2],
                          precisions_init=np.stack([np.eye(2)] * 2), random_state=rng,
                          tol=1e-5, max_iter=300, reg_covar=1e-4, init_params="random")
    gmm.fit(frame)
    path = tmp_path / "m.npz"
    gmm.save(path)
    loaded = load(path)
    _assert_identical(loaded, gmm)
    assert list(loaded.feature_names_in_) == ["height", "weight"]
    assert loaded.feature_names_in_.dtype == object
    params, loaded_params = gmm.get_params(), loaded.get_params()
    for name in ("weights_init", "means_init", "precisions_init"):
        np.testing.assert_array_equal(loaded_params[name], params[name])
    for name in ("tol", "max_iter", "reg_covar", "init_params", "n_components"):
        assert loaded_params[name] == params[name]
    state, loaded_state = params["random_state"].get_state(), loaded_params["random_state"].get_state()
    assert state[0] == loaded_state[0] and np.array_equal(state[1], loaded_state[1])
    assert state[2:] == loaded_state[2:]
    np.testing.assert_array_equal(loaded.predict(frame), gmm.predict(frame))


def test_partial_fit_continues_identically(tmp_path):
    X, _ = make_mixture(n_samples=600, n_features=2, n_components=2, seed=5)
    gmm = GaussianMixture(2, covariance_type="diag", random_state=0)
    gmm.partial_fit(X[:200]).partial_fit(X[200:400])
    gmm.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    gmm.partial_fit(X[400:])
    loaded.partial_fit(X[400:])
    _assert_identical(loaded, gmm)


def test_warm_start_continues_identically(tmp_path):
    gmm, X = _fitted("full", max_iter=3, warm_start=True, tol=0.0)
    gmm.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(X)
        loaded.fit(X)
    _assert_identical(loaded, gmm)


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        GaussianMixture(2).save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_max_iter_zero_model(tmp_path):
    gmm, X = _fitted("spherical", max_iter=0)
    gmm.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.lower_bound_ == -np.inf and loaded.lower_bounds_ == []
    _assert_identical(loaded, gmm)


def test_exported():
    assert fastgmm.load is load and issubclass(ModelFileError, ValueError)
    assert {"load", "save", "ModelFileError"} <= set(fastgmm.__all__)


# ------------------------------------------------------------ crafted files


def _members(gmm):
    """The arrays and header a saved model has, to be altered and rewritten."""
    buffer = io.BytesIO()
    gmm.save(buffer)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


def _write(path, header, arrays, header_array=None):
    if header_array is None:
        header_array = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, header=header_array, **arrays)
    return path


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        load(path)
    assert str(path) in str(info.value)
    return info


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


@pytest.mark.parametrize("content", [b"", b"n_components,3\n", b"\x93NUMPY\x01\x00garbage",
                                     b"\x80\x04\x95 pickle"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    _refused(path, r"not a fastgmm model file \(not an \.npz archive\)")


def test_pickle_npy_is_refused_without_running_it(tmp_path):
    # A .npy of an object array (a pickle inside) posing as a model.
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.savez(f, header=np.array([{"format": "fastgmm-model"}], dtype=object))
    _refused(path, "not a plain numeric type")


def test_zip_that_is_not_ours(tmp_path):
    path = tmp_path / "other.npz"
    with open(path, "wb") as f:
        np.savez(f, x=np.arange(3.0))
    _refused(path, r"not a fastgmm model file \(no 'header' array\)")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    _refused(path, "unexpected member 'readme.txt'")


def test_header_not_ours(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    _write(path, header, arrays, header_array=np.frombuffer(b"\xff\xfe{", dtype=np.uint8))
    _refused(path, "'header' is not JSON text")
    _write(path, header, arrays, header_array=np.arange(4, dtype=np.int64))
    _refused(path, "'header' is not JSON text")
    _write(path, dict(header, format="other-model"), arrays)
    _refused(path, "header format is not 'fastgmm-model'")
    _write(path, [1, 2], arrays)
    _refused(path, "header format is not")


@pytest.mark.parametrize("version", [4, 0, "1", None, 1.0, True, 3.0])
def test_unknown_format_version(tmp_path, version):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    header["format_version"] = version
    if version is None:
        del header["format_version"]
    path = _write(tmp_path / "m.npz", header, arrays)
    _refused(path, "unknown model file format version")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_truncated(tmp_path, keep):
    gmm, _ = _fitted("full")
    path = tmp_path / "m.npz"
    gmm.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    _refused(path, "truncated or corrupt")


def test_corrupt_member(tmp_path):
    gmm, _ = _fitted("full")
    path = tmp_path / "m.npz"
    gmm.save(path)
    data = bytearray(path.read_bytes())
    offset = data.index(b"\x93NUMPY", data.index(b"means_.npy")) + 200
    data[offset] ^= 0xFF                     # a flipped byte: the CRC no longer matches
    path.write_bytes(bytes(data))
    _refused(path, "truncated or corrupt")


def test_compressed_or_lying_members(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    header_array = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez_compressed(f, header=header_array, **arrays)
    _refused(path, "is compressed")
    # A .npy header claiming far more data than the member holds.
    _write(path, header, arrays)
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    lying = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        lying, {"descr": "<f8", "fortran_order": False, "shape": (300000, 3)})
    members["means_.npy"] = lying.getvalue() + arrays["means_"].tobytes()
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    _refused(path, r"array 'means_' of shape \(300000, 3\) needs")


def test_missing_and_extra_arrays(tmp_path):
    gmm, _ = _fitted("tied")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    for name in FITTED:
        _write(path, header, {k: v for k, v in arrays.items() if k != name})
        _refused(path, rf"missing array\(s\) \['{name}'\]")
    _write(path, header, dict(arrays, extra=np.zeros(2)))
    _refused(path, r"unexpected array\(s\) \['extra'\]")


@pytest.mark.parametrize("field", ["params", "n_features_in_", "converged_", "n_iter_",
                                   "lower_bound_", "lower_bounds_"])
def test_missing_or_mistyped_header_fields(tmp_path, field):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    _write(path, {k: v for k, v in header.items() if k != field}, arrays)
    _refused(path, f"the header has no '{field}'")
    _write(path, dict(header, **{field: "x"}), arrays)
    _refused(path, f"header field '{field}' has the wrong type")


@pytest.mark.parametrize("params, match", [
    (dict(covariance_type="banana"), "bad estimator parameters"),
    (dict(n_components=0), "bad estimator parameters"),
    (dict(no_such_param=1), "bad estimator parameters"),
    (dict(means_init={"$array": "param_elsewhere"}), "refers to a missing array"),
    (dict(tol={"$code": "import os"}), "unknown value"),
    (dict(random_state={"$random_state": {"kind": "MT19937"}}), "bad random_state"),
])
def test_bad_params(tmp_path, params, match):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    header["params"].update(params)
    _refused(_write(tmp_path / "m.npz", header, arrays), match)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", FITTED)
def test_wrong_shapes(tmp_path, covariance_type, name):
    gmm, _ = _fitted(covariance_type)
    header, arrays = _members(gmm)
    array = arrays[name]
    arrays[name] = np.concatenate([array, array[:1]]) if array.ndim else array[None]
    # The number of components is the header's n_components: the array with
    # one more row is the one blamed.
    _refused(_write(tmp_path / "m.npz", header, arrays), rf"{name} has shape .* expected")


def test_covariance_type_not_matching_arrays(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    header["params"]["covariance_type"] = "full"
    _refused(_write(tmp_path / "m.npz", header, arrays), r"has shape .* expected .* 'full'")


def test_wrong_feature_count(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    header["n_features_in_"] = 5
    _refused(_write(tmp_path / "m.npz", header, arrays),
             "means_ has 3 features but n_features_in_ is 5")
    header["n_features_in_"] = 3
    header["feature_names_in_"] = ["a", "b"]
    _refused(_write(tmp_path / "m.npz", header, arrays), "feature_names_in_ must be 3 strings")


@pytest.mark.parametrize("name", FITTED)
def test_wrong_dtypes(tmp_path, name):
    gmm, _ = _fitted("full")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    arrays[name] = arrays[name].astype(np.float32)
    _refused(_write(path, header, arrays), "dtype")
    arrays[name] = arrays[name].astype(np.int64)
    _refused(_write(path, header, arrays), "dtype")
    arrays[name] = arrays[name].astype(np.complex128)
    _refused(_write(path, header, arrays), "not a plain numeric type")


def test_structured_dtype(tmp_path):
    gmm, _ = _fitted("full")
    header, arrays = _members(gmm)
    arrays["weights_"] = np.zeros(3, dtype=[("a", "f8")])
    _refused(_write(tmp_path / "m.npz", header, arrays), "not a plain numeric type")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", FITTED)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_not_finite(tmp_path, covariance_type, name, value):
    gmm, _ = _fitted(covariance_type)
    header, arrays = _members(gmm)
    array = arrays[name].copy()
    array.reshape(-1)[-1] = value
    arrays[name] = array
    _refused(_write(tmp_path / "m.npz", header, arrays), f"{name} contains NaN or infinite")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weights_not_summing_to_one(tmp_path, dtype):
    gmm, _ = _fitted("diag", dtype)
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    arrays["weights_"] = (arrays["weights_"] * 1.01).astype(dtype)
    _refused(_write(path, header, arrays), "weights_ must be non-negative and sum to one")
    arrays["weights_"] = np.array([1.2, -0.1, -0.1], dtype=dtype)
    _refused(_write(path, header, arrays), "weights_ must be non-negative and sum to one")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covariance_not_positive_definite(tmp_path, covariance_type):
    gmm, _ = _fitted(covariance_type)
    header, arrays = _members(gmm)
    covariances = arrays["covariances_"].copy()
    if covariance_type == "full":
        covariances[1] = -np.eye(3)
    elif covariance_type == "tied":
        covariances[:] = np.diag([1.0, 1.0, -1.0])
    else:
        covariances.reshape(-1)[0] = -covariances.reshape(-1)[0]
    arrays["covariances_"] = covariances
    _refused(_write(tmp_path / "m.npz", header, arrays), "covariances_ is not positive definite")


def test_covariance_not_symmetric(tmp_path):
    gmm, _ = _fitted("full")
    header, arrays = _members(gmm)
    covariances = arrays["covariances_"].copy()
    covariances[0, 0, 2] += 0.5
    arrays["covariances_"] = covariances
    _refused(_write(tmp_path / "m.npz", header, arrays), r"not symmetric \(component 0\)")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_cholesky_inconsistent(tmp_path, covariance_type):
    gmm, _ = _fitted(covariance_type)
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    chol = arrays["precisions_cholesky_"]
    # A valid factor, of other covariances (scaled by 2).
    arrays["precisions_cholesky_"] = chol / np.sqrt(2.0)
    arrays["precisions_"] = arrays["precisions_"] / 2.0
    _refused(_write(path, header, arrays), "precisions_cholesky_ does not match covariances_")
    if covariance_type in ("full", "tied"):
        header, arrays = _members(gmm)
        lower = np.swapaxes(chol, -1, -2).copy()
        arrays["precisions_cholesky_"] = lower
        _refused(_write(path, header, arrays), "not upper triangular")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_inconsistent(tmp_path, covariance_type):
    gmm, _ = _fitted(covariance_type)
    header, arrays = _members(gmm)
    arrays["precisions_"] = arrays["precisions_"] * 1.5
    _refused(_write(tmp_path / "m.npz", header, arrays),
             "precisions_ does not match precisions_cholesky_")


def test_bad_scalars(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    _write(path, dict(header, n_iter_=-1), arrays)
    _refused(path, "n_iter_ = -1 is negative")
    _write(path, dict(header, lower_bounds_=[1.0, "x"]), arrays)
    _refused(path, "'lower_bounds_' must be a list of numbers")
    _write(path, dict(header, online_updates=-2), arrays)
    _refused(path, "online_updates must be a count")


@pytest.mark.parametrize("dtype, value", [(np.float64, 1e200), (np.float64, -2e154),
                                          (np.float32, 1e20)])
def test_means_past_what_the_dtype_can_square_are_refused(tmp_path, dtype, value):
    # an outside audit: finite means of 1e200 loaded, then predict_proba was NaN
    gmm, _ = _fitted("diag", dtype=dtype)
    header, arrays = _members(gmm)
    means = arrays["means_"].copy()
    means[1, 2] = value
    _refused(_write(tmp_path / "m.npz", header, dict(arrays, means_=means)),
             "means_ reach .* no fit makes such a model")


def test_lower_bounds_that_are_not_bounds_are_refused(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    path = tmp_path / "m.npz"
    for value in (float("nan"), float("inf")):
        _write(path, dict(header, lower_bound_=value), arrays)
        _refused(path, "'lower_bound_' = .* is not a lower bound")
        _write(path, dict(header, lower_bounds_=[-1.0, value]), arrays)
        _refused(path, "'lower_bounds_' holds NaN or \\+inf")
    _write(path, dict(header, lower_bounds_=[-1.0, float("-inf")]), arrays)
    assert load(path).lower_bounds_[-1] == float("-inf")


def test_a_subnormal_bayesian_mean_precision_is_refused(tmp_path):
    X, _ = make_mixture(n_samples=400, n_features=3, n_components=3, seed=3)
    model = BayesianGaussianMixture(n_components=3, covariance_type="diag",
                                    random_state=0).fit(X)
    header, arrays = _members(model)
    precision = arrays["mean_precision_"].copy()
    precision[0] = 5e-324
    _refused(_write(tmp_path / "m.npz", header, dict(arrays, mean_precision_=precision)),
             "mean_precision_ must be positive and above")


def test_ill_conditioned_models_round_trip(tmp_path):
    # Features on very different scales: badly conditioned covariances must
    # still pass the consistency checks, in both dtypes.
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 4)) * np.array([1e-3, 1.0, 1e3, 1e2])
    for dtype in (np.float64, np.float32):
        for covariance_type in COVARIANCE_TYPES:
            gmm = GaussianMixture(4, covariance_type=covariance_type, random_state=0,
                                  reg_covar=1e-9).fit(X.astype(dtype))
            gmm.save(tmp_path / "m.npz")
            _assert_identical(load(tmp_path / "m.npz"), gmm)


# ------------------------------------------------------- file permissions


def test_save_follows_the_umask(tmp_path, umask_022):
    # mkstemp's 0600 made a model unreadable to the other accounts that
    # share it; a new model gets 0666 less the umask, as np.save gives.
    gmm, _ = _fitted("diag")
    path = tmp_path / "m.npz"
    gmm.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    _assert_identical(load(path), gmm)


def test_save_keeps_the_replaced_files_mode(tmp_path, umask_022):
    gmm, _ = _fitted("diag")
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    fastgmm.save(gmm, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    _assert_identical(load(path), gmm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# ----------------------------------------- files read only as far as needed


def _peak_traced(function):
    """Peak bytes allocated through Python's allocators while `function` runs."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _sparse_file(path, size, head=b"", tail=b""):
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size - len(tail))
        f.seek(size - len(tail))
        f.write(tail)
    return path


@pytest.mark.parametrize("head", [b"", b"PK\x03\x04"])
def test_large_file_that_is_not_a_model_is_not_read(tmp_path, head):
    # 200 MB of zeros (sparse: no disk used), once with a zip signature in
    # front. The old load read the whole file before looking at it.
    path = _sparse_file(tmp_path / "big.npz", 200 * 2**20, head)

    def attempt():
        with pytest.raises(ModelFileError, match="not a fastgmm model file|truncated or corrupt"):
            load(path)

    assert _peak_traced(attempt) < 8 * 2**20


def _zip_header(signature, fields):
    return struct.pack("<I", signature) + fields


def _handmade_zip(members, directory=None):
    """A stored zip built byte by byte: `members` are (name, payload) local
    entries written in order; `directory` lists the central directory's
    (name, local index or absolute offset, declared size, crc) entries,
    by default one per member, as written."""
    out = bytearray()
    offsets, crcs = [], []
    for name, payload in members:
        crc = zlib.crc32(payload)
        offsets.append(len(out))
        crcs.append(crc)
        out += _zip_header(0x04034B50, struct.pack(
            "<HHHHHIIIHH", 20, 0, 0, 0, 0x21, crc, len(payload), len(payload),
            len(name), 0))
        out += name.encode() + payload
    if directory is None:
        directory = [(name, i, len(payload), crcs[i])
                     for i, (name, payload) in enumerate(members)]
    start = len(out)
    for name, where, size, crc in directory:
        offset = offsets[where] if where < len(offsets) else where
        out += _zip_header(0x02014B50, struct.pack(
            "<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0, 0,
            0, 0, 0, offset))
        out += name.encode()
    out += _zip_header(0x06054B50, struct.pack(
        "<HHHHIIH", 0, 0, len(directory), len(directory), len(out) - start, start, 0))
    return bytes(out)


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _model_members(gmm):
    header, arrays = _members(gmm)
    text = json.dumps(header).encode()
    return [("header.npy", _npy(np.frombuffer(text, dtype=np.uint8)))] + [
        (name + ".npy", _npy(array)) for name, array in arrays.items()]


def test_handmade_zip_is_a_model():
    # The helper builds a file load accepts, so the refusals below are about
    # what was altered.
    gmm, _ = _fitted("diag")
    _assert_identical(load(io.BytesIO(_handmade_zip(_model_members(gmm)))), gmm)


def test_member_declaring_more_than_the_model_needs_is_not_read(tmp_path):
    # means_ of a 3 x 3 model declared 200 MB long (a sparse hole in the
    # file): refused from the directory, before its bytes are read.
    gmm, _ = _fitted("diag")
    members = _model_members(gmm)
    size = 200 * 2**20
    index = [name for name, _ in members].index("means_.npy")
    # The other members as written, then means_ with its payload a hole.
    front = _handmade_zip(members[:index] + members[index + 1:])
    cd_start = struct.unpack("<I", front[-6:-2])[0]
    local = bytes(front[:cd_start])
    name = b"means_.npy"
    offset = len(local)
    local += _zip_header(0x04034B50, struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0x21, 0, size,
                                                 size, len(name), 0)) + name
    directory = front[cd_start:-22]
    directory += _zip_header(0x02014B50, struct.pack(
        "<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 0x21, 0, size, size, len(name), 0, 0, 0, 0, 0,
        offset)) + name
    count = len(members)
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        f.write(local)
        f.seek(len(local) + size)
        f.write(directory)
        f.write(_zip_header(0x06054B50, struct.pack("<HHHHIIH", 0, 0, count, count,
                                                    len(directory), len(local) + size, 0)))

    def attempt():
        _refused(path, "means_")

    assert _peak_traced(attempt) < 8 * 2**20


def test_dev_zero_is_refused_at_once():
    # The old load read /dev/zero until memory ran out. Run in a child with
    # its address space capped, so that a regression fails instead of
    # exhausting the machine.
    if not os.path.exists("/dev/zero") or sys.platform != "linux":
        pytest.skip("needs /dev/zero and Linux's /proc")
    code = textwrap.dedent("""
        import resource, time
        import fastgmm
        pages = int(open("/proc/self/statm").read().split()[0])
        limit = pages * resource.getpagesize() + 512 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        start = time.perf_counter()
        try:
            fastgmm.load("/dev/zero")
        except BaseException as error:
            print(type(error).__name__, round(time.perf_counter() - start, 3), error)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    name, seconds, message = result.stdout.split(" ", 2)
    assert name == "ModelFileError", result.stdout + result.stderr
    assert float(seconds) < 1.0
    assert "not an .npz archive" in message


# ---------------------------------------------------- crafted zip directories


def test_overlapping_members_are_refused():
    gmm, _ = _fitted("diag")
    members = _model_members(gmm)
    names = [name for name, _ in members]
    means = names.index("means_.npy")
    crc = zlib.crc32(members[means][1])
    size = len(members[means][1])
    base = [(name, i, len(payload), zlib.crc32(payload))
            for i, (name, payload) in enumerate(members)]
    # The same stored member listed many times (the old load read it, and
    # kept a copy, once per entry).
    repeated = base + [("means_.npy", means, size, crc)] * 50
    with pytest.raises(ModelFileError, match="members|listed more than once"):
        load(io.BytesIO(_handmade_zip(members, repeated)))
    # Two names whose extents overlap: weights_'s entry claims the bytes of
    # the member after it too.
    weights = names.index("weights_.npy")
    assert weights + 1 < len(members)
    blob = _handmade_zip(members)
    span_end = (blob.index(members[weights + 1][0].encode())
                + len(members[weights + 1][0]) + len(members[weights + 1][1]))
    start = blob.index(members[weights][1])
    widened = blob[start:span_end]
    directory = list(base)
    directory[weights] = ("weights_.npy", weights, len(widened), zlib.crc32(widened))
    with pytest.raises(ModelFileError, match="overlap"):
        load(io.BytesIO(_handmade_zip(members, directory)))


def test_member_past_the_directory_is_refused():
    gmm, _ = _fitted("diag")
    members = _model_members(gmm)
    directory = [(name, i, len(payload) + 10**6, zlib.crc32(payload))
                 if name == "means_.npy" else (name, i, len(payload), zlib.crc32(payload))
                 for i, (name, payload) in enumerate(members)]
    with pytest.raises(ModelFileError, match="means_"):
        load(io.BytesIO(_handmade_zip(members, directory)))


def test_too_many_members_are_refused():
    gmm, _ = _fitted("diag")
    members = _model_members(gmm)
    members += [(f"param_x{i}.npy", _npy(np.zeros(1))) for i in range(40)]
    with pytest.raises(ModelFileError, match="members"):
        load(io.BytesIO(_handmade_zip(members)))


# ------------------------------------- malformed contents raise ModelFileError


def _replace_member(path, name, content):
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    members[name] = content
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)


@pytest.mark.parametrize("shape", [(2**64,), (2**63 - 1, 2**63 - 1), (3, -1)])
def test_declared_shape_that_overflows(tmp_path, shape):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    path = _write(tmp_path / "m.npz", header, arrays)
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        npy, {"descr": "<f8", "fortran_order": False, "shape": shape})
    _replace_member(path, "weights_.npy", npy.getvalue() + arrays["weights_"].tobytes())
    _refused(path, "weights_")


@pytest.mark.parametrize("field, value", [
    ("pos", 10**30), ("pos", 10**400), ("pos", -1), ("pos", 625), ("has_gauss", 10**30),
    ("cached_gaussian", 10**400), ("cached_gaussian", float("nan")), ("kind", 7),
])
def test_random_state_fields_out_of_range(tmp_path, field, value):
    X, _ = make_mixture(n_samples=200, n_features=2, n_components=2, seed=4)
    gmm = GaussianMixture(2, covariance_type="diag",
                          random_state=np.random.RandomState(3)).fit(X)
    header, arrays = _members(gmm)
    header["params"]["random_state"]["$random_state"][field] = value
    _refused(_write(tmp_path / "m.npz", header, arrays), "random_state")


@pytest.mark.parametrize("field", ["lower_bound_", "n_features_in_", "n_iter_"])
def test_huge_numbers_in_the_header(tmp_path, field):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    header[field] = 10**400
    _refused(_write(tmp_path / "m.npz", header, arrays), field)
    header, arrays = _members(gmm)
    header["lower_bounds_"] = [10**400]
    _refused(_write(tmp_path / "m.npz", header, arrays), "lower_bounds_")


@pytest.mark.parametrize("where", ["top", "params"])
def test_deeply_nested_header(tmp_path, where):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    deep = "[" * 100000 + "]" * 100000
    if where == "top":
        text = deep
    else:
        text = json.dumps(dict(header, params=dict(header["params"], tol="@"))).replace(
            '"@"', deep)
    path = _write(tmp_path / "m.npz", header, arrays,
                  header_array=np.frombuffer(text.encode(), dtype=np.uint8))
    _refused(path, "nested")


def test_oversized_header_is_not_read(tmp_path):
    gmm, _ = _fitted("diag")
    header, arrays = _members(gmm)
    header["padding"] = " " * (40 * 2**20)
    _refused(_write(tmp_path / "m.npz", header, arrays), "header")


def test_n_components_must_match_the_arrays(tmp_path):
    gmm, _ = _fitted("full")
    header, arrays = _members(gmm)
    header["params"]["n_components"] = 7
    _refused(_write(tmp_path / "m.npz", header, arrays), "n_components")


def test_unsupported_compression_and_flags(tmp_path):
    # The compression method and the flag bits of the central directory: the
    # old load let zipfile's NotImplementedError / RuntimeError through.
    gmm, _ = _fitted("diag")
    blob = _handmade_zip(_model_members(gmm))
    cd_start = struct.unpack("<I", blob[-6:-2])[0]
    for offset, value, match in [(10, 99, "compress"), (8, 1, "encrypted|flag"),
                                 (8, 0x20, "flag"), (8, 0x40, "flag")]:
        data = bytearray(blob)
        struct.pack_into("<H", data, cd_start + offset, value)
        with pytest.raises(ModelFileError, match=match):
            load(io.BytesIO(bytes(data)))


def _small_model_file(kind="gmm"):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 4])
    if kind == "bayesian":
        # With a stream's state (partial_fit after fit): every member there is.
        model = BayesianGaussianMixture(n_components=3, covariance_type="full",
                                        random_state=0).fit(X).partial_fit(X[:40])
        assert hasattr(model, "_svi_state")
    else:
        model = GaussianMixture(2, covariance_type="full", random_state=0)
        if kind == "pipeline":
            model = make_pipeline(StandardScaler(), model)
        model.fit(X)
    buffer = io.BytesIO()
    fastgmm.save(model, buffer)
    return buffer.getvalue(), model, X


@pytest.mark.parametrize("kind", ["gmm", "pipeline", "bayesian"])
def test_every_single_byte_flip_loads_the_model_or_is_refused(kind):
    # Every byte of a small model file, changed several ways (all bits, the
    # lowest, the highest, and a seeded random other value): the result is
    # the very same model (a byte the format does not use, such as a date) or
    # a ModelFileError. The old load let NotImplementedError ("zip file
    # version 21.0") through, among other things.
    data, model, X = _small_model_file(kind)
    expected = model.score_samples(X).tobytes()
    rng = np.random.default_rng(16)
    masks = (0xFF, 0x01, 0x80) if kind == "gmm" else (0xFF,)
    outcomes = {"loaded": 0, "refused": 0}
    for position in range(len(data)):
        for mask in masks + (int(rng.integers(1, 256)),):
            flipped = bytearray(data)
            flipped[position] ^= mask
            try:
                loaded = load(io.BytesIO(bytes(flipped)))
            except ModelFileError:
                outcomes["refused"] += 1
                continue
            except Exception as error:   # noqa: BLE001 - the point of the test
                pytest.fail(f"byte {position} ^ {mask:#x}: {type(error).__name__}: {error}")
            assert type(loaded) is type(model), position
            assert loaded.score_samples(X).tobytes() == expected, position
            if kind == "bayesian":
                _assert_all_attributes_identical(loaded, model)
            outcomes["loaded"] += 1
    assert outcomes["refused"] > len(data) // 2 and outcomes["loaded"] > 0, outcomes


def test_unseekable_stream_loads(tmp_path):
    gmm, _ = _fitted("full")
    buffer = io.BytesIO()
    gmm.save(buffer)

    class Stream(io.RawIOBase):
        def __init__(self, data):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self._inner.readinto(b)

    _assert_identical(load(io.BufferedReader(Stream(buffer.getvalue()))), gmm)
    with pytest.raises(ModelFileError, match="not an .npz archive"):
        load(io.BufferedReader(Stream(b"plain text")))


def test_zip64_end_records_and_a_file_object_part_way(monkeypatch):
    # numpy writes zip64 end records past 65535 members or 4 GiB: forced here
    # by lowering zipfile's member-count limit; and a model written after
    # other bytes of a file object loads from that position.
    gmm, _ = _fitted("spherical")
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    buffer = io.BytesIO()
    gmm.save(buffer)
    monkeypatch.undo()
    assert b"PK\x06\x06" in buffer.getvalue() and b"PK\x06\x07" in buffer.getvalue()
    _assert_identical(load(io.BytesIO(buffer.getvalue())), gmm)
    shifted = io.BytesIO()
    shifted.write(b"other data")
    gmm.save(shifted)
    shifted.seek(len(b"other data"))
    _assert_identical(load(shifted), gmm)


def test_os_errors_are_not_disguised(tmp_path):
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


# --------------------------------------------------- the old format still loads

# Written by fastgmm at c927a79 (format version 1, the only one then):
# GaussianMixture(2, covariance_type="full", random_state=0) fitted on a
# DataFrame with columns a, b of 80 rows; kept as bytes so that a change of
# the writer cannot change it.
_OLD_MODEL_B64 = (
    "UEsDBC0AAAAAAAAAIQDpgOcL//////////8MABQAd2VpZ2h0c18ubnB5AQAQAJAAAAAAAAAAkAAA"
    "AAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAn"
    "c2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgCiPAvS4G0N8/7h+h6PwX4D9QSwMELQAAAAAAAAAhAAajUoX/////"
    "/////woAFABtZWFuc18ubnB5AQAQAKAAAAAAAAAAoAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6"
    "ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCuONxn2R"
    "JQ5AT2SWm9hUEEDwrTXm4Z21P1ezARvDhsc/UEsDBC0AAAAAAAAAIQC7YIOp//////////8QABQA"
    "Y292YXJpYW5jZXNfLm5weQEAEADAAAAAAAAAAMAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAn"
    "PGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIsIDIpLCB9ICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIArLtDh5moDp"
    "P9BNgPRvA7Y/0E2A9G8Dtj80Nw17m8XuP7K0aTyr8u8/xrXBkXoAyD/GtcGRegDIP4D9LRY+J+0/"
    "UEsDBC0AAAAAAAAAIQAWcBnU//////////8YABQAcHJlY2lzaW9uc19jaG9sZXNreV8ubnB5AQAQ"
    "AMAAAAAAAAAAwAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRl"
    "cic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCoCiYsk57PE/Y5PP4QhOvL8AAAAAAAAAAAQ2"
    "26Q7ZfA/wiXWO1YD8D/yzvFqWLDJvwAAAAAAAAAADShnLMEY8T9QSwMELQAAAAAAAAAhAB+UA6z/"
    "/////////w8AFABwcmVjaXNpb25zXy5ucHkBABAAwAAAAAAAAADAAAAAAAAAAJNOVU1QWQEAdgB7"
    "J2Rlc2NyJzogJzxmOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAyLCAy"
    "KSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
    "ICAK6SAkEa1F9D8VaUX9HgG9vxVpRf0eAb2/BRKWy/fM8D8XtHjZp6vwP0lztpwcc8u/SXO2nBxz"
    "y79IqvzKwETyP1BLAwQtAAAAAAAAACEAoFNR/f//////////CgAUAGhlYWRlci5ucHkBABAAqQIA"
    "AAAAAACpAgAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJ3x1MScsICdmb3J0cmFuX29yZGVyJzog"
    "RmFsc2UsICdzaGFwZSc6ICg1NTMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAKeyJjb252ZXJnZWRfIjogdHJ1ZSwgImZhc3RnbW1f"
    "dmVyc2lvbiI6ICIwLjEuMCIsICJmZWF0dXJlX25hbWVzX2luXyI6IFsiYSIsICJiIl0sICJmb3Jt"
    "YXQiOiAiZmFzdGdtbS1tb2RlbCIsICJmb3JtYXRfdmVyc2lvbiI6IDEsICJsb3dlcl9ib3VuZF8i"
    "OiAtMy40MTQ0MzU1ODM3MjMxOTk3LCAibG93ZXJfYm91bmRzXyI6IFstMy40MTQ5ODEyMTA5NzYy"
    "OTYsIC0zLjQxNDQzNTU4MzcyMzE5OTddLCAibl9mZWF0dXJlc19pbl8iOiAyLCAibl9pdGVyXyI6"
    "IDIsICJwYXJhbXMiOiB7ImNvdmFyaWFuY2VfdHlwZSI6ICJmdWxsIiwgImluaXRfcGFyYW1zIjog"
    "ImttZWFucyIsICJtYXhfaXRlciI6IDEwMCwgIm1lYW5zX2luaXQiOiBudWxsLCAibl9jb21wb25l"
    "bnRzIjogMiwgIm5faW5pdCI6IDEsICJwcmVjaXNpb25zX2luaXQiOiBudWxsLCAicmFuZG9tX3N0"
    "YXRlIjogMCwgInJlZ19jb3ZhciI6IDFlLTA2LCAidG9sIjogMC4wMDEsICJ2ZXJib3NlIjogMCwg"
    "InZlcmJvc2VfaW50ZXJ2YWwiOiAxMCwgIndhcm1fc3RhcnQiOiBmYWxzZSwgIndlaWdodHNfaW5p"
    "dCI6IG51bGx9fVBLAQItAy0AAAAAAAAAIQDpgOcLkAAAAJAAAAAMAAAAAAAAAAAAAACAAQAAAAB3"
    "ZWlnaHRzXy5ucHlQSwECLQMtAAAAAAAAACEABqNShaAAAACgAAAACgAAAAAAAAAAAAAAgAHOAAAA"
    "bWVhbnNfLm5weVBLAQItAy0AAAAAAAAAIQC7YIOpwAAAAMAAAAAQAAAAAAAAAAAAAACAAaoBAABj"
    "b3ZhcmlhbmNlc18ubnB5UEsBAi0DLQAAAAAAAAAhABZwGdTAAAAAwAAAABgAAAAAAAAAAAAAAIAB"
    "rAIAAHByZWNpc2lvbnNfY2hvbGVza3lfLm5weVBLAQItAy0AAAAAAAAAIQAflAOswAAAAMAAAAAP"
    "AAAAAAAAAAAAAACAAbYDAABwcmVjaXNpb25zXy5ucHlQSwECLQMtAAAAAAAAACEAoFNR/akCAACp"
    "AgAACgAAAAAAAAAAAAAAgAG3BAAAaGVhZGVyLm5weVBLBQYAAAAABgAGAGsBAACcBwAAAAA="
)


def test_format_version_1_file_still_loads(tmp_path):
    data = base64.b64decode(_OLD_MODEL_B64)
    path = tmp_path / "old.npz"
    path.write_bytes(data)
    loaded = load(path)
    assert type(loaded) is GaussianMixture
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["header"].tobytes().decode())
        for name in FITTED:
            assert getattr(loaded, name).tobytes() == npz[name].tobytes(), name
    assert header["format_version"] == 1
    assert list(loaded.feature_names_in_) == ["a", "b"]
    assert loaded.n_iter_ == header["n_iter_"] and loaded.converged_
    # Saving it again writes the same version-1 header.
    buffer = io.BytesIO()
    loaded.save(buffer)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as npz:
        again = json.loads(npz["header"].tobytes().decode())
    assert again["format_version"] == 1
    assert {k: v for k, v in again.items() if k != "fastgmm_version"} == {
        k: v for k, v in header.items() if k != "fastgmm_version"}


# Written by fastgmm at 7727132 (format version 2):
# make_pipeline(StandardScaler(), GaussianMixture(2, covariance_type="diag",
# random_state=0)) fitted on a DataFrame with columns a, b of 80 rows; kept as
# bytes so that a change of the writer cannot change it.
_VERSION_2_MODEL_B64 = (
    "UEsDBC0AAAAAAAAAIQC2fY8i//////////8MABQAd2VpZ2h0c18ubnB5AQAQAJAAAAAAAAAAkAAA"
    "AAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAn"
    "c2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgCjqeqvMb+N8/47AqBvID4D9QSwMELQAAAAAAAAAhAHr59Mr/////"
    "/////woAFABtZWFuc18ubnB5AQAQAKAAAAAAAAAAoAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6"
    "ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCoTIgmm5"
    "luw/bog5lq5P7T9Rkrd3o4jsv0oYb4M9Qe2/UEsDBC0AAAAAAAAAIQB2Gm0h//////////8QABQA"
    "Y292YXJpYW5jZXNfLm5weQEAEACgAAAAAAAAAKAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAn"
    "PGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIApO8wDt5orH"
    "P54DayiO5NI/dx5+AUmEzD8O6BIQb/yeP1BLAwQtAAAAAAAAACEAENjbb///////////GAAUAHBy"
    "ZWNpc2lvbnNfY2hvbGVza3lfLm5weQEAEACgAAAAAAAAAKAAAAAAAAAAk05VTVBZAQB2AHsnZGVz"
    "Y3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAp+"
    "D7cLYacCQIKAtRjLcv0/273KH/TyAEB6vFYaof4WQFBLAwQtAAAAAAAAACEAMm+pqP//////////"
    "DwAUAHByZWNpc2lvbnNfLm5weQEAEACgAAAAAAAAAKAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3In"
    "OiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIApTDn1W"
    "cb8VQLEH4uirGQtAjPrjZlH0EUA2deSkB4ZAQFBLAwQtAAAAAAAAACEAg5E5Ov//////////FQAU"
    "AHN0YW5kYXJkaXplX3NoaWZ0Lm5weQEAEACQAAAAAAAAAJAAAAAAAAAAk05VTVBZAQB2AHsnZGVz"
    "Y3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqw"
    "+/xKUab+P5NNjgo5wxRAUEsDBC0AAAAAAAAAIQCA4bvC//////////8VABQAc3RhbmRhcmRpemVf"
    "c2NhbGUubnB5AQAQAJAAAAAAAAAAkAAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICc8ZjgnLCAn"
    "Zm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCpXaZzJWkgBAyuiN3qru"
    "FUBQSwMELQAAAAAAAAAhACWP3n7//////////woAFABoZWFkZXIubnB5AQAQAAMDAAAAAAAAAwMA"
    "AAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICd8dTEnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAn"
    "c2hhcGUnOiAoNjQzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg"
    "ICAgICAgICAgICAgICAgICAgCnsiY29udmVyZ2VkXyI6IHRydWUsICJmYXN0Z21tX3ZlcnNpb24i"
    "OiAiMC4xLjAiLCAiZm9ybWF0IjogImZhc3RnbW0tbW9kZWwiLCAiZm9ybWF0X3ZlcnNpb24iOiAy"
    "LCAibG93ZXJfYm91bmRfIjogLTEuNTQ5MDYwMzA5MDQ4OTIyMywgImxvd2VyX2JvdW5kc18iOiBb"
    "LTEuNTU4MTc2OTU2OTM2OTg1OSwgLTEuNTQ5NDc5MTM5NTYzMTg3NywgLTEuNTQ5MDYwMzA5MDQ4"
    "OTIyM10sICJuX2ZlYXR1cmVzX2luXyI6IDIsICJuX2l0ZXJfIjogMywgInBhcmFtcyI6IHsiY292"
    "YXJpYW5jZV90eXBlIjogImRpYWciLCAiaW5pdF9wYXJhbXMiOiAia21lYW5zIiwgIm1heF9pdGVy"
    "IjogMTAwLCAibWVhbnNfaW5pdCI6IG51bGwsICJuX2NvbXBvbmVudHMiOiAyLCAibl9pbml0Ijog"
    "MSwgInByZWNpc2lvbnNfaW5pdCI6IG51bGwsICJyYW5kb21fc3RhdGUiOiAwLCAicmVnX2NvdmFy"
    "IjogMWUtMDYsICJ0b2wiOiAwLjAwMSwgInZlcmJvc2UiOiAwLCAidmVyYm9zZV9pbnRlcnZhbCI6"
    "IDEwLCAid2FybV9zdGFydCI6IGZhbHNlLCAid2VpZ2h0c19pbml0IjogbnVsbH0sICJzdGFuZGFy"
    "ZGl6ZSI6IHsiY29weSI6IHRydWUsICJmZWF0dXJlX25hbWVzX2luXyI6IFsiYSIsICJiIl0sICJ3"
    "aXRoX21lYW4iOiB0cnVlLCAid2l0aF9zdGQiOiB0cnVlfX1QSwECLQMtAAAAAAAAACEAtn2PIpAA"
    "AACQAAAADAAAAAAAAAAAAAAAgAEAAAAAd2VpZ2h0c18ubnB5UEsBAi0DLQAAAAAAAAAhAHr59Mqg"
    "AAAAoAAAAAoAAAAAAAAAAAAAAIABzgAAAG1lYW5zXy5ucHlQSwECLQMtAAAAAAAAACEAdhptIaAA"
    "AACgAAAAEAAAAAAAAAAAAAAAgAGqAQAAY292YXJpYW5jZXNfLm5weVBLAQItAy0AAAAAAAAAIQAQ"
    "2NtvoAAAAKAAAAAYAAAAAAAAAAAAAACAAYwCAABwcmVjaXNpb25zX2Nob2xlc2t5Xy5ucHlQSwEC"
    "LQMtAAAAAAAAACEAMm+pqKAAAACgAAAADwAAAAAAAAAAAAAAgAF2AwAAcHJlY2lzaW9uc18ubnB5"
    "UEsBAi0DLQAAAAAAAAAhAIOROTqQAAAAkAAAABUAAAAAAAAAAAAAAIABVwQAAHN0YW5kYXJkaXpl"
    "X3NoaWZ0Lm5weVBLAQItAy0AAAAAAAAAIQCA4bvCkAAAAJAAAAAVAAAAAAAAAAAAAACAAS4FAABz"
    "dGFuZGFyZGl6ZV9zY2FsZS5ucHlQSwECLQMtAAAAAAAAACEAJY/efgMDAAADAwAACgAAAAAAAAAA"
    "AAAAgAEFBgAAaGVhZGVyLm5weVBLBQYAAAAACAAIAPEBAABECQAAAAA="
)


def test_format_version_2_file_still_loads(tmp_path):
    path = tmp_path / "old.npz"
    path.write_bytes(base64.b64decode(_VERSION_2_MODEL_B64))
    loaded = load(path)
    assert isinstance(loaded, Pipeline)
    assert [name for name, _ in loaded.steps] == ["standardscaler", "gaussianmixture"]
    scaler, gmm = loaded.steps[0][1], loaded.steps[1][1]
    assert type(scaler) is StandardScaler and type(gmm) is GaussianMixture
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["header"].tobytes().decode())
        for name in FITTED:
            assert getattr(gmm, name).tobytes() == npz[name].tobytes(), name
        assert scaler.mean_.tobytes() == npz["standardize_shift"].tobytes()
        assert scaler.scale_.tobytes() == npz["standardize_scale"].tobytes()
    assert header["format_version"] == 2
    assert list(loaded.feature_names_in_) == ["a", "b"]
    assert gmm.covariance_type == "diag" and gmm.n_iter_ == 3 and gmm.converged_
    # Saving it again writes the same version-2 header.
    buffer = io.BytesIO()
    fastgmm.save(loaded, buffer)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as npz:
        again = json.loads(npz["header"].tobytes().decode())
    assert {k: v for k, v in again.items() if k != "fastgmm_version"} == {
        k: v for k, v in header.items() if k != "fastgmm_version"}


# ----------------------------------------------------- standardisation stored


@pytest.mark.parametrize("with_mean, with_std", [(True, True), (False, True), (True, False),
                                                 (False, False)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pipeline_round_trip_is_exact(tmp_path, with_mean, with_std, dtype):
    X, _ = make_mixture(n_samples=400, n_features=3, n_components=3, dtype=dtype, seed=3)
    X = X * np.array([1.0, 100.0, 0.01], dtype=dtype) + np.array([5, -3, 0], dtype=dtype)
    pipe = make_pipeline(StandardScaler(with_mean=with_mean, with_std=with_std),
                         GaussianMixture(3, covariance_type="full", random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X)
    path = tmp_path / "m.npz"
    fastgmm.save(pipe, path)
    loaded = load(path)
    assert isinstance(loaded, Pipeline)
    assert [name for name, _ in loaded.steps] == ["standardscaler", "gaussianmixture"]
    scaler, gmm = loaded.steps[0][1], loaded.steps[1][1]
    assert type(scaler) is StandardScaler and type(gmm) is GaussianMixture
    assert scaler.get_params() == pipe[0].get_params()
    _assert_identical(gmm, pipe[1])
    for method in ("predict", "predict_proba", "score_samples"):
        assert getattr(loaded, method)(X).tobytes() == getattr(pipe, method)(X).tobytes()
    assert loaded.score(X) == pipe.score(X)
    if with_mean:
        assert scaler.mean_.tobytes() == pipe[0].mean_.tobytes()
    if with_std:
        assert scaler.scale_.tobytes() == pipe[0].scale_.tobytes()
    assert scaler.n_features_in_ == 3
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(npz["header"].tobytes().decode())["format_version"] == 2


def test_pipeline_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, _ = make_mixture(n_samples=300, n_features=2, n_components=2, seed=4)
    frame = pd.DataFrame(X, columns=["height", "weight"])
    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(frame)
    fastgmm.save(pipe, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert list(loaded.feature_names_in_) == ["height", "weight"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no feature-name warnings either way
        assert loaded.predict_proba(frame).tobytes() == pipe.predict_proba(frame).tobytes()


def test_save_function_on_a_gaussian_mixture(tmp_path):
    gmm, _ = _fitted("tied")
    fastgmm.save(gmm, tmp_path / "a.npz")
    gmm.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    _assert_identical(load(tmp_path / "a.npz"), gmm)
    assert "save" in fastgmm.__all__


@pytest.mark.parametrize("build, error", [
    (lambda: make_pipeline(MinMaxScaler(), GaussianMixture(2)), TypeError),
    (lambda: make_pipeline(StandardScaler(), StandardScaler(), GaussianMixture(2)), TypeError),
    (lambda: make_pipeline(GaussianMixture(2)), TypeError),
    (lambda: make_pipeline(StandardScaler(), SkGaussianMixture(2)), TypeError),
    (lambda: SkGaussianMixture(2), TypeError),
    (lambda: "model", TypeError),
])
def test_save_refuses_other_models(tmp_path, build, error):
    X, _ = make_mixture(n_samples=200, n_features=2, n_components=2, seed=1)
    model = build()
    if hasattr(model, "fit"):
        model.fit(X)
    with pytest.raises(error, match="GaussianMixture"):
        fastgmm.save(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_save_refuses_an_unfitted_pipeline(tmp_path):
    with pytest.raises(NotFittedError):
        fastgmm.save(make_pipeline(StandardScaler(), GaussianMixture(2)), tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def _pipeline_members():
    X, _ = make_mixture(n_samples=300, n_features=3, n_components=2, seed=6)
    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(X)
    buffer = io.BytesIO()
    fastgmm.save(pipe, buffer)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


@pytest.mark.parametrize("name", ["standardize_shift", "standardize_scale"])
@pytest.mark.parametrize("value, match", [
    (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"),
    ("short", "shape"), ("float32", "dtype"), ("int", "dtype"),
])
def test_bad_standardisation_arrays(tmp_path, name, value, match):
    header, arrays = _pipeline_members()
    array = arrays[name].copy()
    if value == "short":
        array = array[:2]
    elif value == "float32":
        array = array.astype(np.float32)
    elif value == "int":
        array = np.ones(3, dtype=np.int64)
    else:
        array[1] = value
    arrays[name] = array
    _refused(_write(tmp_path / "m.npz", header, arrays), rf"{name}.*{match}|{match}.*{name}")


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_scale_must_be_positive(tmp_path, value):
    header, arrays = _pipeline_members()
    arrays["standardize_scale"] = arrays["standardize_scale"].copy()
    arrays["standardize_scale"][0] = value
    _refused(_write(tmp_path / "m.npz", header, arrays), "standardize_scale must be positive")


def test_standardisation_and_version_must_agree(tmp_path):
    header, arrays = _pipeline_members()
    path = tmp_path / "m.npz"
    _write(path, dict(header, format_version=1), arrays)
    _refused(path, "unexpected array")
    plain = {k: v for k, v in arrays.items() if not k.startswith("standardize_")}
    _write(path, header, plain)
    _refused(path, "missing array")
    _write(path, {k: v for k, v in header.items() if k != "standardize"}, arrays)
    _refused(path, "standardize")
    _write(path, dict(header, standardize={"with_mean": "yes", "with_std": True}), arrays)
    _refused(path, "standardize")
    # with_mean=False: the stored shift must be the zeros it stands for.
    _write(path, dict(header, standardize=dict(header["standardize"], with_mean=False)), arrays)
    _refused(path, "standardize_shift")


# ------------------------------------------- BayesianGaussianMixture (version 3)

PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def _bayesian(covariance_type="full", dtype=np.float64, n_components=5, **params):
    X, _ = make_mixture(n_samples=300, n_features=3, n_components=3, dtype=dtype, seed=7)
    params.setdefault("random_state", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BayesianGaussianMixture(n_components=n_components,
                                        covariance_type=covariance_type, **params).fit(X)
    return model, X


def _same(a, b):
    """Equal in type and, for numbers and arrays, bit for bit."""
    if type(a) is not type(b):
        return False
    if isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in b)
    if isinstance(b, np.random.RandomState):
        sa, sb = a.get_state(), b.get_state()
        return sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:]
    if isinstance(b, (np.ndarray, np.generic)):
        if a.dtype != b.dtype or np.shape(a) != np.shape(b):
            return False
        if b.dtype == object:
            return list(a) == list(b)
        return np.asarray(a).tobytes() == np.asarray(b).tobytes()
    if isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def _assert_all_attributes_identical(loaded, model):
    # Every attribute: the parameters, the fitted ones and the private state
    # partial_fit continues from.
    assert set(vars(loaded)) == set(vars(model)), set(vars(loaded)) ^ set(vars(model))
    for name, value in vars(model).items():
        assert _same(getattr(loaded, name), value), name


def _assert_predicts_identically(loaded, model, X):
    for method in ("predict", "predict_proba", "score_samples"):
        assert getattr(loaded, method)(X).tobytes() == getattr(model, method)(X).tobytes(), \
            method
    assert loaded.score(X) == model.score(X)


def _header_of(path):
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(npz["header"].tobytes().decode())


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_bayesian_round_trip_is_exact(tmp_path, covariance_type, dtype, prior_type):
    model, X = _bayesian(covariance_type, dtype, weight_concentration_prior_type=prior_type)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load(path)
    assert type(loaded) is BayesianGaussianMixture
    _assert_all_attributes_identical(loaded, model)
    _assert_predicts_identically(loaded, model, X)
    np.testing.assert_array_equal(loaded.sample(5)[0], model.sample(5)[0])
    header = _header_of(path)
    assert header["format_version"] == 3
    assert header["estimator"] == "BayesianGaussianMixture"


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bayesian_priors_random_state_and_feature_names(tmp_path, covariance_type):
    pd = pytest.importorskip("pandas")
    X, _ = make_mixture(n_samples=300, n_features=3, n_components=3, seed=9)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    covariance_prior = {"full": np.diag([2.0, 1.0, 0.5]) + 0.1, "tied": np.eye(3) * 3.0,
                        "diag": np.array([1.0, 2.0, 3.0], dtype=np.float32),
                        "spherical": 2}[covariance_type]
    rng = np.random.RandomState(5)
    rng.normal(size=3)
    model = BayesianGaussianMixture(
        n_components=4, covariance_type=covariance_type,
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=0.01, mean_precision_prior=2.5,
        mean_prior=np.array([0.5, -1.0, 2.0]), degrees_of_freedom_prior=5.5,
        covariance_prior=covariance_prior, random_state=rng, init_params="random",
        max_iter=300, tol=1e-4).fit(frame)
    path = tmp_path / "m.npz"
    fastgmm.save(model, path)
    loaded = load(path)
    _assert_all_attributes_identical(loaded, model)
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_predicts_identically(loaded, model, frame)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bayesian_partial_fit_continues_identically(tmp_path, covariance_type):
    X, _ = make_mixture(n_samples=600, n_features=2, n_components=3, seed=5)
    model = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                    random_state=0)
    model.partial_fit(X[:200]).partial_fit(X[200:400])
    model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    _assert_all_attributes_identical(loaded, model)
    model.partial_fit(X[400:])
    loaded.partial_fit(X[400:])
    _assert_all_attributes_identical(loaded, model)
    _assert_predicts_identically(loaded, model, X)


def test_bayesian_stream_after_fit_and_no_stream(tmp_path):
    # fit leaves no stream (partial_fit then starts one at its batch); a
    # partial_fit after fit has one. Both round trips keep exactly that.
    model, X = _bayesian("diag")
    model.save(tmp_path / "a.npz")
    loaded = load(tmp_path / "a.npz")
    assert not hasattr(loaded, "_svi_state")
    model.partial_fit(X[:100])
    loaded.partial_fit(X[:100])
    _assert_all_attributes_identical(loaded, model)
    model.save(tmp_path / "b.npz")
    loaded = load(tmp_path / "b.npz")
    assert "svi_state" in _header_of(tmp_path / "b.npz")
    model.partial_fit(X[100:])
    loaded.partial_fit(X[100:])
    _assert_all_attributes_identical(loaded, model)


def test_bayesian_warm_start_continues_identically(tmp_path):
    model, X = _bayesian("full", max_iter=3, warm_start=True, tol=0.0)
    model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
        loaded.fit(X)
    _assert_all_attributes_identical(loaded, model)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bayesian_pipeline_round_trip_is_exact(tmp_path, dtype):
    X, _ = make_mixture(n_samples=400, n_features=3, n_components=3, dtype=dtype, seed=3)
    X = X * np.array([1.0, 100.0, 0.01], dtype=dtype) + np.array([5, -3, 0], dtype=dtype)
    pipe = make_pipeline(StandardScaler(), BayesianGaussianMixture(
        n_components=6, covariance_type="full", random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X)
    path = tmp_path / "m.npz"
    fastgmm.save(pipe, path)
    loaded = load(path)
    assert isinstance(loaded, Pipeline)
    assert [name for name, _ in loaded.steps] == ["standardscaler", "bayesiangaussianmixture"]
    assert type(loaded[1]) is BayesianGaussianMixture
    _assert_all_attributes_identical(loaded[1], pipe[1])
    assert loaded[0].mean_.tobytes() == pipe[0].mean_.tobytes()
    assert loaded[0].scale_.tobytes() == pipe[0].scale_.tobytes()
    _assert_predicts_identically(loaded, pipe, X)
    header = _header_of(path)
    assert header["format_version"] == 3 and "standardize" in header


def test_gaussian_mixture_files_keep_their_versions(tmp_path):
    # Files older fastgmm versions read: a GaussianMixture is still written
    # as version 1, with a scaler as version 2 (no 'estimator' field).
    gmm, X = _fitted("diag")
    gmm.save(tmp_path / "a.npz")
    header = _header_of(tmp_path / "a.npz")
    assert header["format_version"] == 1 and "estimator" not in header
    fastgmm.save(make_pipeline(StandardScaler(), GaussianMixture(2)).fit(X), tmp_path / "b.npz")
    header = _header_of(tmp_path / "b.npz")
    assert header["format_version"] == 2 and "estimator" not in header


def test_a_version_3_gaussian_mixture_file_loads(tmp_path):
    # Version 3 names its estimator; a GaussianMixture in a version-3 file
    # (with or without a scaler) loads as in versions 1 and 2.
    gmm, X = _fitted("full")
    header, arrays = _members(gmm)
    path = _write(tmp_path / "m.npz", dict(header, format_version=3,
                                           estimator="GaussianMixture"), arrays)
    loaded = load(path)
    assert type(loaded) is GaussianMixture
    _assert_identical(loaded, gmm)
    header, arrays = _pipeline_members()
    path = _write(tmp_path / "p.npz", dict(header, format_version=3,
                                           estimator="GaussianMixture"), arrays)
    assert isinstance(load(path), Pipeline)


def test_bayesian_saved_through_the_estimator_method_and_the_function(tmp_path):
    model, _ = _bayesian("tied")
    fastgmm.save(model, tmp_path / "a.npz")
    model.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_unfitted_bayesian_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        BayesianGaussianMixture(n_components=2).save(tmp_path / "m.npz")
    with pytest.raises(NotFittedError):
        fastgmm.save(make_pipeline(StandardScaler(), BayesianGaussianMixture()),
                     tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_bayesian_with_parameters_changed_after_fitting_is_not_saved(tmp_path):
    # A file load would refuse is not written.
    model, _ = _bayesian("diag")
    model.set_params(mean_prior=np.zeros(5))
    with pytest.raises(ValueError, match="mean_prior"):
        model.save(tmp_path / "m.npz")
    model, _ = _bayesian("spherical")
    model.set_params(covariance_prior=np.ones(3))
    with pytest.raises(ValueError, match="covariance_prior"):
        model.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------- malformed BayesianGaussianMixture files


def _bayesian_members(covariance_type="full", stream=False, **params):
    model, X = _bayesian(covariance_type, **params)
    if stream:
        model.partial_fit(X[:100])
    return _members(model)


def test_bayesian_kind_must_be_named_and_known(tmp_path):
    header, arrays = _bayesian_members()
    path = tmp_path / "m.npz"
    _write(path, {k: v for k, v in header.items() if k != "estimator"}, arrays)
    _refused(path, "estimator")
    for kind in ("KMeans", 3, None, ["BayesianGaussianMixture"]):
        _write(path, dict(header, estimator=kind), arrays)
        _refused(path, "estimator")
    # The other kind's name: the parameters or the arrays give it away.
    _write(path, dict(header, estimator="GaussianMixture"), arrays)
    _refused(path, "unexpected array|bad estimator parameters")
    for version in (1, 2):
        _write(path, dict(header, format_version=version), arrays)
        _refused(path, "unexpected array|bad estimator parameters|standardize")


@pytest.mark.parametrize("field", ["weight_concentration_prior_", "mean_precision_prior_",
                                   "degrees_of_freedom_prior_"])
@pytest.mark.parametrize("value", ["missing", "x", None, True, 0, -1.0, float("nan"),
                                   float("inf"), 10**400, [1.0],
                                   {"$scalar": "float16", "value": 1.0},
                                   {"$scalar": "float64"},
                                   {"$scalar": "float32", "value": 1e300}])
def test_bayesian_prior_scalars(tmp_path, field, value):
    header, arrays = _bayesian_members()
    if value == "missing":
        del header[field]
    else:
        header[field] = value
    _refused(_write(tmp_path / "m.npz", header, arrays), field)


def test_bayesian_degrees_of_freedom_above_n_features_minus_one(tmp_path):
    header, arrays = _bayesian_members()          # 3 features
    path = tmp_path / "m.npz"
    _write(path, dict(header, degrees_of_freedom_prior_=2), arrays)
    _refused(path, "degrees_of_freedom_prior_")
    _write(path, dict(header, degrees_of_freedom_prior_=2.5), arrays)
    assert load(path).degrees_of_freedom_prior_ == 2.5
    header, arrays = _bayesian_members("tied")
    _write(path, dict(header, degrees_of_freedom_={"$scalar": "float64", "value": 1.5}),
           arrays)
    _refused(path, "degrees_of_freedom_")
    arrays_full = _bayesian_members("full")[1]
    arrays_full["degrees_of_freedom_"] = np.full(5, 2.0)
    _write(path, _bayesian_members("full")[0], arrays_full)
    _refused(path, "degrees_of_freedom_")


@pytest.mark.parametrize("covariance_type, field", [("tied", "degrees_of_freedom_"),
                                                    ("spherical", "covariance_prior_")])
@pytest.mark.parametrize("value", ["missing", "x", -1.0, float("nan"), float("inf"),
                                   {"$scalar": "int64", "value": 3}])
def test_bayesian_scalars_of_one_covariance_type(tmp_path, covariance_type, field, value):
    header, arrays = _bayesian_members(covariance_type)
    if value == "missing":
        del header[field]
    else:
        header[field] = value
    _refused(_write(tmp_path / "m.npz", header, arrays), field)


def _bayesian_array_names(covariance_type, stream):
    names = ["weight_concentration_", "mean_precision_", "mean_prior_"]
    if covariance_type != "tied":
        names.append("degrees_of_freedom_")
    if covariance_type != "spherical":
        names.append("covariance_prior_")
    if stream:
        names += ["svi_nk", "svi_first", "svi_second"]
    return names


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_bayesian_arrays_missing_misshapen_or_not_finite(tmp_path, covariance_type, prior_type):
    header, arrays = _bayesian_members(covariance_type, stream=True,
                                       weight_concentration_prior_type=prior_type)
    path = tmp_path / "m.npz"
    names = _bayesian_array_names(covariance_type, True)
    assert set(names) <= set(arrays)
    for name in names:
        _write(path, header, {k: v for k, v in arrays.items() if k != name})
        _refused(path, rf"missing array\(s\) \['{name}'\]")
        array = arrays[name]
        _write(path, header, dict(arrays, **{name: np.concatenate([array, array[:1]])}))
        _refused(path, rf"{name} has shape .* expected")
        _write(path, header, dict(arrays, **{name: array[..., :-1]}))
        _refused(path, rf"{name} has shape .* expected")
        for value in (np.nan, np.inf, -np.inf):
            bad = array.copy()
            bad.reshape(-1)[-1] = value
            _write(path, header, dict(arrays, **{name: bad}))
            _refused(path, f"{name} contains NaN or infinite")
        _write(path, header, dict(arrays, **{name: array.astype(np.int64)}))
        _refused(path, f"{name} has dtype")


@pytest.mark.parametrize("name", ["weight_concentration_", "mean_precision_",
                                  "degrees_of_freedom_", "svi_nk", "svi_first",
                                  "svi_second"])
def test_bayesian_posterior_arrays_are_float64(tmp_path, name):
    header, arrays = _bayesian_members("diag", stream=True)
    arrays[name] = arrays[name].astype(np.float32)
    _refused(_write(tmp_path / "m.npz", header, arrays), f"{name} has dtype float32")


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("name", ["weight_concentration_", "mean_precision_"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_bayesian_posteriors_must_be_positive(tmp_path, prior_type, name, value):
    header, arrays = _bayesian_members("diag", weight_concentration_prior_type=prior_type)
    bad = arrays[name].copy()
    bad.reshape(-1)[0] = value
    arrays[name] = bad
    _refused(_write(tmp_path / "m.npz", header, arrays), f"{name} must be positive")


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_bayesian_weights_must_match_the_weight_posterior(tmp_path, prior_type):
    header, arrays = _bayesian_members("full", weight_concentration_prior_type=prior_type)
    arrays["weight_concentration_"] = arrays["weight_concentration_"][..., ::-1].copy()
    _refused(_write(tmp_path / "m.npz", header, arrays),
             "weights_ does not match weight_concentration_")


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_bayesian_covariance_prior_must_be_positive_semidefinite(tmp_path, covariance_type):
    header, arrays = _bayesian_members(covariance_type)
    path = tmp_path / "m.npz"
    if covariance_type == "spherical":
        _write(path, dict(header, covariance_prior_=-2.0), arrays)
    else:
        prior = arrays["covariance_prior_"].copy()
        if covariance_type == "diag":
            prior[1] = -1.0
        else:
            prior[:] = -np.eye(3)
        _write(path, header, dict(arrays, covariance_prior_=prior))
    _refused(path, "covariance_prior_")
    if covariance_type == "full":
        prior = arrays["covariance_prior_"].copy()
        prior[0, 2] += 1.0
        _write(path, header, dict(arrays, covariance_prior_=prior))
        _refused(path, "covariance_prior_ is not symmetric")


@pytest.mark.parametrize("svi_state, match", [
    ("x", "svi_state"), ({"rows": 100.0}, "svi_state"), ({"updates": 1}, "svi_state"),
    ({"rows": -1.0, "updates": 0}, "rows"), ({"rows": 0.0, "updates": 0}, "rows"),
    ({"rows": float("nan"), "updates": 0}, "rows"), ({"rows": "1", "updates": 0}, "rows"),
    ({"rows": 10**400, "updates": 0}, "rows"),
    ({"rows": 100.0, "updates": -1}, "updates"), ({"rows": 100.0, "updates": 1.5}, "updates"),
    ({"rows": 100.0, "updates": 2**64}, "updates"),
])
def test_bayesian_stream_state(tmp_path, svi_state, match):
    header, arrays = _bayesian_members("diag", stream=True)
    header["svi_state"] = svi_state
    _refused(_write(tmp_path / "m.npz", header, arrays), match)


def test_bayesian_stream_state_and_its_arrays_go_together(tmp_path):
    header, arrays = _bayesian_members("full", stream=True)
    path = tmp_path / "m.npz"
    _write(path, {k: v for k, v in header.items() if k != "svi_state"}, arrays)
    _refused(path, "unexpected array")
    plain = {k: v for k, v in arrays.items() if not k.startswith("svi_")}
    _write(path, header, plain)
    _refused(path, "missing array")
    counts = arrays["svi_nk"].copy()
    counts[0] = -0.5
    _write(path, header, dict(arrays, svi_nk=counts))
    _refused(path, "svi_nk must be non-negative")


@pytest.mark.parametrize("params, match", [
    (dict(mean_prior={"$array": "param_elsewhere"}), "refers to a missing array"),
    (dict(weights_init={"$array": "param_weights_init"}), "weights_init"),
    (dict(covariance_prior="big"), "bad estimator parameters"),
    (dict(weight_concentration_prior_type="pitman_yor"), "bad estimator parameters"),
    (dict(weight_concentration_prior=-1.0), "bad estimator parameters"),
    (dict(weights_init=None), "bad estimator parameters"),
])
def test_bayesian_bad_params(tmp_path, params, match):
    header, arrays = _bayesian_members("diag")
    header["params"].update(params)
    _refused(_write(tmp_path / "m.npz", header, arrays), match)


def test_bayesian_prior_parameter_arrays(tmp_path):
    model, _ = _bayesian("full", mean_prior=np.zeros(3), covariance_prior=np.eye(3))
    header, arrays = _members(model)
    assert header["params"]["mean_prior"] == {"$array": "param_mean_prior"}
    path = tmp_path / "m.npz"
    _write(path, header, dict(arrays, param_mean_prior=np.zeros(2)))
    _refused(path, "mean_prior")
    _write(path, header, dict(arrays, param_covariance_prior=np.eye(3)[:, :2].copy()))
    _refused(path, "covariance_prior")
    _write(path, header, dict(arrays, param_mean_prior=np.array([0.0, np.nan, 0.0])))
    _refused(path, "mean_prior")
    # A spherical model's covariance_prior is a number, never an array.
    model, _ = _bayesian("spherical")
    header, arrays = _members(model)
    header["params"]["covariance_prior"] = {"$array": "param_covariance_prior"}
    _refused(_write(path, header, dict(arrays, param_covariance_prior=np.ones(3))),
             "covariance_prior")


def test_bayesian_declared_sizes_bounded_by_the_header(tmp_path):
    # A member that declares more than the header's K and D allow is not read.
    header, arrays = _bayesian_members("diag", stream=True)
    path = _write(tmp_path / "m.npz", header, arrays)
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        npy, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 3)})
    _replace_member(path, "svi_first.npy", npy.getvalue() + bytes(8 * 3 * 10**6))
    _refused(path, "svi_first")


# ------------------------------------------------------------ what save writes, load reads
# (an outside audit: GaussianMixture.save wrote files load refused, over a
# good one; a long partial_fit stream's lower_bounds_ passed the header's
# 16 MiB, saved and then refused)

@pytest.mark.parametrize("change", [
    {"covariance_type": "diag"}, {"tol": -1.0}, {"max_iter": -5}, {"n_init": 0},
    {"init_params": "bogus"}, {"reg_covar": float("nan")}, {"warm_start": "yes"},
    {"verbose_interval": 0},
])
def test_save_refuses_a_gaussian_mixture_load_would_refuse(tmp_path, change):
    gmm, X = _fitted()
    path = tmp_path / "model.npz"
    gmm.save(path)
    before = path.read_bytes()
    gmm.set_params(**change)
    with pytest.raises(ValueError, match="cannot be saved: load would refuse"):
        gmm.save(path)
    assert path.read_bytes() == before     # the good file is left as it was
    load(path)


@pytest.mark.parametrize("kind", ["gmm", "bayesian"])
def test_long_lower_bounds_are_an_array_member_and_round_trip(tmp_path, kind):
    model = _fitted()[0] if kind == "gmm" else _bayesian()[0]
    # a million partial_fit updates: 20 MB of JSON, more than load reads
    model.lower_bounds_ = list(np.random.default_rng(0).standard_normal(1_000_000))
    model.lower_bounds_[7] = float("-inf")
    path = tmp_path / "model.npz"
    model.save(path)
    header = _header_of(path)
    assert header["lower_bounds_"] == {"$array": "lower_bounds_", "length": 1_000_000}
    loaded = load(path)
    assert type(loaded.lower_bounds_) is list and type(loaded.lower_bounds_[0]) is float
    assert np.array_equal(loaded.lower_bounds_, model.lower_bounds_)
    # beside every other optional member: a scaler, a stream's state, a RandomState
    from sklearn.preprocessing import StandardScaler as Scaler
    X = np.random.default_rng(1).standard_normal((200, 3))
    cls = GaussianMixture if kind == "gmm" else fastgmm.BayesianGaussianMixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline = make_pipeline(Scaler(), cls(n_components=2,
                                               random_state=np.random.RandomState(0)))
        pipeline.fit(X)
        pipeline[-1].partial_fit(X[:50])
    pipeline[-1].lower_bounds_ = list(np.linspace(-3.0, 1.0, 20_000))
    fastgmm.save(pipeline, path)
    assert load(path)[-1].lower_bounds_ == pipeline[-1].lower_bounds_
    # up to 10,000 they stay a JSON list, as files were before
    model.lower_bounds_ = model.lower_bounds_[:10_000]
    model.save(path)
    assert isinstance(_header_of(path)["lower_bounds_"], list)
    assert load(path).lower_bounds_ == model.lower_bounds_


@pytest.mark.parametrize("bounds, member, match", [
    ({"$array": "lower_bounds_", "length": 5}, np.zeros(4), "shape"),
    ({"$array": "lower_bounds_", "length": 5}, np.zeros(5, dtype=np.float32), "dtype"),
    ({"$array": "lower_bounds_", "length": -1}, np.zeros(0), "lower_bounds_"),
    ({"$array": "means_", "length": 3}, None, "lower_bounds_"),
    ({"$array": "lower_bounds_", "length": 10**30}, np.zeros(3), "lower_bounds_"),
    ({"$array": "lower_bounds_", "length": 3}, None, "lower_bounds_"),
    ({"$array": "lower_bounds_"}, np.zeros(3), "lower_bounds_"),
])
def test_hostile_lower_bounds_member(tmp_path, bounds, member, match):
    header, arrays = _members(_fitted()[0])
    header["lower_bounds_"] = bounds
    if member is not None:
        arrays["lower_bounds_"] = member
    _refused(_write(tmp_path / "model.npz", header, arrays), match)


def test_save_refuses_a_header_load_would_not_read(tmp_path):
    gmm, X = _fitted()
    path = tmp_path / "model.npz"
    gmm.save(path)
    before = path.read_bytes()
    # 20,000 features named by 1,000 characters each: 20 MB of names
    names = ["f" * 1000 + str(j) for j in range(20_000)]
    gmm.feature_names_in_ = np.asarray(names, dtype=object)
    gmm.n_features_in_ = len(names)
    with pytest.raises(ValueError, match="more than load reads"):
        gmm.save(path)
    assert path.read_bytes() == before


def test_save_refuses_a_parameter_json_cannot_hold(tmp_path):
    # a Generator set as random_state after the fit: a TypeError from json before
    gmm, X = _fitted()
    gmm.set_params(random_state=np.random.default_rng(0))
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match="cannot be saved: a parameter is not a number, "
                                         "text, array, None or a RandomState"):
        gmm.save(path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_load_of_a_text_mode_file_says_to_open_it_in_binary(tmp_path):
    gmm, X = _fitted()
    path = tmp_path / "model.npz"
    gmm.save(path)
    with open(path, "r", encoding="latin-1") as f:
        with pytest.raises(TypeError, match=r"binary file object \(open\(path, 'rb'\)\)"):
            load(f)
    with open(path, "r", encoding="utf-8") as f:   # UnicodeDecodeError before
        with pytest.raises(TypeError, match="text mode"):
            load(f)


@pytest.mark.parametrize("warm_start", [False, True])
def test_save_after_n_components_changed_says_what_to_do(tmp_path, warm_start):
    # an outside audit: with warm_start, "fit again" kept the fitted 3
    # components (as scikit-learn's warm start does), so the advice looped
    gmm, X = _fitted("diag", warm_start=warm_start)
    gmm.set_params(n_components=4)
    if warm_start:
        gmm.fit(X)
        assert gmm.means_.shape[0] == 3
    with pytest.raises(ValueError, match="n_components is 4 but the model was fitted with 3 "
                                         "components") as info:
        gmm.save(tmp_path / "m.npz")
    assert ("warm_start=False" in str(info.value)) == warm_start
    assert not (tmp_path / "m.npz").exists()
