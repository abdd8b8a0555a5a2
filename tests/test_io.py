"""GaussianMixture.save / fastgmm.load: exact round trip, and every refusal."""

import io
import json
import os
import stat
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastgmm
from fastgmm import GaussianMixture, ModelFileError, load
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
    assert {"load", "ModelFileError"} <= set(fastgmm.__all__)


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


@pytest.mark.parametrize("version", [2, 0, "1", None])
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
    # The number of components is read from means_: one more row there makes
    # weights_ the array that disagrees.
    blamed = "weights_" if name == "means_" else name
    _refused(_write(tmp_path / "m.npz", header, arrays), rf"{blamed} has shape .* expected")


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


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


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
    gmm.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    _assert_identical(load(path), gmm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
