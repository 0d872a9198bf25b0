"""Reading an .npz file that may not be ours: every member's header first, then only the arrays
asked for, so a file cannot make us allocate more than it really holds. No pickle, ever.

    with NpzReader(path) as f:
        f.headers            {name: (shape, dtype)} of every array, read without their data
        f.read(name)         one array, after its header was checked against the file
Problems raise ValueError naming the file and the member.
"""
import os
import zipfile

import numpy as np

# How much larger than the file on disk its arrays may be: our models are stored uncompressed
# (ratio ~1); another writer's zip compression of float weights gains little. An array that
# claims more than this is a zip bomb or a lie.
MAX_INFLATION = 4
SLACK = 64 << 10


class NpzReader:
    def __init__(self, path):
        self.path = str(path)
        try:
            self.zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise FileNotFoundError(f"model file not found: {self.path}") from None
        except (OSError, zipfile.BadZipFile, ValueError) as e:
            raise ValueError(f"{self.path} is not a readable .npz model file ({e})") from None
        self.headers = {}
        try:
            self._read_headers()
        except BaseException:
            self.zip.close()
            raise

    def _read_headers(self):
        budget = MAX_INFLATION * os.path.getsize(self.path) + SLACK
        total = 0
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{self.path}: member {info.filename!r} is not an array")
            name = info.filename[:-4]
            total += info.file_size
            if total > budget:
                raise ValueError(f"{self.path}: its arrays would take {total:,}+ bytes, more than "
                                 f"{MAX_INFLATION}x the file's {budget - SLACK:,} bytes")
            try:
                with self.zip.open(info) as fp:
                    version = np.lib.format.read_magic(fp)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    shape, fortran, dtype = read(fp)
                    header_len = fp.tell()
            except Exception as e:
                raise ValueError(f"{self.path}: member {name!r} is not a valid .npy array ({e})") from None
            if dtype.hasobject:
                raise ValueError(f"{self.path}: member {name!r} holds Python objects; refused")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if header_len + nbytes != info.file_size:
                raise ValueError(f"{self.path}: member {name!r} declares {shape} {dtype} "
                                 f"({nbytes:,} bytes) but holds {info.file_size - header_len:,}")
            self.headers[name] = (tuple(shape), dtype)

    def read(self, name):
        if name not in self.headers:
            raise KeyError(name)
        with self.zip.open(name + ".npy") as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)

    def close(self):
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
