"""fastgmm._files: atomic writes that never cost the previous file, and
outputs that never land on an input."""

import os
import stat

import pytest

from fastgmm._files import atomic_write, check_distinct, same_file


def test_new_file_follows_the_umask(tmp_path, umask_022):
    path = tmp_path / "out.txt"
    with atomic_write(path, binary=False) as f:
        f.write("a\n")
    assert path.read_text() == "a\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_replacing_keeps_the_existing_mode(tmp_path, umask_022):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old contents")
    with pytest.raises(OSError, match="disk full"):
        with atomic_write(path) as f:
            f.write(b"partial")
            raise OSError(28, "disk full")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_keyboard_interrupt_mid_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as f:
            f.write(b"partial")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_symlink_is_written_through(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with atomic_write(link, binary=False) as f:
        f.write("new")
    assert link.is_symlink()
    assert target.read_text() == "new"


def test_device_is_written_as_a_stream_not_replaced():
    before = os.stat(os.devnull)
    with atomic_write(os.devnull) as f:
        f.write(b"discarded")
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode)
    assert (before.st_ino, before.st_rdev) == (after.st_ino, after.st_rdev)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_written_as_a_stream(tmp_path):
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    with atomic_write(fifo) as f:
        f.write(b"streamed")
    reader.join(10)
    assert received == [b"streamed"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        with atomic_write(tmp_path):
            pass


def test_same_file_resolves_links_and_dots(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.csv"
    link.symlink_to(a)
    hard = tmp_path / "hard.csv"
    os.link(a, hard)
    assert same_file(a, tmp_path / "sub" / ".." / "a.csv")
    assert same_file(a, link)
    assert same_file(a, hard)
    assert not same_file(a, tmp_path / "b.csv")
    assert same_file(tmp_path / "new.csv", tmp_path / "sub" / ".." / "new.csv")


def test_check_distinct(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("1\n")
    with pytest.raises(ValueError, match="same file as data"):
        check_distinct({"data": data}, {"--out": tmp_path / "." / "data.csv"})
    with pytest.raises(ValueError, match="--labels .* and --out .* are the same file"):
        check_distinct({"data": data}, {"--out": tmp_path / "m.npz",
                                        "--labels": tmp_path / "m.npz"})
    check_distinct({"data": data}, {"--out": tmp_path / "m.npz", "--labels": "-",
                                    "--proba": None})


@pytest.mark.parametrize("name", ["m" * 250 + ".npz", "é" * 120 + ".csv", "x" * 255])
def test_a_long_legal_name_is_written(tmp_path, name):
    # the temporary name adds 18 characters: past 237 it was too long for the
    # file system (ENAMETOOLONG) although the target's own name is legal
    path = tmp_path / name
    with atomic_write(path) as f:
        f.write(b"one")
    with atomic_write(path) as f:
        f.write(b"two")
    assert path.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == [name]


# ---------------------------------------- paths as open() would take them
# (an outside audit of GaussianMixture.save, which writes through atomic_write)


def _fitted_model():
    import numpy as np

    from fastgmm import GaussianMixture

    X = np.random.default_rng(0).standard_normal((60, 2))
    return GaussianMixture(2, random_state=0).fit(X)


def test_save_to_dev_null_writes_into_it():
    if not os.path.exists(os.devnull) or os.name != "posix":
        pytest.skip("no /dev/null")
    _fitted_model().save(os.devnull)      # struct.error before: zip offsets from tell()
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_trailing_slash_names_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError):
        _fitted_model().save(str(tmp_path / "newdir") + os.sep)
    assert os.listdir(tmp_path) == []       # a file "newdir" was written before


def test_an_empty_path_is_refused_as_open_refuses_it():
    with pytest.raises(FileNotFoundError) as info:
        with atomic_write(""):
            pass
    assert info.value.filename == ""


def test_a_missing_folder_is_named_as_given(tmp_path):
    path = str(tmp_path / "nodir" / "x.npz")
    with pytest.raises(FileNotFoundError) as info:
        _fitted_model().save(path)
    assert info.value.filename == path and ".tmp" not in str(info.value)


def test_a_bytes_path_is_written(tmp_path):
    from fastgmm import load

    path = os.fsencode(str(tmp_path / "m.npz"))
    gmm = _fitted_model()
    gmm.save(path)
    assert load(path).means_.tobytes() == gmm.means_.tobytes()


def test_a_file_open_may_not_write_is_kept(tmp_path, monkeypatch):
    # As root every file is writable, so the check is driven through
    # os.access: a rename would replace a read-only file that open() refuses.
    import fastgmm._files as files

    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    real_access = os.access
    monkeypatch.setattr(files.os, "access",
                        lambda p, mode: False if os.fspath(p) == str(path) else
                        real_access(p, mode))
    with pytest.raises(PermissionError) as info:
        _fitted_model().save(path)
    assert info.value.filename == str(path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.npz"]
