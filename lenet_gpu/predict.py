"""Using a trained LeNet-5: the model in the box, and class probabilities for real images.

    model = lenet_gpu.pretrained()                        # no data, no training
    top = classify(model, ["digit.png", "scans/"])        # [(name, [(class, p), ...]), ...]

The shipped model (lenet_gpu/pretrained/lenet5.npz) was trained by our own CLI; its file's
metadata (`model.meta["training"]`) holds the command, seed and test error, and
docs/pretrained.md tells how it was made.
"""
from pathlib import Path

import numpy as np

from .data import preprocess
from .images import read_images
from .model import Sequential

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "lenet5.npz"


def pretrained(backend_name=None):
    """The LeNet-5 shipped with the package (ReLU, batch norm, max pooling; trained on MNIST)."""
    if not PRETRAINED.is_file():
        raise FileNotFoundError(f"the shipped model is missing from the installation ({PRETRAINED})")
    return Sequential.load(PRETRAINED, backend_name=backend_name)


def prepare(model, images):
    """uint8 MNIST-form digits (N, 28, 28) -> the model's inputs, scaled and padded as its
    training data were (model.meta["preprocessing"])."""
    return preprocess(images, **model.meta.get("preprocessing", {"scale": "unit", "pad": 0}))


def probabilities(model, x):
    """Class probabilities (N, K) for prepared inputs x: the softmax output of a softmax model;
    for the paper's RBF model its p_i = e^-y_i / (e^-j + sum_k e^-y_k) renormalised over the
    classes (the e^-j term drops out); a softmax of the outputs for any other model."""
    out = model.predict(x).astype(np.float64)
    if model.loss == "paper":
        out = -out
    elif model.layers[-1].config().get("name") == "softmax":
        return out
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def classify(model, sources, top=3):
    """Image files, directories, .npy or IDX files (see images.read_images) ->
    [(name, [(class, probability), ... the `top` most likely]), ...]."""
    images, names = read_images(sources)
    p = probabilities(model, prepare(model, images))
    order = np.argsort(-p, axis=1, kind="stable")[:, :top]
    return [(name, [(int(c), float(p[i, c])) for c in order[i]]) for i, name in enumerate(names)]
