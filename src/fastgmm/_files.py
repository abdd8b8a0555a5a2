"""Writing files so that a failure never costs the previous contents.

Every file fastgmm writes (model files, the command line's CSV outputs and
figures) goes through :func:`atomic_write`:

- A regular file (or a path that does not exist yet) is written to a
  temporary file in the destination's own folder, flushed and fsync'ed, then
  renamed over the destination with ``os.replace``: a reader sees the old
  file or the new one, never a part of it; a full disk, an exception or
  Ctrl-C mid-write leaves the old file as it was.
- The new file gets the mode ``open()`` would give it: the existing file's
  mode when one is replaced, else 0o666 less the umask (as ``np.save``),
  not ``mkstemp``'s 0600.
- A symbolic link is written through: its target is replaced, the link stays.
- A destination that is not a regular file (a character device such as
  /dev/null, a FIFO) is opened and written as a stream: it is never replaced
  by a regular file. A directory is refused.
- Paths are taken as ``open()`` takes them, and errors name them as given
  (never the temporary file): an empty path, a name ending in a slash and a
  file ``open()`` could not write (``os.access``) are refused; bytes paths
  are decoded with ``os.fsdecode``.

:func:`same_file` and :func:`check_distinct` compare resolved files, not
strings, so that an output never lands on an input.
"""

import errno
import os
import secrets
import stat
from contextlib import contextmanager

__all__ = ["atomic_write", "same_file", "check_distinct", "is_stream", "unwritable_reason"]


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where directories
    cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Bytes of the target's name kept in its temporary file's name: with the
# 18 added, within the 255 that common file systems allow, however long the
# target's own (legal) name is.
_KEPT_NAME_BYTES = 200


def _temporary_name(name):
    """'.{name}.{12 hex digits}.tmp', the name cut to _KEPT_NAME_BYTES bytes."""
    while len(os.fsencode(name)) > _KEPT_NAME_BYTES:
        name = name[:-1]
    return f".{name}.{secrets.token_hex(6)}.tmp"


@contextmanager
def atomic_write(path, binary=True, encoding="utf-8"):
    """Yield a file object open for writing; its contents replace `path`
    only when the block completes without an exception.

    `path` is resolved first (symbolic links followed). Raises
    IsADirectoryError for a directory; a device or FIFO is written as a
    stream (there is nothing to keep atomic there).
    """
    # Errors name `path` as the caller gave it, as open() would: never the
    # temporary file, and bytes paths are taken as os.fsdecode reads them.
    given = os.fsdecode(os.fspath(path))
    if not given:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), given)
    target = os.path.realpath(given)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), given)
    if given.endswith(os.sep) or (os.altsep and given.endswith(os.altsep)):
        # a folder's name (realpath drops the slash: a file "newdir" was written)
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), given)
    if st is not None and stat.S_ISREG(st.st_mode) and not os.access(target, os.W_OK):
        # open() would refuse a file it may not write; a rename would not
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), given)
    if st is not None and not stat.S_ISREG(st.st_mode):
        # A device or FIFO: write into it, never over it.
        with open(target, "wb" if binary else "w",
                  **({} if binary else {"encoding": encoding, "newline": ""})) as f:
            yield f
        return

    directory = os.path.dirname(target)
    tmp_path = os.path.join(directory, _temporary_name(os.path.basename(target)))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp_path, flags, 0o666)    # the umask applies, as for open()
    except OSError as error:
        # a missing or read-only folder: named as the caller named the file
        raise type(error)(error.errno, error.strerror, given) from None
    try:
        if st is not None:
            # Replacing a file: keep its permission bits, as writing into it would.
            try:
                os.chmod(tmp_path, stat.S_IMODE(st.st_mode))
            except OSError:
                pass
        with os.fdopen(fd, "wb" if binary else "w",
                       **({} if binary else {"encoding": encoding, "newline": ""})) as f:
            fd = None
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def is_stream(path):
    """An existing device or FIFO (written into as a stream, never replaced)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def unwritable_reason(path):
    """Why `path` cannot take an output (a directory there, its folder missing
    or not writable: atomic_write's temporary file goes there), or None;
    an existing device or FIFO is written into and needs nothing more. For
    checks made before long work, not after it."""
    target = os.path.realpath(path)          # a symlink is written through
    if os.path.isdir(target):
        return "is a directory"
    if is_stream(target):
        return None
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        return f"folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"folder {folder} is not writable"
    return None


def same_file(a, b):
    """Whether paths `a` and `b` name the same file (links, '..' and hard
    links resolved); a path that does not exist yet is compared by its
    resolved name."""
    a, b = os.fspath(a), os.fspath(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(inputs, outputs):
    """Raise ValueError when an output is one of the inputs or another output.

    `inputs` and `outputs` map a description (such as "--out") to a path or
    None; None and "-" (stdout/stdin) are skipped.
    """
    def real(items):
        return [(name, p) for name, p in items.items() if p is not None and p != "-"]

    ins, outs = real(inputs), real(outputs)
    for i, (out_name, out_path) in enumerate(outs):
        for in_name, in_path in ins:
            if same_file(out_path, in_path):
                raise ValueError(
                    f"{out_name} {out_path} is the same file as {in_name} {in_path}: "
                    "it would be overwritten; choose another output path"
                )
        for other_name, other_path in outs[:i]:
            if same_file(out_path, other_path):
                raise ValueError(
                    f"{out_name} {out_path} and {other_name} {other_path} are the same "
                    "file: choose a different path for each output"
                )
