"""Ready-made networks: LeNet-5 as users know it (Keras/PyTorch style) and the C++ version's MLP."""
from .layers import (Activation, AvgPool2D, BatchNorm, Conv2D, Dense, Flatten, MaxPool2D,
                     RBFOutput, Subsampling)
from .model import Sequential
from .ops.activations import ACTIVATIONS


def default_init(activation):
    return "he" if activation == "relu" else "xavier"


def check_output(output):
    """The last layer's activation name, or None for plain logits."""
    if output is not None and output not in ACTIVATIONS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(ACTIVATIONS)}, "
                         "or None for plain logits")
    return output


def lenet5(activation="tanh", output="softmax", batchnorm=False, pool="avg", c3_table=False,
           init=None, input_shape=(1, 28, 28), seed=0, backend_name=None):
    """LeNet-5 on 28x28 inputs (C1 pads by 2, as the paper's 32x32 frame does).

    activation: tanh | scaled_tanh | relu | sigmoid for C1, C3, C5 and F6.
    output: the last layer's activation, "softmax" (for cross-entropy), another activation
    name (e.g. "tanh" for MSE on one-hot targets), or None for plain logits.
    batchnorm: BatchNorm after every conv and hidden dense layer, before the activation; those
    layers then have no bias (batch norm subtracts the mean, so a bias there has a gradient of
    exactly zero and never moves: BatchNorm's beta is the bias).
    c3_table: use the paper's partial connection table between S2 and C3.
    """
    check_output(output)
    if pool not in ("avg", "max"):
        raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
    init = init or default_init(activation)
    Pool = AvgPool2D if pool == "avg" else MaxPool2D
    C, H, W = input_shape
    if (H, W) not in ((28, 28), (32, 32)):
        raise ValueError(f"lenet5 takes 28x28 (padded by C1) or 32x32 inputs, got {H}x{W}")
    pad = 2 if H == 28 else 0

    bias = not batchnorm

    def norm(n):
        return [BatchNorm(n)] if batchnorm else []

    model = Sequential(input_shape=input_shape, seed=seed, backend_name=backend_name)
    for layer in [
        Conv2D(C, 6, 5, padding=pad, bias=bias, init=init), *norm(6), Activation(activation),  # C1
        Pool(2),                                                                               # S2
        Conv2D(6, 16, 5, table="c3" if c3_table else None, bias=bias, init=init), *norm(16),   # C3
        Activation(activation),
        Pool(2),                                                                               # S4
        Conv2D(16, 120, 5, bias=bias, init=init), *norm(120), Activation(activation),          # C5
        Flatten(),
        Dense(120, 84, bias=bias, init=init), *norm(84), Activation(activation),               # F6
        Dense(84, 10, init=init if output != "softmax" else "xavier"),                         # output
    ]:
        model.add(layer)
    if output:
        model.add(Activation(output))
    return model


def lenet5_paper(seed=0, backend_name=None, init="fan_in:1.1", subsample_coef=0.5):
    """LeNet-5 as in LeCun et al. 1998 (section II-B, appendix A), on 32x32 inputs.

    C1 conv 6@5x5, S2 trainable subsampling, C3 conv 16@5x5 with the paper's connection table,
    S4 subsampling, C5 conv 120@5x5, F6 84 units, every one followed by f(a) = 1.7159 tanh(2a/3),
    then 10 Euclidean RBF units with fixed +-1 digit-bitmap centres. Trainable parameters per
    layer, as in the paper: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164 (60,000 in
    all). Train with loss "paper" on inputs scaled to the paper's [-0.1, 1.175] and padded to
    32x32 (data.preprocess(x, "paper", pad=2)); the outputs are penalties, the predicted class
    is their argmin.

    init: "lecun" (default), the paper's U(+-2.4/F), F the fan-in; "lecun_sqrt" for
    U(+-2.4/sqrt(F)); "fan_in:g" for U(+-g/sqrt(F)). From the paper's literal init the
    activations start small (they shrink 5 to 10x per weighted layer) and SDLM's steps sit at
    their ceiling; "fan_in:1" to "fan_in:1.2" give the paper's first-pass learning rates
    (docs/paper/REPORT.md). subsample_coef: S2 and S4's initial coefficient (None: drawn by init).
    """
    model = Sequential(input_shape=(1, 32, 32), seed=seed, backend_name=backend_name)
    for layer in [
        Conv2D(1, 6, kernel_size=5, init=init), Activation("scaled_tanh"),                # C1
        Subsampling(6, init=init, coef=subsample_coef), Activation("scaled_tanh"),        # S2
        Conv2D(6, 16, kernel_size=5, table="c3", init=init), Activation("scaled_tanh"),   # C3
        Subsampling(16, init=init, coef=subsample_coef), Activation("scaled_tanh"),       # S4
        Conv2D(16, 120, kernel_size=5, init=init), Activation("scaled_tanh"),             # C5
        Flatten(),
        Dense(120, 84, init=init), Activation("scaled_tanh"),                             # F6
        RBFOutput(84, 10),                                                                # output
    ]:
        model.add(layer)
    model.loss = "paper"
    return model


def mlp(hidden=(500, 150), activation="tanh", output="softmax", batchnorm=False, init=None,
        input_shape=(1, 28, 28), seed=0, backend_name=None):
    """The C++ version's dense network, 784-500-150-10 by default."""
    check_output(output)
    init = init or default_init(activation)
    model = Sequential(input_shape=input_shape, seed=seed, backend_name=backend_name)
    model.add(Flatten())
    n_in = model.output_shape()[0]
    for n in hidden:
        model.add(Dense(n_in, n, bias=not batchnorm, init=init))   # no bias in front of BN
        if batchnorm:
            model.add(BatchNorm(n))
        model.add(Activation(activation))
        n_in = n
    model.add(Dense(n_in, 10, init=init if output != "softmax" else "xavier"))
    if output:
        model.add(Activation(output))
    return model
