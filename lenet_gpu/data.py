"""MNIST data: IDX reader, dataset directory resolution, verified download, preprocessing.

Standard library + NumPy only. Every problem with a data file or directory raises
`DataError` with a message that names the file and says what is wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .atomic import atomic_write

__all__ = [
    "DataError",
    "read_idx",
    "MNIST_FILES",
    "MNIST_SHA256",
    "MNIST_MIRRORS",
    "find_idx",
    "default_data_dir",
    "resolve_data_dir",
    "load_mnist",
    "download_mnist",
    "dataset_record",
    "preprocess",
    "one_hot",
]


class DataError(ValueError):
    """A data file or directory is missing, malformed or fails verification."""


# ----------------------------------------------------------------------------- IDX

# IDX type codes; all multi-byte types are big-endian in the file.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


# No IDX file of ours comes near this; a header that declares more is refused before any
# allocation (MNIST's largest file holds 47 MB).
MAX_IDX_BYTES = 1 << 30


def _open_content(path: Path):
    """A binary stream of the file's content, gunzipped if it starts with the gzip magic."""
    try:
        f = open(path, "rb")
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from e
    if f.read(2) == _GZIP_MAGIC:
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    f.seek(0)
    return f, f


def _read(stream, n: int, path) -> bytes:
    """Up to n bytes from the stream; gzip problems (cut stream, bad CRC) as DataError."""
    try:
        return stream.read(n)
    except EOFError as e:
        raise DataError(f"{path}: truncated gzip stream ({e})") from e
    except (OSError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip stream ({e})") from e


def read_idx(path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip, detected by magic bytes) into a native-endian array.

    The header is read and checked first; the payload is then read into an array of exactly
    the declared size, so a file never makes us allocate more than its header declares (and
    at most max_bytes), however far a gzip stream would inflate."""
    path = Path(path)
    stream, raw = _open_content(path)
    with raw, stream:
        head = _read(stream, 4, path)
        if len(head) < 4:
            raise DataError(f"{path}: truncated header ({len(head)} bytes, IDX needs at least 4)")
        if head[0] != 0 or head[1] != 0:
            raise DataError(
                f"{path}: bad magic {head.hex()} (an IDX file starts with two zero bytes)"
            )
        code, ndim = head[2], head[3]
        if code not in _IDX_DTYPES:
            known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
            raise DataError(f"{path}: unknown dtype code 0x{code:02x} (known: {known})")
        if ndim == 0:
            raise DataError(f"{path}: bad header, ndim is 0")
        dim_bytes = _read(stream, 4 * ndim, path)
        if len(dim_bytes) < 4 * ndim:
            raise DataError(f"{path}: truncated header ({4 + len(dim_bytes)} bytes, {ndim} "
                            f"dimensions need {4 + 4 * ndim})")
        dims = tuple(int.from_bytes(dim_bytes[4 * i:4 * i + 4], "big") for i in range(ndim))
        dtype = _IDX_DTYPES[code]
        expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
        # what the file on disk can hold: its size raw, deflate's ~1032:1 at most compressed
        size = os.fstat(raw.fileno()).st_size
        can_hold = size - 4 - 4 * ndim if stream is raw else 1032 * size
        if expected > min(max_bytes, max(can_hold, 0)):
            why = (f"the file holds only {size:,} bytes" if expected <= max_bytes
                   else f"more than the {max_bytes:,} bytes allowed")
            if stream is raw:
                raise DataError(f"{path}: truncated payload: dims {dims} of {dtype.name} need "
                                f"{expected} bytes, file has {max(can_hold, 0)}")
            raise DataError(f"{path}: header declares dims {dims} of {dtype.name} "
                            f"({expected:,} bytes): {why}")
        payload = np.empty(expected, np.uint8)     # filled in chunks: no second copy
        got = 0
        while got < expected:
            chunk = _read(stream, min(expected - got, 1 << 24), path)
            if not chunk:
                break
            payload[got:got + len(chunk)] = np.frombuffer(chunk, np.uint8)
            got += len(chunk)
        if got < expected:
            raise DataError(f"{path}: truncated payload: dims {dims} of {dtype.name} need "
                            f"{expected} bytes, file has {got}")
        tail = _read(stream, 1 << 20, path)       # also makes gzip check its CRC
        if tail:
            more = "" if len(tail) < 1 << 20 else " or more"
            raise DataError(f"{path}: {len(tail)}{more} trailing bytes after the {expected} "
                            f"bytes that dims {dims} of {dtype.name} need")
    arr = payload.view(dtype)
    return arr.astype(dtype.newbyteorder("="), copy=not dtype.isnative).reshape(dims)


def _file_sha256(path: Path) -> str:
    """sha256 of a file's decompressed content, read in chunks (bounded memory)."""
    stream, raw = _open_content(path)
    h = hashlib.sha256()
    with raw, stream:
        try:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                h.update(chunk)
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip stream ({e})") from e
    return h.hexdigest()


# ----------------------------------------------------------------------------- MNIST files

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# sha256 of the *decompressed* files (the .gz wrappers differ between mirrors).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",  # plain http is fine: content is sha256-checked
]


def _candidates(name: str) -> list[str]:
    names = [name, name + ".gz"]
    alt = name.replace("-idx", ".idx", 1)  # train-images.idx3-ubyte, as some archives spell it
    if alt != name:
        names += [alt, alt + ".gz"]
    return names


def find_idx(directory, name: str) -> Path:
    """Path of `name`, `name.gz` (or the dotted spelling) in `directory`."""
    directory = Path(directory)
    candidates = _candidates(name)
    for c in candidates:
        p = directory / c
        if p.is_file():
            return p
    where = str(directory) if directory.is_dir() else f"{directory} (directory does not exist)"
    raise DataError(f"{name}: file not found in {where}; looked for {', '.join(candidates)}")


def default_data_dir() -> Path:
    """Per-user cache directory for MNIST."""
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lenet-gpu" / "mnist"


def resolve_data_dir(data_dir=None) -> Path:
    """The argument if given, else $LENET_GPU_DATA if set and non-empty, else the cache dir."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("LENET_GPU_DATA")
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def load_mnist(data_dir=None, download: bool = False):
    """Load MNIST as uint8 arrays: (x_train, y_train, x_test, y_test).

    Images are (N, 28, 28), labels (N,). Local files are validated structurally but not
    hashed (checksums are verified on download).
    """
    directory = resolve_data_dir(data_dir)

    def locate():
        found, missing = {}, []
        for key, name in MNIST_FILES.items():
            try:
                found[key] = find_idx(directory, name)
            except DataError:
                missing.append(name)
        return found, missing

    found, missing = locate()
    if missing and download:
        download_mnist(directory)
        found, missing = locate()
    if missing:
        raise DataError(
            f"MNIST files not found in {directory}: missing "
            + ", ".join(f"{m}[.gz]" for m in missing)
            + ". Point to a directory that has them with --data DIR or LENET_GPU_DATA=DIR, "
            "or fetch them with --download (load_mnist(download=True))."
        )

    out = []
    for split in ("train", "test"):
        ipath, lpath = found[f"{split}_images"], found[f"{split}_labels"]
        images, labels = read_idx(ipath), read_idx(lpath)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"{ipath}: expected 3-D uint8 images, got shape {images.shape} {images.dtype}"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(
                f"{lpath}: expected 1-D uint8 labels, got shape {labels.shape} {labels.dtype}"
            )
        if len(images) == 0:
            raise DataError(f"{ipath}: holds no images (the {split} split is empty)")
        if len(images) != len(labels):
            raise DataError(
                f"count mismatch: {ipath} has {len(images)} images "
                f"but {lpath} has {len(labels)} labels"
            )
        if labels.size and labels.max() > 9:
            bad = int(np.argmax(labels > 9))
            raise DataError(
                f"{lpath}: label out of range 0..9: label[{bad}] = {int(labels[bad])}"
            )
        out += [images, labels]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise DataError(f"image size mismatch: {found['train_images']} holds "
                        f"{'x'.join(map(str, out[0].shape[1:]))} images but "
                        f"{found['test_images']} {'x'.join(map(str, out[2].shape[1:]))}")
    return tuple(out)


def dataset_record(data_dir=None) -> dict:
    """What identifies the MNIST files in data_dir (resolved like load_mnist), for a run's
    record: the sha256 of each file's content and whether all four are the official ones. No
    path: a record says which data, not where one machine kept them."""
    directory = resolve_data_dir(data_dir)
    sha = {name: _file_sha256(find_idx(directory, name)) for name in MNIST_FILES.values()}
    return {"name": "MNIST", "official": all(sha[n] == MNIST_SHA256.get(n) for n in sha),
            "sha256": sha}


# ----------------------------------------------------------------------------- download


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The official .gz files are 9.9 MB, 29 KB, 1.6 MB and 4.5 KB; a mirror's own gzip wrapper
# may differ a little. More than this from one URL is not MNIST.
MAX_DOWNLOAD_BYTES = 16 << 20


def _fetch(url: str, timeout: float, deadline: float, max_bytes: int) -> bytes:
    """The body at url: `timeout` seconds per read, the whole by time.monotonic() `deadline`,
    at most max_bytes (a mirror that trickles or streams forever is cut off)."""
    req = urllib.request.Request(url, headers={"User-Agent": "lenet-gpu (python urllib)"})
    chunks, size = [], 0
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not finished within the download deadline ({size:,} bytes so far)")
            chunk = resp.read1(1 << 16)        # whatever has arrived: a trickle cannot stall it
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_bytes:
                raise ValueError(f"more than {max_bytes:,} bytes: not an MNIST file")
            chunks.append(chunk)


def download_mnist(dest=None, mirrors=None, timeout: float = 30.0, log=print,
                   deadline: float = 600.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Download the four MNIST files into `dest` (resolved like load_mnist), verifying sha256.

    Files already present whose decompressed content matches the checksum are skipped.
    Each file is written atomically as `dest/<name>.gz` only after it verifies; an invalid
    file already present is replaced in place. `timeout`: seconds per network read;
    `deadline`: seconds for each file from one mirror; `max_bytes`: the most one file may be.
    """
    dest = resolve_data_dir(dest)
    mirrors = list(MNIST_MIRRORS if mirrors is None else mirrors)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{dest}: cannot create data directory ({e})") from e

    for name in MNIST_FILES.values():
        expected = MNIST_SHA256[name]
        target = dest / (name + ".gz")
        try:
            existing = find_idx(dest, name)
        except DataError:
            existing = None
        if existing is not None:
            try:
                ok = _file_sha256(existing) == expected
            except DataError:
                ok = False
            if ok:
                log(f"{name}: already present ({existing})")
                continue
            log(f"{name}: {existing} fails verification, downloading again")
            target = existing

        failures = []
        for base in mirrors:
            url = base + name + ".gz"
            log(f"{name}: downloading {url}")
            try:
                gz = _fetch(url, timeout, time.monotonic() + deadline, max_bytes)
                content = gzip.decompress(gz)
            except (OSError, EOFError, zlib.error, http.client.HTTPException, ValueError) as e:
                reason = f"{type(e).__name__}: {e}"
            else:
                got = _sha256(content)
                if got == expected:
                    # Keep the .gz as downloaded; a raw file being replaced stays raw.
                    data = gz if target.name.endswith(".gz") else content
                    try:
                        atomic_write(target, data)
                    except OSError as e:
                        raise DataError(f"{target}: cannot write file ({e})") from e
                    log(f"{name}: saved {target} (sha256 ok)")
                    break
                reason = f"checksum mismatch (sha256 {got}, expected {expected})"
            more = "; trying next mirror" if base != mirrors[-1] else ""
            log(f"{name}: {url} failed: {reason}{more}")
            failures.append(f"{url}: {reason}")
        else:
            detail = "; ".join(failures) if failures else "no mirrors given"
            raise DataError(f"{name}: download failed from every mirror: {detail}")
    return dest


# ----------------------------------------------------------------------------- arrays

# scale -> (multiplier, offset) applied to x/255; the offset is the background value.
_SCALES = {
    "unit": (1.0, 0.0),
    "paper": (1.275, -0.1),  # LeCun 1998: background -0.1, foreground 1.175
    "standard": (1.0 / 0.3081, -0.1307 / 0.3081),  # MNIST train mean/std
}


def preprocess(images, scale: str = "unit", pad: int = 0) -> np.ndarray:
    """uint8 (N,H,W) or (N,1,H,W) -> float32 (N,1,H+2*pad,W+2*pad), padded with background."""
    if scale not in _SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(_SCALES)}")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"pad must be a non-negative integer, got {pad!r}")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected images of shape (N,H,W) or (N,1,H,W), got {images.shape}")
    mul, bg = _SCALES[scale]
    n, _, h, w = images.shape
    out = np.full((n, 1, h + 2 * pad, w + 2 * pad), bg, dtype=np.float32)
    x = images.astype(np.float32) / np.float32(255.0)
    out[:, :, pad : pad + h, pad : pad + w] = x * np.float32(mul) + np.float32(bg)
    return out


def one_hot(labels, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Integer labels of any shape -> shape + (num_classes,) one-hot array."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}"
        )
    return np.eye(num_classes, dtype=dtype)[labels]
