"""Pictures of what a LeNet-5 sees and does (matplotlib, the `plot` extra), each written to a PNG.

    maps(model, x, path)            every layer's output for one input, from the input on
    kernels(model, path)            the learned kernels of the first two convolutions
    confusion(model, x, y, path)    the test set's confusion matrix
    errors(model, x, y, images, path)   every misclassified digit, true -> predicted
    curves(runs, path)              test and training error per epoch of one or more runs
"""
import json
from pathlib import Path

import numpy as np

from .layers import Conv2D


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'lenet-gpu[plot]'") from None
    return plt


def _save(fig, path):
    from .atomic import atomic_write
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90, bbox_inches="tight"))
    _plt().close(fig)
    return path


def predicted_class(model, x):
    out = model.predict(x)
    return out.argmin(axis=1) if model.loss == "paper" else out.argmax(axis=1)


def maps(model, x, path):
    """One row per stage: the input, then each layer's output (maps as images, vectors as bars)."""
    plt = _plt()
    a = np.asarray(x, dtype=model.dtype)[None]
    stages = [("input", a[0])]
    for layer in model.layers:
        a = layer.infer(a)
        stages.append((layer.describe(), a[0]))
    cols = min(16, max(s.shape[0] if s.ndim == 3 and s.shape[1] > 1 else 1 for _, s in stages))
    fig = plt.figure(figsize=(cols * 0.9, len(stages) * 1.0))
    grid = fig.add_gridspec(len(stages), cols, hspace=0.8)
    for r, (name, s) in enumerate(stages):
        if s.ndim == 3 and s.shape[1] > 1:          # feature maps, one image each
            first = None
            for k in range(min(s.shape[0], cols)):
                ax = fig.add_subplot(grid[r, k])
                ax.imshow(s[k], cmap="gray")
                ax.axis("off")
                first = first or ax
        else:                                       # a vector: one bar per unit, across the row
            first = fig.add_subplot(grid[r, :])
            v = s.reshape(-1)
            first.bar(np.arange(v.size), v, width=1.0)
            first.set_xticks(range(v.size) if v.size <= 10 else [])
            first.set_yticks([])
        first.set_title(name, fontsize=7, loc="left")
    return _save(fig, path)


def kernels(model, path):
    """The first two Conv2D layers' kernels: C1's (one row) and C3's (a row per output map)."""
    plt = _plt()
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)][:2]
    if not convs:
        raise ValueError("the model has no convolution layer")
    # C1: all its kernels in one row (its input has one channel); C3: a row per output map
    c1 = np.asarray(convs[0].params[0].value)[:, 0]
    grid = [list(c1)] + ([list(w) for w in np.asarray(convs[1].params[0].value)] if len(convs) > 1 else [])
    cols = max(len(r) for r in grid)
    fig, axes = plt.subplots(len(grid), cols, figsize=(cols * 0.8, len(grid) * 0.8), squeeze=False)
    for r, kernels_row in enumerate(grid):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(kernels_row) and np.any(kernels_row[c]):
                ax.imshow(kernels_row[c], cmap="bwr", vmin=-np.abs(kernels_row[c]).max(),
                          vmax=np.abs(kernels_row[c]).max())
    axes[0][0].set_title("C1", fontsize=8, loc="left")
    if len(grid) > 1:
        axes[1][0].set_title("C3 (a row per map; blank: no connection)", fontsize=8, loc="left")
    return _save(fig, path)


def confusion(model, x, y, path):
    plt = _plt()
    pred = predicted_class(model, x)
    m = np.zeros((10, 10), int)
    np.add.at(m, (np.asarray(y), pred), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(np.log1p(m), cmap="Blues")
    for i in range(10):
        for j in range(10):
            if m[i, j]:
                ax.text(j, i, m[i, j], ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    errors = int(m.sum() - np.trace(m))
    ax.set_title(f"{errors} errors in {m.sum()} ({100 * errors / m.sum():.2f}%)", fontsize=9)
    return _save(fig, path)


def errors(model, x, y, images, path, cols=20):
    """Every misclassified digit, as the 1998 paper shows its own: true -> predicted."""
    plt = _plt()
    pred = predicted_class(model, x)
    wrong = np.flatnonzero(pred != np.asarray(y))
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6, rows * 0.75), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"{y[i]}->{pred[i]}", fontsize=7)
    fig.suptitle(f"{len(wrong)} misclassified of {len(y)} (true->predicted)", fontsize=9)
    return _save(fig, path)


def curves(runs, path):
    """Test (solid) and training (dashed) error per epoch of each run directory or metrics.json."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        p = Path(run)
        p = p / "metrics.json" if p.is_dir() else p
        try:
            m = json.loads(p.read_text())
            epochs = [e["epoch"] for e in m["epochs"]]
            test = [e["test_error_pct"] for e in m["epochs"]]
            train = [e["train_error_pct"] for e in m["epochs"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a run's metrics.json ({e})") from None
        line, = ax.plot(epochs, test, label=f"{run} (test)")
        ax.plot(epochs, train, "--", color=line.get_color(), alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error % (dashed: training)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)
