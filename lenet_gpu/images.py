"""Digits from the outside world, brought into MNIST's own form.

MNIST's digits (LeCun, Cortes & Burges) are grey levels with the ink bright on a black
background; each digit's bounding box was scaled, keeping its aspect ratio, so that its longer
side is 20 pixels (with anti-aliasing), and placed in a 28x28 field with its centre of mass at
the centre. `to_mnist` does the same to any picture of one digit:

    grey levels (colour averaged by Pillow's L conversion; transparency over white)
    -> ink bright on dark (a picture whose border is lighter than its middle is inverted)
    -> background to 0 and the brightest ink to 1 (JPEG noise below 20% of the ink is dropped)
    -> cropped to the ink, longer side scaled to 20 px (Lanczos, aspect kept)
    -> placed in 28x28 with its centre of mass at (14, 14)      -> uint8 (28, 28)

`read_images` takes PNG / JPEG / BMP / GIF files (Pillow, the `images` extra), .npy arrays
(one 2-D image or a stack), IDX files (a stack, as MNIST's own) and directories of those.
Arrays that are already 28x28 uint8 are taken as MNIST-form; anything else goes through
`to_mnist`. Problems raise ImageError naming the file.
"""
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ARRAY_SUFFIXES = (".npy",)
INK = 0.2                # share of the ink's brightness below which a pixel is background


class ImageError(ValueError):
    """An input file is not an image we can read, is empty, or holds no ink."""


def to_mnist(grey, name="image"):
    """A 2-D grey picture of one digit (any size, any range, any polarity) -> uint8 (28, 28)."""
    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) < 1:
        raise ImageError(f"{name}: expected a 2-D grey image, got shape {g.shape}")
    if not np.isfinite(g).all():
        raise ImageError(f"{name}: holds NaN or infinite values")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    background = float(np.median(border))
    if background > float(np.median(g)) or background > 0.5 * (g.max() + g.min()):
        g, background = -g, -background       # dark ink on a light page: make the ink bright
    span = float(g.max()) - background
    if span <= 1e-6 * max(1.0, abs(background)) or span < 0.05 * (abs(background) + abs(g.max())):
        raise ImageError(f"{name}: holds no ink (a blank image)")
    g = np.clip((g - background) / span, 0, 1)
    g[g < INK] = 0
    rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
    g = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = g.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))      # (width, height)
    box = np.clip(_resize(g, size), 0, 1)
    # centre of mass to (14, 14): MNIST's centring (an integer shift, as MNIST's was)
    mass = box.sum()
    r = (np.arange(box.shape[0]) @ box.sum(axis=1)) / mass
    c = (np.arange(box.shape[1]) @ box.sum(axis=0)) / mass
    top, left = int(round(14 - r)), int(round(14 - c))      # MNIST's own centres sit at 14.0
    top = min(max(top, 0), 28 - box.shape[0])
    left = min(max(left, 0), 28 - box.shape[1])
    out = np.zeros((28, 28))
    out[top:top + box.shape[0], left:left + box.shape[1]] = box
    return np.round(out * 255).astype(np.uint8)


def _resize(g, size):
    """Anti-aliased resize of a float image to size = (width, height): Pillow's Lanczos."""
    Image = _pillow()
    return np.asarray(Image.fromarray(g.astype(np.float32), mode="F").resize(size, Image.LANCZOS),
                      dtype=np.float64)


def read_images(paths):
    """-> (uint8 array (N, 28, 28), names): every image in the given files and directories,
    in MNIST's form. names say where each came from ("file", or "file[i]" in a stack)."""
    images, names = [], []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.iterdir()
                           if p.is_file() and not p.name.startswith(".") and _readable_name(p))
            if not files:
                raise ImageError(f"{path}: no image, .npy or IDX files in this directory")
            sub_images, sub_names = read_images(files)
            images.append(sub_images)
            names += sub_names
            continue
        picture = _picture(path)
        stack = picture if picture.ndim == 3 else picture[None]
        for j, one in enumerate(stack):
            name = f"{path}[{j}]" if picture.ndim == 3 else str(path)
            mnist_form = one.shape == (28, 28) and one.dtype == np.uint8 \
                and path.suffix.lower() not in IMAGE_SUFFIXES
            images.append((one if mnist_form else to_mnist(one, name))[None])
            names.append(name)
    if not images:
        raise ImageError("no images given")
    return np.concatenate(images), names


def _readable_name(p):
    return p.suffix.lower() in IMAGE_SUFFIXES + ARRAY_SUFFIXES or p.name.endswith(("-ubyte", "-ubyte.gz"))


def _picture(path):
    """The 2-D picture (or 3-D stack of them) a file holds."""
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:
            raise ImageError(f"{path}: not a readable .npy array ({e})") from None
        if a.ndim not in (2, 3) or a.dtype.kind not in "uif":
            raise ImageError(f"{path}: expected a 2-D image or an (N, H, W) stack of numbers, got "
                             f"shape {a.shape} {a.dtype}")
        return a
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x00\x00" or path.name.endswith(("-ubyte", "-ubyte.gz")):
        from .data import DataError, read_idx
        try:
            a = read_idx(path)
        except DataError as e:
            raise ImageError(str(e)) from None
        if a.ndim not in (2, 3):
            raise ImageError(f"{path}: an IDX file of images has 2 or 3 dimensions, got {a.shape}")
        return a
    Image = _pillow()
    try:
        with Image.open(path) as im:
            im.seek(0)                                    # a GIF's first frame
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                im = im.convert("RGBA")
                page = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(page, im)
            return np.asarray(im.convert("L"), dtype=np.uint8).astype(np.float64)
    except (OSError, ValueError, SyntaxError) as e:          # PIL.UnidentifiedImageError is an OSError
        raise ImageError(f"{path}: not an image we can read (PNG, JPEG, BMP, GIF, .npy or IDX): "
                         f"{e}") from None


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("reading PNG/JPEG/BMP/GIF files needs Pillow: "
                         "pip install 'lenet-gpu[images]'") from None
    return Image
