"""Tests for lenet_gpu.data: IDX reading, MNIST loading, verified download, array helpers."""

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lenet_gpu import data
from lenet_gpu.data import (
    DataError,
    default_data_dir,
    download_mnist,
    find_idx,
    load_mnist,
    one_hot,
    preprocess,
    read_idx,
    resolve_data_dir,
)

# The shared copy of the real files, at ../shared/data/mnist from the project root.
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr):
    """Serialize an array as IDX (big-endian)."""
    arr = np.asarray(arr)
    header = bytes([0, 0, IDX_CODES[arr.dtype.type], arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr, gz=False):
    raw = idx_bytes(arr)
    Path(path).write_bytes(gzip.compress(raw) if gz else raw)
    return Path(path)


def fake_mnist(directory, n_train=12, n_test=5, gz=True):
    """A tiny MNIST-shaped dataset with the real file names."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(directory / (data.MNIST_FILES[f"{split}_images"] + suffix), images, gz)
        write_idx(directory / (data.MNIST_FILES[f"{split}_labels"] + suffix), labels, gz)
    return directory


def real_mnist_dir():
    env = os.environ.get("LENET_GPU_DATA")
    if not env or not Path(env).is_dir():
        pytest.skip("LENET_GPU_DATA is not set to a directory with the MNIST files")
    return Path(env)


def shared_gz_files():
    paths = [SHARED_MNIST / (name + ".gz") for name in data.MNIST_FILES.values()]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"shared MNIST .gz files not found in {SHARED_MNIST}")
    return paths


# ----------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    # Named without .gz on purpose: gzip is detected by magic bytes.
    got = read_idx(write_idx(tmp_path / "a-idx3", arr, gz))
    assert got.shape == arr.shape
    assert got.dtype == np.dtype(dtype)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, arr)
    got[0, 0, 0] = 0  # writable


def test_idx_one_dim_and_empty(tmp_path):
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", np.arange(7, dtype=np.uint8))),
                                  np.arange(7))
    assert read_idx(write_idx(tmp_path / "e", np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)


def test_idx_bad_magic(tmp_path):
    p = tmp_path / "bad-magic-idx"
    p.write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match=r"bad-magic-idx.*bad magic"):
        read_idx(p)


def test_idx_unknown_dtype(tmp_path):
    p = tmp_path / "dtype-idx"
    p.write_bytes(b"\x00\x00\x0a\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match=r"dtype-idx.*unknown dtype code 0x0a"):
        read_idx(p)


def test_idx_truncated_header(tmp_path):
    p = tmp_path / "short-idx"
    p.write_bytes(b"\x00\x00\x08\x03" + (3).to_bytes(4, "big"))
    with pytest.raises(DataError, match=r"short-idx.*truncated header"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_payload(tmp_path, gz):
    raw = idx_bytes(np.zeros((4, 5), np.int16))[:-3]
    p = tmp_path / "trunc-idx"
    p.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError, match=r"trunc-idx.*truncated payload.*40 bytes.*37"):
        read_idx(p)


def test_idx_trailing_bytes(tmp_path):
    p = tmp_path / "long-idx"
    p.write_bytes(idx_bytes(np.zeros((4, 5), np.uint8)) + b"xyz")
    with pytest.raises(DataError, match=r"long-idx.*3 trailing bytes"):
        read_idx(p)


def test_idx_truncated_gzip(tmp_path):
    gz = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    p = tmp_path / "cut-idx.gz"
    p.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataError, match=r"cut-idx\.gz.*truncated gzip"):
        read_idx(p)


def test_idx_corrupt_gzip(tmp_path):
    gz = bytearray(gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32))))
    gz[-6] ^= 0xFF  # inside the CRC32 trailer
    p = tmp_path / "crc-idx.gz"
    p.write_bytes(bytes(gz))
    with pytest.raises(DataError, match=r"crc-idx\.gz.*corrupt gzip"):
        read_idx(p)


def test_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope-idx.*not found"):
        read_idx(tmp_path / "nope-idx")


# ----------------------------------------------------------------------------- finding files


def test_find_idx_spellings(tmp_path):
    name = "train-images-idx3-ubyte"
    with pytest.raises(DataError, match=rf"{name}.*not found.*{name}\.gz"):
        find_idx(tmp_path, name)
    (tmp_path / "train-images.idx3-ubyte.gz").write_bytes(b"")
    assert find_idx(tmp_path, name).name == "train-images.idx3-ubyte.gz"
    (tmp_path / (name + ".gz")).write_bytes(b"")
    assert find_idx(tmp_path, name).name == name + ".gz"
    (tmp_path / name).write_bytes(b"")
    assert find_idx(tmp_path, name).name == name


def test_find_idx_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_idx(tmp_path / "absent", "t10k-labels-idx1-ubyte")


# ----------------------------------------------------------------------------- load_mnist


def test_load_mnist_fake(tmp_path):
    d = fake_mnist(tmp_path / "m", n_train=12, n_test=5)
    x_train, y_train, x_test, y_test = load_mnist(d)
    assert x_train.shape == (12, 28, 28) and y_train.shape == (12,)
    assert x_test.shape == (5, 28, 28) and y_test.shape == (5,)
    assert all(a.dtype == np.uint8 for a in (x_train, y_train, x_test, y_test))


def test_load_mnist_raw_files(tmp_path):
    d = fake_mnist(tmp_path / "m", gz=False)
    assert load_mnist(d)[0].shape == (12, 28, 28)


def test_load_mnist_missing_files(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    with pytest.raises(DataError, match=r"(?s)not found in .*empty.*train-images-idx3-ubyte"
                                        r".*--data DIR.*LENET_GPU_DATA.*--download"):
        load_mnist(d)


def test_load_mnist_count_mismatch(tmp_path):
    d = fake_mnist(tmp_path / "m")
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), gz=True)
    with pytest.raises(DataError, match=r"count mismatch.*t10k-images-idx3-ubyte\.gz has 5 "
                                        r"images.*t10k-labels-idx1-ubyte\.gz has 4 labels"):
        load_mnist(d)


def test_load_mnist_image_size_mismatch(tmp_path):
    d = fake_mnist(tmp_path / "m")
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((12, 20, 20), np.uint8), gz=True)
    with pytest.raises(DataError, match=r"image size mismatch: .*train-images-idx3-ubyte\.gz holds "
                                        r"20x20 images but .*t10k-images-idx3-ubyte\.gz 28x28"):
        load_mnist(d)


def test_load_mnist_label_out_of_range(tmp_path):
    d = fake_mnist(tmp_path / "m")
    labels = np.zeros(12, np.uint8)
    labels[7] = 10
    write_idx(d / "train-labels-idx1-ubyte.gz", labels, gz=True)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*out of range.*\[7\] = 10"):
        load_mnist(d)


def test_load_mnist_wrong_dtype(tmp_path):
    d = fake_mnist(tmp_path / "m")
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 28), np.int16), gz=True)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*3-D uint8.*int16"):
        load_mnist(d)


def test_load_mnist_real():
    d = real_mnist_dir()
    x_train, y_train, x_test, y_test = load_mnist(d)
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in (x_train, y_train, x_test, y_test))
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert round(float(preprocess(x_train).mean(dtype=np.float64)), 4) == 0.1307
    assert round(float(preprocess(x_test).mean(dtype=np.float64)), 4) == 0.1325


# ----------------------------------------------------------------------------- directories


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LENET_GPU_DATA", raising=False)
    assert resolve_data_dir() == default_data_dir()
    if os.name != "nt":
        assert default_data_dir() == tmp_path / "cache" / "lenet-gpu" / "mnist"
    monkeypatch.setenv("LENET_GPU_DATA", "")
    assert resolve_data_dir() == default_data_dir()
    monkeypatch.setenv("LENET_GPU_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


@pytest.mark.skipif(os.name == "nt", reason="POSIX cache layout")
def test_default_data_dir_without_xdg(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_data_dir() == Path.home() / ".cache" / "lenet-gpu" / "mnist"


def test_load_mnist_uses_env(tmp_path, monkeypatch):
    d = fake_mnist(tmp_path / "m")
    monkeypatch.setenv("LENET_GPU_DATA", str(d))
    assert load_mnist()[0].shape == (12, 28, 28)


# ----------------------------------------------------------------------------- download


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(monkeypatch):
    """serve(directory) -> base URL of a local HTTP server for that directory."""
    monkeypatch.setenv("no_proxy", "*")  # never send 127.0.0.1 through a proxy
    servers = []

    def start(directory):
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def good_mirror(tmp_path):
    root = tmp_path / "good"
    root.mkdir()
    for p in shared_gz_files():
        shutil.copy(p, root / p.name)
    return root


@pytest.fixture
def labels_only(monkeypatch):
    """Restrict MNIST_FILES to the small test-labels file to keep tests quick."""
    monkeypatch.setattr(data, "MNIST_FILES", {"test_labels": "t10k-labels-idx1-ubyte"})
    return "t10k-labels-idx1-ubyte"


def corrupted_mirror(root, name):
    """A mirror directory serving `name`.gz with one byte flipped in the decompressed content."""
    root.mkdir()
    content = bytearray(gzip.decompress((SHARED_MNIST / (name + ".gz")).read_bytes()))
    content[100] ^= 0x01
    (root / (name + ".gz")).write_bytes(gzip.compress(bytes(content)))
    return root


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_full(tmp_path, serve, good_mirror):
    dest = tmp_path / "dest" / "sub"  # created by download_mnist
    logs = []
    assert download_mnist(dest, mirrors=[serve(good_mirror)], log=logs.append) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        n + ".gz" for n in data.MNIST_FILES.values())
    x_train, y_train, x_test, y_test = load_mnist(dest)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    # Second run: everything verifies and nothing is fetched.
    logs.clear()
    download_mnist(dest, mirrors=[closed_port_url()], log=logs.append)
    assert len(logs) == 4 and all("already present" in m for m in logs)


def test_load_mnist_download_flag(tmp_path, serve, monkeypatch):
    # A mirror of tiny fake files, with their checksums patched in.
    mirror = fake_mnist(tmp_path / "mirror")
    for name in data.MNIST_FILES.values():
        content = gzip.decompress((mirror / (name + ".gz")).read_bytes())
        monkeypatch.setitem(data.MNIST_SHA256, name, hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(data, "MNIST_MIRRORS", [serve(mirror)])
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="--download"):
        load_mnist(dest)
    x_train, y_train, x_test, y_test = load_mnist(dest, download=True)
    assert x_train.shape == (12, 28, 28) and y_test.shape == (5,)


def test_download_skips_bad_mirror(tmp_path, serve, good_mirror, labels_only):
    bad = serve(corrupted_mirror(tmp_path / "bad", labels_only))
    dest = tmp_path / "dest"
    logs = []
    download_mnist(dest, mirrors=[bad, serve(good_mirror)], log=logs.append)
    assert any("checksum mismatch" in m for m in logs)
    assert os.listdir(dest) == [labels_only + ".gz"]
    assert read_idx(dest / (labels_only + ".gz")).shape == (10000,)


def test_download_all_mirrors_bad(tmp_path, serve, labels_only):
    shared_gz_files()
    bad = serve(corrupted_mirror(tmp_path / "bad", labels_only))
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=rf"{labels_only}.*checksum mismatch"):
        download_mnist(dest, mirrors=[bad], log=lambda m: None)
    assert os.listdir(dest) == []  # no file, no temp file


def test_download_missing_on_mirror(tmp_path, serve, labels_only):
    empty = tmp_path / "empty"
    empty.mkdir()
    url = serve(empty)
    with pytest.raises(DataError, match=rf"{labels_only}.*{url}.*404"):
        download_mnist(tmp_path / "dest", mirrors=[url], log=lambda m: None)


def test_download_unreachable_mirror(tmp_path, serve, good_mirror, labels_only):
    dead = closed_port_url()
    dest = tmp_path / "dest"
    logs = []
    download_mnist(dest, mirrors=[dead, serve(good_mirror)], log=logs.append, timeout=5)
    assert any(dead in m and "failed" in m for m in logs)
    assert os.listdir(dest) == [labels_only + ".gz"]


def test_download_replaces_invalid_file(tmp_path, serve, good_mirror, labels_only):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / (labels_only + ".gz")).write_bytes(gzip.compress(b"junk"))
    logs = []
    download_mnist(dest, mirrors=[serve(good_mirror)], log=logs.append)
    assert any("fails verification" in m for m in logs)
    assert read_idx(dest / (labels_only + ".gz")).shape == (10000,)


# ----------------------------------------------------------------------------- array helpers


def test_preprocess_scales_and_padding():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # (1, 2, 2)
    expect = {
        "unit": (0.0, 1.0),
        "paper": (-0.1, 1.175),
        "standard": (-0.1307 / 0.3081, (1 - 0.1307) / 0.3081),
    }
    for scale, (bg, fg) in expect.items():
        out = preprocess(images, scale=scale, pad=2)
        assert out.shape == (1, 1, 6, 6) and out.dtype == np.float32
        inner = out[0, 0, 2:4, 2:4]
        np.testing.assert_allclose(inner[0], [bg, fg], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(inner[1, 0], bg + (fg - bg) * 0.2, rtol=1e-6, atol=1e-6)
        border = out.copy()
        border[0, 0, 2:4, 2:4] = bg
        np.testing.assert_allclose(border, bg, rtol=1e-6, atol=1e-7)  # padding is background
        assert out[0, 0, 0, 0] == out[0, 0, 2, 2]  # pad equals a zero pixel exactly


def test_preprocess_shapes_and_errors():
    x = np.zeros((3, 28, 28), np.uint8)
    assert preprocess(x).shape == (3, 1, 28, 28)
    assert preprocess(x[:, None], pad=2).shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match="'bogus'"):
        preprocess(x, scale="bogus")
    with pytest.raises(ValueError, match="-1"):
        preprocess(x, pad=-1)
    with pytest.raises(ValueError, match="uint8"):
        preprocess(x.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        preprocess(np.zeros((3, 2, 28, 28), np.uint8))


def test_one_hot():
    out = one_hot(np.array([0, 3, 9], np.uint8))
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert out.sum() == 3 and out[1, 3] == 1 and out[2, 9] == 1
    assert one_hot([1, 2], num_classes=3, dtype=np.float64).tolist() == [[0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="0..9"):
        one_hot([10])
    with pytest.raises(ValueError, match="0..9"):
        one_hot([-1])


def peak_bytes(fn):
    """Peak Python-traced allocation while fn() runs (NumPy's buffers are traced too)."""
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_gzip_that_inflates_past_its_header_is_refused_in_bounded_memory(tmp_path):
    """A 64 KB .gz whose header declares 20 bytes but which inflates to 64 MB: the reader stops
    a megabyte past the declared payload (the old reader inflated all of it first)."""
    import zlib as _zlib
    comp = _zlib.compressobj(9, _zlib.DEFLATED, 31)        # gzip container
    p = tmp_path / "bomb-idx.gz"
    with open(p, "wb") as f:
        f.write(comp.compress(idx_bytes(np.zeros((4, 5), np.uint8))))
        for _ in range(64):
            f.write(comp.compress(bytes(1 << 20)))
        f.write(comp.flush())
    assert p.stat().st_size < 200_000
    with pytest.raises(DataError, match=r"bomb-idx\.gz.*1048576 or more trailing bytes"):
        read_idx(p)
    assert peak_bytes(lambda: pytest.raises(DataError, read_idx, p)) < 4 << 20


@pytest.mark.parametrize("gz", [False, True])
def test_a_header_declaring_more_than_the_file_can_hold_is_refused_before_allocating(tmp_path, gz):
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (60000, 2800, 2800))
    p = tmp_path / ("huge-idx.gz" if gz else "huge-idx")
    p.write_bytes(gzip.compress(header + bytes(100)) if gz else header + bytes(100))
    match = r"huge-idx.*(declares dims \(60000, 2800, 2800\)|truncated payload)"
    assert peak_bytes(lambda: pytest.raises(DataError, read_idx, p)) < 1 << 20
    with pytest.raises(DataError, match=match):
        read_idx(p)


class EndlessHandler(QuietHandler):
    """Answers every GET with a body that never ends: `rate` bytes every 0.1 s."""
    rate = 1 << 16

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x" * self.rate)
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass


@pytest.mark.parametrize("rate, kwargs, message", [
    (2, {"deadline": 1.0}, "not finished within the download deadline"),
    (1 << 16, {"max_bytes": 100_000}, "more than 100,000 bytes: not an MNIST file"),
])
def test_download_of_a_trickling_or_endless_mirror_is_cut_off(tmp_path, monkeypatch, labels_only,
                                                              rate, kwargs, message):
    monkeypatch.setenv("no_proxy", "*")
    handler = type("Handler", (EndlessHandler,), {"rate": rate})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    t0 = time.monotonic()
    try:
        with pytest.raises(DataError, match=rf"{labels_only}.*{message}"):
            download_mnist(tmp_path / "d", mirrors=[url], log=lambda m: None, timeout=5, **kwargs)
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - t0 < 10
