"""Training-set distortions on batches of images (N, 1, H, W), NumPy only, reproducible by seed.

affine  (LeCun et al. 1998, section III-C): random planar affine maps combining a translation,
        a scaling, a squeeze (horizontal compression with vertical elongation, or the reverse)
        and a horizontal shear. The paper gives no magnitudes; ours are the defaults of
        `random_affine` (+-2 px, +-10 %, +-10 %, +-0.15).
affine-fixed  the paper's own regime: 9 affine copies of every image made once, presented in
        turn with the originals (FixedAffineCopies).
elastic (Simard, Steinkraus & Platt 2003): a displacement field of uniform(-1, 1) values per
        pixel and direction, smoothed by a Gaussian of standard deviation sigma (~4 px), scaled
        by alpha (~34).
Both resample with bilinear interpolation: output pixel (r, c) reads the input at a displaced
point (r', c'); points outside the image read the image's background, taken as its minimum
(-0.1 for the paper's scaling, 0 for unit scaling).

The random draws come from a NumPy generator on the host (a few numbers per image, or one
small field), so a seed gives the same distortions on both backends; the resampling itself is
array code that runs where the batch lives (NumPy, or CuPy on the GPU).
"""
import numpy as np

from . import backend

KINDS = ("none", "affine", "elastic", "affine-fixed")


def _check(x):
    if getattr(x, "ndim", None) != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, 1, H, W), got {tuple(getattr(x, 'shape', ()))}")
    if x.dtype.kind != "f":
        raise TypeError(f"expected float images, got {x.dtype}")


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def bilinear_sample(x, rows, cols):
    """x (N,1,H,W); rows, cols (N,H,W) source coordinates -> (N,1,H,W) of x's dtype.
    Corners outside the image read each image's minimum (its background)."""
    xp = backend.get_array_module(x)
    N, _, H, W = x.shape
    img = x[:, 0].reshape(N, H * W)
    fill = img.min(axis=1, keepdims=True)
    rows, cols = xp.asarray(rows), xp.asarray(cols)
    r0, c0 = xp.floor(rows), xp.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.astype(np.int64).reshape(N, -1), c0.astype(np.int64).reshape(N, -1)
    fr, fc = fr.reshape(N, -1), fc.reshape(N, -1)
    out = xp.zeros((N, H * W))
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            inside = (r >= 0) & (r < H) & (c >= 0) & (c < W)
            v = xp.take_along_axis(img, xp.where(inside, r * W + c, 0), axis=1)
            out += wr * wc * xp.where(inside, v, fill)
    return out.reshape(N, 1, H, W).astype(x.dtype)


def affine_transform(x, matrix, shift):
    """Apply per-image affine maps about the image centre: the content at point p moves to
    matrix @ (p - centre) + centre + shift. matrix (N,2,2) or (2,2) acts on (row, col);
    shift (N,2) or (2,) in pixels, (down, right)."""
    _check(x)
    N, _, H, W = x.shape
    A = np.broadcast_to(np.asarray(matrix, float), (N, 2, 2))
    t = np.broadcast_to(np.asarray(shift, float), (N, 2))
    Ainv = np.linalg.inv(A)                                   # output point -> source point
    centre = np.array([(H - 1) / 2, (W - 1) / 2])
    r, c = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    q = np.stack([r, c], axis=-1)[None] - centre - t[:, None, None, :]      # (N,H,W,2)
    src = np.einsum("nij,nhwj->nhwi", Ainv, q) + centre       # (N,H,W,2): small, on the host
    return bilinear_sample(x, src[..., 0], src[..., 1])


def random_affine(x, seed=None, max_shift=2.0, max_scale=0.1, max_squeeze=0.1, max_shear=0.15):
    """The paper's random planar affine distortions, one independent draw per image:
    shift ~ U(+-max_shift) px in each direction; scale s ~ 1 + U(+-max_scale); squeeze
    q ~ 1 + U(+-max_squeeze) (rows x q, columns / q); horizontal shear k ~ U(+-max_shear)
    (col += k * row). All zero: the identity."""
    _check(x)
    for name, v in (("max_shift", max_shift), ("max_scale", max_scale),
                    ("max_squeeze", max_squeeze), ("max_shear", max_shear)):
        if not v >= 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if max_scale >= 1 or max_squeeze >= 1:
        raise ValueError(f"max_scale and max_squeeze must be < 1, got {max_scale}, {max_squeeze}")
    u = _rng(seed).uniform(-1, 1, (x.shape[0], 5))
    return affine_transform(x, *_affine_maps(u, max_shift, max_scale, max_squeeze, max_shear))


def _affine_maps(u, max_shift, max_scale, max_squeeze, max_shear):
    """(matrix (N,2,2), shift (N,2)) of random_affine from its draws u (N, 5) in [-1, 1]."""
    s, q = 1 + max_scale * u[:, 0], 1 + max_squeeze * u[:, 1]
    k, shift = max_shear * u[:, 2], max_shift * u[:, 3:5]
    A = np.zeros((u.shape[0], 2, 2))
    A[:, 0, 0] = s * q                    # row axis: scaled and elongated
    A[:, 1, 1] = s / q                    # column axis: scaled and compressed
    A[:, 1, 0] = k * s * q                # horizontal shear: col += k * row
    return A, shift


class FixedAffineCopies:
    """The paper's regime (section III-C): `copies` affine distortions of every training image,
    drawn once from `seed` (magnitudes as random_affine's defaults), so with the originals the
    set holds (1 + copies) x N images (the paper: 60,000 + 540,000). Each pass presents every
    image once, in one of its versions: image i's versions in a fixed random order, pass p
    taking version p mod (1 + copies) of it. With copies = 9 and 20 passes each of the 600,000
    is seen twice. Called by fit as augment(x_batch, sample_indices, epoch)."""

    per_sample = True

    def __init__(self, n, copies=9, seed=0, **magnitudes):
        rng = np.random.default_rng([seed, 2])
        self.copies = int(copies)
        self.u = rng.uniform(-1, 1, (n, self.copies, 5))
        # version order per image: 0 is the original, 1..copies the distortions
        self.version = rng.permuted(np.tile(np.arange(self.copies + 1), (n, 1)), axis=1)
        self.magnitudes = {"max_shift": 2.0, "max_scale": 0.1, "max_squeeze": 0.1,
                           "max_shear": 0.15, **magnitudes}

    def __call__(self, x, idx, epoch):
        """x: the batch (images idx of the training set, on any device); idx: host ints."""
        _check(x)
        idx = np.asarray(idx)
        v = self.version[idx, (epoch - 1) % (self.copies + 1)]
        rows = np.flatnonzero(v > 0)                  # the batch's images shown distorted
        if rows.size == 0:
            return x
        maps = _affine_maps(self.u[idx[rows], v[rows] - 1], **self.magnitudes)
        out = x.copy()
        rows_dev = backend.get_array_module(x).asarray(rows)
        out[rows_dev] = affine_transform(x[rows_dev], *maps)
        return out


def _gaussian_matrix(n, sigma):
    """(n, n) matrix G with G[i, j] = g(i - j), g a normalised Gaussian truncated at 3 sigma:
    G @ v blurs v with zeros outside (as Simard et al.)."""
    radius = int(np.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1)
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    return np.where(np.abs(d) <= radius, g[np.clip(d + radius, 0, 2 * radius)], 0.0)


def elastic(x, seed=None, alpha=34.0, sigma=4.0):
    """Simard et al. 2003 elastic distortion, one field per image. alpha = 0: the identity."""
    _check(x)
    if not alpha >= 0 or not sigma > 0:
        raise ValueError(f"alpha must be >= 0 and sigma > 0, got alpha={alpha}, sigma={sigma}")
    xp = backend.get_array_module(x)
    rng = _rng(seed)
    N, _, H, W = x.shape
    d = xp.asarray(rng.uniform(-1, 1, (2, N, H, W)))          # drawn on the host: same on both backends
    Gh, Gw = (xp.asarray(_gaussian_matrix(n, sigma)) for n in (H, W))
    dr, dc = (alpha * (Gh @ d[i] @ Gw.T) for i in range(2))  # separable Gaussian blur
    r, c = xp.meshgrid(xp.arange(H), xp.arange(W), indexing="ij")
    return bilinear_sample(x, r[None] + dr, c[None] + dc)


def make_augment(kind, n=None, seed=0):
    """--augment: None for "none", else a function (x_batch, rng) -> distorted batch (same
    device and dtype); "affine-fixed" is FixedAffineCopies over the n training images."""
    if kind not in KINDS:
        raise ValueError(f"unknown augmentation {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "none":
        return None
    if kind == "affine-fixed":
        return FixedAffineCopies(n, seed=seed)
    return random_affine if kind == "affine" else elastic
