"""Stateful layers: parameters, gradients, running statistics. The maths lives in ops/.

A layer is created with its hyperparameters, then `build(rng, dtype, backend)` draws its
parameters (Sequential.add does this with the model's seeded generator, so a seed fixes the
whole network). `forward(x, training)` keeps what `backward(dy)` needs; `backward` fills each
Param's `grad` and returns dL/dx. Shapes are per sample (no batch axis) in `output_shape`.
`backward_hessian(d2y)` does the same for the diagonal Gauss-Newton second derivatives of the
paper's SDLM (appendix C): it fills each Param's `hess` and returns d2L/dx^2.
"""
import numpy as np

from . import backend
from .ops.activations import (activation_backward, activation_backward_hessian,
                              activation_forward, check_activation)
from .ops.batch_norm import batch_norm_backward, batch_norm_forward_infer, batch_norm_forward_train
from .ops.conv2d import conv2d_backward, conv2d_backward_hessian, conv2d_forward
from .ops.dense import dense_backward, dense_backward_hessian, dense_forward
from .ops.pool2d import pool2d_backward, pool2d_backward_hessian, pool2d_forward
from .ops.rbf import rbf_backward, rbf_backward_hessian, rbf_forward
from .ops.subsample import subsample_backward, subsample_backward_hessian, subsample_forward
from .ops._shapes import out_size


class Param:
    """A trainable array, its gradient and (for SDLM) its diagonal second derivative.
    `decay`: does L2 weight decay apply (weights only)."""
    __slots__ = ("name", "value", "grad", "hess", "decay")

    def __init__(self, name, value, decay):
        self.name, self.value, self.grad, self.hess, self.decay = name, value, None, None, decay


# ---- initializers: (rng, shape, fan_in, fan_out) -> float64 numpy array ----------------------
def lecun_uniform(rng, shape, fan_in, fan_out):
    """The paper's U(-2.4/F, 2.4/F), F the fan-in (LeCun et al. 1998, appendix A)."""
    return rng.uniform(-1, 1, shape) * (2.4 / fan_in)


def lecun_sqrt_uniform(rng, shape, fan_in, fan_out):
    """U(-2.4/sqrt(F), 2.4/sqrt(F)): the paper's range over the square root of the fan-in, the
    reading under which "the initial standard deviation of the weighted sums [is] in the same
    range for each unit" holds for independent weights (1.39 x the input rms, whatever F; with
    1/F it shrinks by 1.39/sqrt(F) per layer). Kept for comparison: docs/paper/REPORT.md."""
    return rng.uniform(-1, 1, shape) * (2.4 / np.sqrt(fan_in))


def xavier_uniform(rng, shape, fan_in, fan_out):
    """Glorot & Bengio 2010: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    return rng.uniform(-1, 1, shape) * np.sqrt(6.0 / (fan_in + fan_out))


def he_normal(rng, shape, fan_in, fan_out):
    """He et al. 2015: N(0, 2 / fan_in), for ReLU."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def fan_in_uniform(rng, shape, fan_in, fan_out, gain=1.0):
    """U(-g/sqrt(F), g/sqrt(F)), F the fan-in, written "fan_in:g" (g = 1 without the suffix).
    g = 1 to 1.2 with the paper's SDLM gives first-pass learning rates in the range the paper
    reports (docs/paper/REPORT.md); g = sqrt(3) is Efficient BackProp's std F^-1/2."""
    return rng.uniform(-1, 1, shape) * (gain / np.sqrt(fan_in))


INITIALIZERS = {"lecun": lecun_uniform, "lecun_sqrt": lecun_sqrt_uniform, "fan_in": fan_in_uniform,
                "xavier": xavier_uniform, "he": he_normal}


def check_initializer(name):
    """The initializer called `name` (None: no choice made, None back); "fan_in:g" passes the
    gain g to fan_in_uniform. A ValueError names a bad name or gain."""
    if name is None:
        return None
    return _initializer(name)


def _size(layer, name, value, minimum=1):
    """A whole-number setting of a layer or a call (Sequential.fit's batch_size), checked:
    int(value), or ValueError naming the layer or call and the setting."""
    try:
        n = int(value)
        whole = n == value
    except (TypeError, ValueError):
        whole = False
    if not whole or isinstance(value, bool):
        raise ValueError(f"{layer}: {name} must be a whole number, got {value!r}")
    if n < minimum:
        raise ValueError(f"{layer}: {name} must be >= {minimum}, got {n}")
    return n


def _initializer(name):
    """The initializer called `name`; "fan_in:g" passes the gain g to fan_in_uniform."""
    base, _, gain = str(name).partition(":")
    if base not in INITIALIZERS or (gain and base != "fan_in"):
        raise ValueError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)} "
                         "(fan_in takes a gain: fan_in:1.2)")
    if not gain:
        return INITIALIZERS[base]
    try:
        g = float(gain)
    except ValueError:
        g = float("nan")
    if not g > 0:
        raise ValueError(f"initializer {name!r}: the gain after ':' must be a number > 0")
    return lambda rng, shape, fan_in, fan_out: fan_in_uniform(rng, shape, fan_in, fan_out, g)


# The paper's C3 connection table (Table I): C3 map k reads the S2 maps listed.
C3_TABLE_MAPS = [(0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
                 (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
                 (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5)]


def c3_table():
    """(16, 6) bool: the paper's 60 connections between S2's 6 maps and C3's 16 maps."""
    t = np.zeros((16, 6), dtype=bool)
    for k, maps in enumerate(C3_TABLE_MAPS):
        t[k, list(maps)] = True
    return t


class Layer:
    params = ()        # list of Param once built
    buffers = {}       # name -> array: non-trainable state that is saved (running stats)
    built = False      # layers without parameters set this True

    def build(self, rng, dtype=np.float32, backend_name="numpy"):
        self.built = True

    def config(self):
        """Constructor keyword arguments that rebuild this layer (JSON-serialisable)."""
        return {}

    def output_shape(self, in_shape):
        return in_shape

    def num_params(self):
        return sum(int(p.value.size) for p in self.params)

    def array_shapes(self):
        """{name: shape} of every array the layer saves (params and buffers), from its
        hyperparameters alone: Sequential.load checks a file against it before building."""
        return {}

    def connected(self, param):
        """A bool mask of the entries of `param` that are real parameters (None: all of them);
        Conv2D's weights of absent table connections are not."""
        return None

    def forward(self, x, training=False):
        raise NotImplementedError

    def infer(self, x):
        """forward in inference mode when no backward pass follows: a layer may keep less."""
        return self.forward(x, training=False)

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        """Diagonal Gauss-Newton second derivatives after a forward pass: fills Param.hess and
        returns d2L/dx^2. `dy` (dL/d output) is given to the output layer only; the RBF layer
        uses it for its own exact curvature."""
        raise NotImplementedError(f"{type(self).__name__} has no second-derivative pass (SDLM "
                                  "supports Conv2D, Subsampling, pooling, Dense, Flatten, "
                                  "element-wise Activation and RBFOutput)")

    def to(self, backend_name):
        for p in self.params:
            p.value = backend.to_backend(p.value, backend_name)
            p.grad = None
        self.buffers = {k: backend.to_backend(v, backend_name) for k, v in self.buffers.items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def describe(self):
        """One short line for Sequential.summary()."""
        return repr(self)

    def _param(self, name, value, decay, dtype, backend_name):
        return Param(name, backend.to_backend(np.asarray(value, dtype=dtype), backend_name), decay)

    def _require_built(self):
        if not self.built:
            raise RuntimeError(f"{self!r} has no parameters yet: add it to a Sequential model "
                               "or call build(rng) first")


class Conv2D(Layer):
    """Convolution over NCHW maps. `table`: None (full), "c3" (the paper's) or a (out, in) bool array."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, table=None,
                 bias=True, init="xavier"):
        self.in_channels = _size("Conv2D", "in_channels", in_channels)
        self.out_channels = _size("Conv2D", "out_channels", out_channels)
        self.kernel_size = _size("Conv2D", "kernel_size", kernel_size)
        self.stride = _size("Conv2D", "stride", stride)
        self.padding = _size("Conv2D", "padding", padding, minimum=0)
        self.bias, self.init = bool(bias), init
        _initializer(init)
        if isinstance(table, str):
            if table != "c3":
                raise ValueError(f"unknown connection table {table!r}; use 'c3' or a bool array")
            table = c3_table()
        if table is not None:
            table = np.asarray(table, dtype=bool)
            if table.shape != (self.out_channels, self.in_channels):
                raise ValueError(f"connection table shape {table.shape} does not match "
                                 f"(out_channels, in_channels) = ({out_channels}, {in_channels})")
            if not table.any(axis=1).all():
                raise ValueError("connection table leaves an output map with no input")
        self.table = table
        self._table_dev = None

    def config(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    table=None if self.table is None else self.table.astype(int).tolist(),
                    bias=self.bias, init=self.init)

    def build(self, rng, dtype=np.float32, backend_name="numpy"):
        K, C, k = self.out_channels, self.in_channels, self.kernel_size
        table = np.ones((K, C), bool) if self.table is None else self.table
        # fan-in per output map counts only its connected input maps
        fan_in = table.sum(axis=1)[:, None, None, None] * k * k
        W = _initializer(self.init)(rng, (K, C, k, k), fan_in, K * k * k) * table[:, :, None, None]
        self.params = [self._param("W", W, True, dtype, backend_name)]
        if self.bias:
            self.params.append(self._param("b", np.zeros(K), False, dtype, backend_name))
        self._table_dev = None if self.table is None else backend.to_backend(self.table, backend_name)
        self.built = True

    def to(self, backend_name):
        super().to(backend_name)
        if self.table is not None:
            self._table_dev = backend.to_backend(self.table, backend_name)

    def describe(self):
        k = self.kernel_size
        table = "" if self.table is None else f", table {int(self.table.sum())}/{self.table.size}"
        return (f"Conv2D({self.in_channels}->{self.out_channels}, {k}x{k}, stride {self.stride}, "
                f"pad {self.padding}{table}{'' if self.bias else ', no bias'})")

    def array_shapes(self):
        k = self.kernel_size
        shapes = {"W": (self.out_channels, self.in_channels, k, k)}
        return {**shapes, "b": (self.out_channels,)} if self.bias else shapes

    def connected(self, param):
        if self.table is None or param.name != "W":
            return None
        return np.broadcast_to(self.table[:, :, None, None], param.value.shape)

    def num_params(self):
        k2 = self.kernel_size ** 2
        n = (self.table.sum() if self.table is not None else self.in_channels * self.out_channels) * k2
        return int(n) + (self.out_channels if self.bias else 0)

    def output_shape(self, in_shape):
        if len(in_shape) != 3 or in_shape[0] != self.in_channels:
            raise ValueError(f"{self!r} expects input (C={self.in_channels}, H, W), got {in_shape}")
        C, H, W = in_shape
        OH = out_size(H, self.kernel_size, self.stride, self.padding)
        OW = out_size(W, self.kernel_size, self.stride, self.padding)
        if OH < 1 or OW < 1:
            raise ValueError(f"{self!r}: kernel does not fit input {H}x{W}")
        return (self.out_channels, OH, OW)

    def forward(self, x, training=False, keep=True):
        self._require_built()
        b = self.params[1].value if self.bias else None
        y, self._cache = conv2d_forward(x, self.params[0].value, b, self.stride, self.padding,
                                        self._table_dev, keep=keep)
        return y

    def infer(self, x):
        return self.forward(x, keep=False)

    def backward(self, dy, need_dx=True):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{self!r}: backward needs a forward pass that keeps its cache "
                               "first (forward, not infer / keep=False)")
        dx, dW, db = conv2d_backward(dy, self._cache, need_dx)
        self.params[0].grad = dW
        if self.bias:
            self.params[1].grad = db
        return dx

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        d2x, d2W, d2b = conv2d_backward_hessian(d2y, self._cache, need_dx)
        self.params[0].hess = d2W
        if self.bias:
            self.params[1].hess = d2b
        return d2x


class Pool2D(Layer):
    def __init__(self, pool_size=2, stride=None, mode="avg"):
        self.pool_size = _size(type(self).__name__, "pool_size", pool_size)
        self.stride = self.pool_size if stride is None else _size(type(self).__name__, "stride", stride)
        if mode not in ("avg", "max"):
            raise ValueError(f"pooling mode must be 'avg' or 'max', got {mode!r}")
        self.mode = mode
        self.built = True

    def config(self):
        return dict(pool_size=self.pool_size, stride=self.stride, mode=self.mode)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"{self!r} expects a (C, H, W) input, got {in_shape}")
        C, H, W = in_shape
        OH, OW = (out_size(s, self.pool_size, self.stride, 0) for s in (H, W))
        if OH < 1 or OW < 1:
            raise ValueError(f"{self!r}: window does not fit input {H}x{W}")
        return (C, OH, OW)

    def forward(self, x, training=False):
        y, self._cache = pool2d_forward(x, self.pool_size, self.stride, self.mode)
        return y

    def backward(self, dy, need_dx=True):
        return pool2d_backward(dy, self._cache)

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        return pool2d_backward_hessian(d2y, self._cache)


class AvgPool2D(Pool2D):
    def __init__(self, pool_size=2, stride=None):
        super().__init__(pool_size, stride, "avg")

    def config(self):
        return dict(pool_size=self.pool_size, stride=self.stride)


class MaxPool2D(Pool2D):
    def __init__(self, pool_size=2, stride=None):
        super().__init__(pool_size, stride, "max")

    def config(self):
        return dict(pool_size=self.pool_size, stride=self.stride)


class Subsampling(Layer):
    """The paper's S2/S4: y = coef[c] * (sum of each k x k block) + bias[c], 2 parameters per map.

    coef is drawn by `init` with fan-in k*k (the paper's U(+-2.4/4) for "lecun"), or starts at
    the constant `coef` when given (EBLearn, LeCun's lab's later code, uses 0.5); bias starts at 0.
    The paper's squashing function follows as a separate Activation("scaled_tanh") layer.
    """

    def __init__(self, channels, size=2, init="lecun", coef=None):
        self.channels = _size("Subsampling", "channels", channels)
        self.size = _size("Subsampling", "size", size)
        self.init, self.coef = init, None if coef is None else float(coef)
        if self.coef is not None and not np.isfinite(self.coef):
            raise ValueError(f"Subsampling: coef must be a finite number, got {coef!r}")
        _initializer(init)

    def config(self):
        config = dict(channels=self.channels, size=self.size, init=self.init)
        return config if self.coef is None else {**config, "coef": self.coef}

    def build(self, rng, dtype=np.float32, backend_name="numpy"):
        C, k2 = self.channels, self.size ** 2
        coef = _initializer(self.init)(rng, (C,), k2, 1)      # drawn either way: same rng stream
        if self.coef is not None:
            coef = np.full(C, self.coef)
        self.params = [self._param("coef", coef, True, dtype, backend_name),
                       self._param("bias", np.zeros(C), False, dtype, backend_name)]
        self.built = True

    def array_shapes(self):
        return {"coef": (self.channels,), "bias": (self.channels,)}

    def describe(self):
        k = self.size
        return f"Subsampling({self.channels} maps, {k}x{k} sum x coef + bias)"

    def output_shape(self, in_shape):
        if len(in_shape) != 3 or in_shape[0] != self.channels:
            raise ValueError(f"{self!r} expects input (C={self.channels}, H, W), got {tuple(in_shape)}")
        C, H, W = in_shape
        if H < self.size or W < self.size:
            raise ValueError(f"{self!r}: block does not fit input {H}x{W}")
        return (C, H // self.size, W // self.size)

    def forward(self, x, training=False):
        self._require_built()
        coef, bias = (p.value for p in self.params)
        y, self._cache = subsample_forward(x, coef, bias, self.size)
        return y

    def backward(self, dy, need_dx=True):
        dx, dcoef, dbias = subsample_backward(dy, self._cache)
        self.params[0].grad, self.params[1].grad = dcoef, dbias
        return dx

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        d2x, d2coef, d2bias = subsample_backward_hessian(d2y, self._cache)
        self.params[0].hess, self.params[1].hess = d2coef, d2bias
        return d2x


class RBFOutput(Layer):
    """Euclidean RBF output units with fixed centres: y_i = sum_j (x_j - w_ij)^2.

    The centres default to the +-1 digit bitmaps of lenet_gpu/digits.py (10 x 84). They are not
    trained: they live in `buffers` (saved and loaded with the model), not in `params`. The
    outputs are penalties (distances): the predicted class is the argmin, and the loss is
    "paper" (see ops/losses.py).
    """

    def __init__(self, in_features=84, num_classes=10):
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        if (self.in_features, self.num_classes) != (84, 10):
            raise ValueError("RBFOutput's digit centres are 10 bitmaps of 7x12 = 84 values; "
                             f"got in_features={in_features}, num_classes={num_classes}")

    def config(self):
        return dict(in_features=self.in_features, num_classes=self.num_classes)

    def build(self, rng, dtype=np.float32, backend_name="numpy"):
        from .digits import rbf_centres
        self.buffers = {"centres": backend.to_backend(rbf_centres(dtype), backend_name)}
        self.built = True

    def array_shapes(self):
        return {"centres": (self.num_classes, self.in_features)}

    def describe(self):
        return f"RBFOutput({self.in_features}->{self.num_classes}, fixed 7x12 digit centres)"

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            raise ValueError(f"{self!r} expects input ({self.in_features},), got {tuple(in_shape)}")
        return (self.num_classes,)

    def forward(self, x, training=False):
        self._require_built()
        y, self._cache = rbf_forward(x, self.buffers["centres"])
        return y

    def backward(self, dy, need_dx=True):
        return rbf_backward(dy, self._cache)

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        if dy is None:
            raise ValueError("RBFOutput.backward_hessian needs dy, the loss gradient at its output")
        return rbf_backward_hessian(d2y, dy, self._cache)


class Dense(Layer):
    def __init__(self, in_features, out_features, bias=True, init="xavier"):
        self.in_features = _size("Dense", "in_features", in_features)
        self.out_features = _size("Dense", "out_features", out_features)
        self.bias, self.init = bool(bias), init
        _initializer(init)

    def config(self):
        return dict(in_features=self.in_features, out_features=self.out_features,
                    bias=self.bias, init=self.init)

    def build(self, rng, dtype=np.float32, backend_name="numpy"):
        n_in, n_out = self.in_features, self.out_features
        W = _initializer(self.init)(rng, (n_in, n_out), n_in, n_out)
        self.params = [self._param("W", W, True, dtype, backend_name)]
        if self.bias:
            self.params.append(self._param("b", np.zeros(n_out), False, dtype, backend_name))
        self.built = True

    def array_shapes(self):
        shapes = {"W": (self.in_features, self.out_features)}
        return {**shapes, "b": (self.out_features,)} if self.bias else shapes

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            raise ValueError(f"{self!r} expects input ({self.in_features},), got {tuple(in_shape)}"
                             + ("; add a Flatten layer before it" if len(in_shape) > 1 else ""))
        return (self.out_features,)

    def forward(self, x, training=False):
        self._require_built()
        b = self.params[1].value if self.bias else None
        y, self._cache = dense_forward(x, self.params[0].value, b)
        return y

    def backward(self, dy, need_dx=True):
        dx, dW, db = dense_backward(dy, self._cache, need_dx)
        self.params[0].grad = dW
        if self.bias:
            self.params[1].grad = db
        return dx

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        d2x, d2W, d2b = dense_backward_hessian(d2y, self._cache, need_dx)
        self.params[0].hess = d2W
        if self.bias:
            self.params[1].hess = d2b
        return d2x


class Flatten(Layer):
    built = True

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape)

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        return d2y.reshape(self._shape)


class Activation(Layer):
    """tanh | scaled_tanh | relu | sigmoid | softmax (softmax over the last axis)."""
    built = True

    def __init__(self, name):
        self.name = check_activation(name)

    def config(self):
        return dict(name=self.name)

    def forward(self, x, training=False):
        y, self._y = activation_forward(self.name, x)
        return y

    def backward(self, dy, need_dx=True):
        return activation_backward(self.name, dy, self._y)

    def backward_hessian(self, d2y, dy=None, need_dx=True):
        return activation_backward_hessian(self.name, d2y, self._y)


class BatchNorm(Layer):
    """Batch normalization for (N,C,H,W) maps (per channel) or (N,F) features (per feature)."""

    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        self.num_features = _size("BatchNorm", "num_features", num_features)
        self.momentum, self.eps = float(momentum), float(eps)
        if not 0 <= self.momentum <= 1 or not self.eps > 0:
            raise ValueError(f"BatchNorm needs momentum in [0, 1] and eps > 0, got {momentum}, {eps}")

    def config(self):
        return dict(num_features=self.num_features, momentum=self.momentum, eps=self.eps)

    def build(self, rng, dtype=np.float32, backend_name="numpy"):
        F = self.num_features
        self.params = [self._param("gamma", np.ones(F), False, dtype, backend_name),
                       self._param("beta", np.zeros(F), False, dtype, backend_name)]
        self.buffers = {"running_mean": backend.to_backend(np.zeros(F, dtype), backend_name),
                        "running_var": backend.to_backend(np.ones(F, dtype), backend_name)}
        self.built = True

    def array_shapes(self):
        F = (self.num_features,)
        return {"gamma": F, "beta": F, "running_mean": F, "running_var": F}

    def output_shape(self, in_shape):
        if in_shape[0] != self.num_features or len(in_shape) not in (1, 3):
            raise ValueError(f"{self!r} expects (C={self.num_features}, H, W) or "
                             f"({self.num_features},), got {tuple(in_shape)}")
        return in_shape

    def forward(self, x, training=False):
        self._require_built()
        gamma, beta = (p.value for p in self.params)
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        if training:
            y, self._cache = batch_norm_forward_train(x, gamma, beta, rm, rv, self.momentum, self.eps)
            return y
        self._cache = None
        return batch_norm_forward_infer(x, gamma, beta, rm, rv, self.eps)

    def backward(self, dy, need_dx=True):
        if self._cache is None:
            raise RuntimeError("BatchNorm.backward needs a forward pass with training=True")
        dx, dgamma, dbeta = batch_norm_backward(dy, self._cache)
        self.params[0].grad, self.params[1].grad = dgamma, dbeta
        return dx


LAYERS = {cls.__name__: cls for cls in
          (Conv2D, Pool2D, AvgPool2D, MaxPool2D, Subsampling, Dense, Flatten, Activation,
           BatchNorm, RBFOutput)}
