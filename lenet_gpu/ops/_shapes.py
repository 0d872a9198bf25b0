"""Shape helpers shared by the conv and pooling ops."""


def out_size(size, k, stride, pad):
    """Output length of a window of k sliding with `stride` over `size` + 2*pad (floor mode)."""
    return (size + 2 * pad - k) // stride + 1


def check_4d(name, a):
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(a.shape)}")


def check_float(name, a):
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float32, or float64 on CPU), got {a.dtype}")
