"""Atomic file writes: a crash or an error never leaves a half-written file in place of a good one."""
import os
import tempfile


def atomic_write(path, content):
    """Write `content` (bytes, str, or a function that writes to a binary file object) to `path`:
    into a temp file in the same directory, fsync, then rename over `path`. On any failure the
    previous file is untouched and the temp file is removed."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a directory; give a file name")
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=d)
    try:
        os.fchmod(fd, 0o666 & ~_umask())   # mkstemp makes 0600; a plain open() would not
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
