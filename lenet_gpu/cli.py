"""The `lenet-gpu` command line: train, evaluate, study, bench, info."""
import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__, backend
from .atomic import atomic_write
from .augment import KINDS as AUGMENT_KINDS, make_augment
from .data import DataError, dataset_record, load_mnist, preprocess, resolve_data_dir
from .layers import INITIALIZERS, check_initializer
from .model import Sequential, TrainingDiverged, batch_bounds
from .models import lenet5, lenet5_paper, mlp
from .ops.activations import ACTIVATIONS
from .ops.losses import PAPER_J
from .optim import SDLM_MU, make_optimizer
from .rundir import EXIT_BAD_INPUT, EXIT_WRITE, RunDir, RunDirError

# exit statuses (README, "Exit statuses"): 0 done, 2 bad input, 3 training diverged,
# 4 an output could not be written, 5 the run directory is in use (rundir.EXIT_BUSY),
# 130 interrupted
EXIT_DIVERGED, EXIT_INTERRUPTED = 3, 130

# Default learning rates when --lr is not given: (optimizer, loss) -> lr
DEFAULT_LR = {("sgd", "mse"): 0.1, ("sgd", "ce"): 0.1, ("momentum", "mse"): 0.05,
              ("momentum", "ce"): 0.01, ("nesterov", "mse"): 0.05, ("nesterov", "ce"): 0.01,
              ("adam", "mse"): 1e-3, ("adam", "ce"): 1e-3,
              ("sgd", "paper"): 0.01, ("momentum", "paper"): 0.005, ("nesterov", "paper"): 0.005,
              ("adam", "paper"): 1e-3,
              # sdlm: --lr multiplies the paper's per-pass schedule (1: the paper's own rates)
              ("sdlm", "mse"): 1.0, ("sdlm", "ce"): 1.0, ("sdlm", "paper"): 1.0}

# --preset: option values a preset gives where the command line gives none. "default" is
# what `lenet-gpu train` does with no options: the study's best 20-epoch configuration.
PRESETS = {
    "default": dict(activation="relu", loss="ce", batchnorm=True, lr_schedule="cosine"),
    "classic": dict(activation="tanh", loss="mse", batchnorm=False, lr_schedule="constant"),
    "modern": dict(activation="relu", loss="ce", batchnorm=True, pool="max", lr_schedule="cosine",
                   augment="affine", epochs=30),
    "paper": dict(model="lenet5-paper", optimizer="sdlm", batch_size=1),
}
# what no preset sets
FALLBACK = dict(model="lenet5", activation="tanh", batchnorm=False, pool="avg", optimizer="sgd",
                lr_schedule="constant", batch_size=20, epochs=20, augment="none")


# lenet5-paper's start when --init is not given: U(+-1.1/sqrt(F)) weights, S2/S4 coefficients
# 0.5. With SDLM's estimates, its first-pass learning rates span 8.9e-5 .. 0.017, where the
# paper reports 7e-5 .. 0.016 (docs/paper/REPORT.md); the literal U(+-2.4/F) is --init lecun.
PAPER_INIT, PAPER_COEF = "fan_in:1.1", 0.5


def apply_preset(args):
    """Fill the options left unset from --preset (else "paper" for --model lenet5-paper,
    "default" otherwise), then from FALLBACK."""
    preset = args.preset or ("paper" if args.model == "lenet5-paper" else "default")
    for source in (PRESETS[preset], FALLBACK):
        for name, value in source.items():
            if getattr(args, name) is None:
                setattr(args, name, value)


def paper_start(args):
    """Without --init, the paper network starts from PAPER_INIT and PAPER_COEF (unless
    --subsample-coef is given): the first-pass learning rates the paper reports."""
    if args.init is None:
        args.init = PAPER_INIT
        args.subsample_coef = PAPER_COEF if args.subsample_coef is None else args.subsample_coef


def resolve_paper_options(args):
    """--model lenet5-paper implies --loss paper --scale paper --pad 2; a conflicting value given
    on the command line is an error rather than silently replaced. Other models keep the old
    defaults (ce, unit, 0) and cannot take --loss paper (it needs an RBF output)."""
    if args.model == "lenet5-paper":
        implied = {"loss": "paper", "scale": "paper", "pad": 2}
        for name, value in implied.items():
            given = getattr(args, name)
            if given is not None and given != value:
                raise ValueError(f"--model lenet5-paper implies --{name} {value}; got --{name} {given}")
            setattr(args, name, value)
        paper_start(args)
        return
    if args.loss == "paper":
        raise ValueError(f"--loss paper needs an RBF output layer: use --model lenet5-paper, "
                         f"not --model {args.model}")
    args.loss = args.loss or "ce"
    args.scale = args.scale or "unit"
    args.pad = 0 if args.pad is None else args.pad


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def _select_backend(name):
    chosen = backend.set_backend(name)
    print(f"backend: {chosen} on {backend.device_name()}", file=sys.stderr)
    return chosen


def build_model(args):
    if args.model == "lenet5-paper":
        return lenet5_paper(seed=args.seed, init=args.init, subsample_coef=args.subsample_coef)
    output = "softmax" if args.loss == "ce" else ("tanh" if "tanh" in args.activation else None)
    kw = dict(activation=args.activation, output=output, batchnorm=args.batchnorm,
              init=args.init, input_shape=(1, 28 + 2 * args.pad, 28 + 2 * args.pad), seed=args.seed)
    if args.model == "mlp":
        return mlp(**kw)
    return lenet5(pool=args.pool, c3_table=args.c3_table, **kw)


def load_data(args):
    x_train, y_train, x_test, y_test = load_mnist(args.data, download=getattr(args, "download", False))
    if getattr(args, "train_limit", None):
        x_train, y_train = x_train[:args.train_limit], y_train[:args.train_limit]
    return x_train, y_train, x_test, y_test


def cmd_train(args):
    out = args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    apply_preset(args)
    resolve_paper_options(args)
    check_initializer(args.init)
    if args.subsample_coef is not None and args.model != "lenet5-paper":
        raise ValueError("--subsample-coef is for --model lenet5-paper (its S2 and S4 layers)")
    if args.lr is None:
        args.lr = DEFAULT_LR[(args.optimizer, args.loss)]
    if args.order is None:
        args.order = "fixed" if args.optimizer == "sdlm" else "reshuffle"
    if args.paper_j is not None and args.loss != "paper":
        raise ValueError("--paper-j is a constant of the paper loss: use it with --model lenet5-paper")
    if args.paper_j is not None and not args.paper_j > 0:
        raise ValueError(f"--paper-j must be > 0, got {args.paper_j}")
    with RunDir(out, args.overwrite):          # checked and locked before any work
        return _train(args, out)


def _train(args, out):
    metrics_path, model_path = os.path.join(out, "metrics.json"), os.path.join(out, "model.npz")
    x_train, y_train, x_test, y_test = load_data(args)
    chosen = _select_backend(args.backend)
    prep = {"scale": args.scale, "pad": args.pad}
    x_train, x_test = preprocess(x_train, **prep), preprocess(x_test, **prep)

    model = build_model(args)
    model.meta["preprocessing"] = prep
    model.compile(args.loss, make_optimizer(args.optimizer, args.lr, args.weight_decay, args.momentum,
                                            batch_size=args.batch_size, seed=args.seed,
                                            schedule=args.lr_schedule, epochs=args.epochs,
                                            mu=args.sdlm_mu,
                                            steps_per_epoch=len(batch_bounds(len(x_train), args.batch_size))),
                  paper_j=args.paper_j)
    if not args.quiet:
        model.summary(file=sys.stderr)
    # the run's record: its options, and the data by what identifies them (not where they lay)
    config = {k: v for k, v in vars(args).items() if k not in ("func", "data", "out")}
    report = {"config": config, "dataset": dataset_record(resolve_data_dir(args.data)),
              "backend": chosen, "device": backend.device_name(),
              "lenet_gpu_version": __version__, "num_params": model.num_params(), "epochs": []}
    saved = []          # epochs whose model this run wrote

    def checkpoint(epoch, record, model):
        report["epochs"].append(record)
        report["final_test_error_pct"] = record["test_error_pct"]
        model.save(model_path)                 # atomic: the previous epoch's file survives a crash
        write_json(metrics_path, report)
        saved.append(epoch)

    def last_good():
        return (f"the model after epoch {saved[-1]} is in {model_path}" if saved
                else "no model was written (no epoch finished)")

    try:
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                  validation_data=(x_test, y_test), seed=args.seed,
                  shuffle="once" if args.order == "fixed" else True,
                  verbose=0 if args.quiet else None, callback=checkpoint,
                  augment=make_augment(args.augment, n=len(x_train), seed=args.seed),
                  graph=False if args.eager else None)
    except TrainingDiverged as e:
        report["diverged_in_epoch"] = e.epoch
        write_json(metrics_path, report)
        print(f"error: {e}; {last_good()}. Try a smaller --lr.", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print(f"\ninterrupted; {last_good()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:
        print(f"error: cannot write the run's files in {out} ({e.strerror or e}); {last_good()}",
              file=sys.stderr)
        return EXIT_WRITE
    if report["epochs"]:
        report["seconds_total"] = sum(r["seconds"] for r in report["epochs"])
        write_json(metrics_path, report)
    print(f"final test error {report.get('final_test_error_pct', float('nan')):.2f}% "
          f"after {args.epochs} epochs; wrote {metrics_path} and {model_path}")
    return 0


def cmd_evaluate(args):
    _select_backend(args.backend)
    model = Sequential.load(args.model)
    _, _, x_test, y_test = load_mnist(args.data, download=args.download)
    prep = model.meta.get("preprocessing", {"scale": "unit", "pad": 0})
    x = preprocess(x_test, **prep)
    if model.loss is None:
        model.loss = "ce"
    result = model.evaluate(x, y_test)
    result["errors"] = int(round(result["error_pct"] * result["n"] / 100))
    if args.json:
        print(json.dumps({"model": args.model, **result}))
    else:
        print(f"test error {result['error_pct']:.2f}% ({result['errors']} of {result['n']}), "
              f"{model.loss} loss {result['loss']:.4f}")
    return 0


def cmd_predict(args):
    """The digit in each image: class, probability and the runners-up."""
    from .images import ImageError
    from .predict import classify, pretrained
    _select_backend(args.backend)
    model = Sequential.load(args.model) if args.model else pretrained()
    try:
        results = classify(model, args.images, top=args.top)
    except ImageError as e:
        raise ValueError(str(e)) from None
    if args.json:
        print(json.dumps([{"image": name, "class": top[0][0], "probability": top[0][1],
                           "top": [{"class": c, "probability": p} for c, p in top]}
                          for name, top in results]))
        return 0
    for name, top in results:
        rest = ", ".join(f"{c} ({p:.1%})" for c, p in top[1:])
        print(f"{name}: {top[0][0]} ({top[0][1]:.1%})" + (f"; then {rest}" if rest else ""))
    return 0


def cmd_show(args):
    """lenet-gpu show maps|kernels|confusion|errors|curves: a PNG figure."""
    from . import show
    from .predict import prepare, pretrained
    if args.what == "curves":
        if not args.runs:
            raise ValueError("show curves needs one or more run directories (or metrics.json files)")
        print(f"wrote {show.curves(args.runs, args.out)}")
        return 0
    backend.set_backend(args.backend or "numpy")
    model = Sequential.load(args.model) if args.model else pretrained()
    if args.what == "kernels":
        print(f"wrote {show.kernels(model, args.out)}")
        return 0
    if args.what == "maps" and args.image:
        from .images import ImageError, read_images
        try:
            images, _ = read_images([args.image])
        except ImageError as e:
            raise ValueError(str(e)) from None
        print(f"wrote {show.maps(model, prepare(model, images[:1])[0], args.out)}")
        return 0
    _, _, x_test, y_test = load_mnist(args.data, download=args.download)
    if args.what == "maps":
        if not 0 <= args.index < len(x_test):
            raise ValueError(f"--index must be in 0..{len(x_test) - 1}, got {args.index}")
        path = show.maps(model, prepare(model, x_test[args.index:args.index + 1])[0], args.out)
    elif args.what == "confusion":
        path = show.confusion(model, prepare(model, x_test), y_test, args.out)
    else:
        path = show.errors(model, prepare(model, x_test), y_test, x_test, args.out)
    print(f"wrote {path}")
    return 0


def cmd_show_augment(args):
    """A PNG grid: each row one training digit, first column the original, then distortions."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("error: show-augment needs matplotlib: pip install 'lenet-gpu[plot]'") from None
    x_train, _, _, _ = load_mnist(args.data, download=args.download)
    x = preprocess(x_train[:args.rows], scale="paper", pad=2)     # the paper's 32x32 frame
    augment = make_augment(args.augment) or (lambda xb, rng: xb)
    rng = np.random.default_rng(args.seed)
    columns = [x] + [augment(x, rng) for _ in range(args.cols)]
    fig, axes = plt.subplots(args.rows, len(columns), figsize=(len(columns), args.rows), squeeze=False)
    for i in range(args.rows):
        for j, col in enumerate(columns):
            ax = axes[i][j]
            ax.imshow(col[i, 0], cmap="gray_r", vmin=-0.1, vmax=1.175)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_title("original", fontsize=8)
    fig.suptitle(f"--augment {args.augment} (seed {args.seed})", fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


def cmd_bench(args):
    """Time training steps on random data: a quick look at this machine's speed."""
    _select_backend(args.backend)
    model = lenet5(activation="tanh") if args.model == "lenet5" else mlp()
    model.compile("ce", make_optimizer("sgd", 0.01))
    rng = np.random.default_rng(0)
    xp = backend.xp()
    x = backend.to_backend(rng.random((args.batch_size, 1, 28, 28), dtype=np.float32))
    y = backend.to_backend(rng.integers(0, 10, args.batch_size))
    for _ in range(3):
        model.train_step(x, y)
    sync = (lambda: xp.cuda.Device().synchronize()) if xp is not np else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        model.train_step(x, y)
    sync()
    dt = (time.perf_counter() - t0) / args.steps
    print(f"{args.model} batch {args.batch_size}: {dt * 1e3:.2f} ms/step, "
          f"{dt * 60000 / args.batch_size:.2f} s per 60,000-image epoch ({backend.get_backend()})")
    return 0


def cmd_sdlm_rates(args):
    """The paper network's effective SDLM learning rates eta / (mu + h) for pass 1, from the h
    that `train --model lenet5-paper --optimizer sdlm` would estimate with the same options and
    seed, beside the range the paper reports (section III-B)."""
    from .optim import SDLM
    paper_start(args)
    check_initializer(args.init)
    _select_backend(args.backend)
    x_train, y_train, _, _ = load_mnist(args.data, download=args.download)
    model = lenet5_paper(seed=args.seed, init=args.init, subsample_coef=args.subsample_coef)
    opt = SDLM(lr_scale=DEFAULT_LR[("sdlm", "paper")] if args.lr is None else args.lr,
               mu=args.sdlm_mu, seed=args.seed)
    model.compile("paper", opt)
    x = backend.to_backend(preprocess(x_train, scale="paper", pad=2))
    opt.start_epoch(1, model, x, backend.to_backend(y_train.astype(np.int64)))
    r = opt.rates
    if args.json:
        print(json.dumps({"init": args.init, "subsample_coef": args.subsample_coef,
                          "seed": args.seed, "lr": args.lr, **r}))
        return 0
    print(f"pass 1, init {args.init}, eta {opt.lr:g} (ceiling eta/mu = {r['ceiling']:.3g}); "
          f"the paper: about 7e-05 .. 0.016")
    rows = [("all", r)] + list(r["arrays"].items())
    print(f"{'parameters':<16} {'min':>10} {'median':>10} {'max':>10} {'at ceiling':>11}")
    for name, a in rows:
        print(f"{name:<16} {a['min']:>10.3g} {a['median']:>10.3g} {a['max']:>10.3g} "
              f"{a['at_ceiling_pct']:>10.1f}%")
    return 0


def cmd_study(args):
    from .study import run_study
    return run_study(args, main)


def cmd_info(args):
    print(f"lenet-gpu {__version__}, numpy {np.__version__}")
    if backend.gpu_available():
        backend.set_backend("cupy")
        print(f"GPU: {backend.device_name()}")
    else:
        print(f"GPU: not usable ({backend.gpu_unavailable_reason()})")
    return 0


def make_parser():
    p = argparse.ArgumentParser(prog="lenet-gpu", description=__doc__)
    p.add_argument("--version", action="version", version=f"lenet-gpu {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--data", metavar="DIR",
                        help="directory with the four MNIST IDX files (gz or raw); default "
                             "$LENET_GPU_DATA, else the per-user cache")
        sp.add_argument("--download", action="store_true",
                        help="download MNIST into the data directory if missing (SHA-256 verified)")
        sp.add_argument("--backend", choices=backend.BACKENDS, default=None,
                        help="auto (GPU if usable), numpy or cupy; default $LENET_GPU_BACKEND or auto")

    def sdlm_mu(sp):
        sp.add_argument("--sdlm-mu", type=float, default=SDLM_MU, metavar="MU",
                        help=f"sdlm: mu in the step eta/(mu + h), which caps every step at eta/mu "
                             f"(default {SDLM_MU}, the paper's)")

    t = sub.add_parser("train", help="train a model on MNIST")
    common(t)
    t.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help="a named recipe for the options not given: default (no --preset: ReLU, "
                        "batch norm, cross-entropy, cosine lr, 20 epochs; the study's best), classic "
                        "(the C++ version's baseline: tanh, MSE, average pooling), modern (default + "
                        "max pooling, affine distortions, 30 epochs), paper (the 1998 network, SDLM, "
                        "batch 1)")
    t.add_argument("--model", choices=("lenet5", "lenet5-paper", "mlp"), default=None,
                   help="lenet5-paper: the 1998 network (trainable subsampling, C3 table, RBF "
                        "output); it implies --loss paper --scale paper --pad 2 (32x32 inputs in "
                        "[-0.1, 1.175]) and ignores --activation, --batchnorm, --pool, --c3-table")
    t.add_argument("--activation", choices=[a for a in ACTIVATIONS if a != "softmax"], default=None)
    t.add_argument("--loss", choices=("mse", "ce", "paper"), default=None,
                   help="default ce; paper (the 1998 criterion on RBF penalties) for lenet5-paper")
    t.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--pool", choices=("avg", "max"), default=None)
    t.add_argument("--c3-table", action="store_true", help="the paper's partial C3 connections")
    t.add_argument("--init", default=None, metavar="NAME",
                   help=f"one of {', '.join(INITIALIZERS)}; default: he for relu, xavier "
                        f"otherwise, {PAPER_INIT} with --subsample-coef {PAPER_COEF} for "
                        "lenet5-paper (the paper's first-pass rates); lecun: the paper's literal "
                        "U(+-2.4/F); lecun_sqrt: U(+-2.4/sqrt(F)); fan_in:G: U(+-G/sqrt(F))")
    t.add_argument("--subsample-coef", type=float, default=None, metavar="C",
                   help=f"lenet5-paper: S2 and S4's initial coefficient (default {PAPER_COEF} when --init "
                        "is not given, else drawn by --init)")
    t.add_argument("--order", choices=("reshuffle", "fixed"), default=None,
                   help="reshuffle: a new sample order every epoch (default); fixed: one random "
                        "order kept for every pass, the paper's (default for sdlm)")
    t.add_argument("--weight-decay", type=float, default=0.0, metavar="F", help="L2 lambda")
    t.add_argument("--optimizer", choices=("sgd", "momentum", "nesterov", "adam", "sdlm"),
                   default=None,
                   help="sdlm: the paper's stochastic diagonal Levenberg-Marquardt (appendix C): "
                        "per-weight steps eta/(mu + h), h re-estimated on 500 samples before "
                        "each pass, eta from the paper's 20-pass schedule (0.0005 down to 0.00001)")
    t.add_argument("--lr", type=float, default=None, metavar="F",
                   help="learning rate (default depends on optimizer and loss, e.g. sgd 0.1, "
                        "momentum 0.01, adam 0.001); for sdlm a factor on the paper's schedule "
                        "(default 1: the paper's own rates)")
    t.add_argument("--momentum", type=float, default=0.9)
    sdlm_mu(t)
    t.add_argument("--paper-j", type=float, default=None, metavar="J",
                   help="the paper loss's positive constant j (eq. 9; the paper gives no value): "
                        "a wrong class's penalty is pushed up while it is within a few units of j "
                        f"(default {PAPER_J}; lenet5-paper only)")
    t.add_argument("--lr-schedule", choices=("constant", "cosine", "one-cycle"), default=None,
                   help="cosine: lr decays from --lr to about 0 over the epochs (set per epoch); "
                        "one-cycle: PyTorch's OneCycleLR, set per step: up from --lr/25 to --lr "
                        "over the first 30%% of the steps, then down to --lr/250000")
    t.add_argument("--batch-size", type=int, default=None, metavar="B")
    t.add_argument("--epochs", type=int, default=None, metavar="N")
    t.add_argument("--seed", type=int, default=0, metavar="S")
    t.add_argument("--scale", choices=("unit", "paper", "standard"), default=None,
                   help="pixel scaling: [0,1] (default), the paper's [-0.1,1.175], or mean/std")
    t.add_argument("--pad", type=int, default=None,
                   help="pad the 28x28 images by this many pixels (default 0)")
    t.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train on the first N images only (quick checks)")
    t.add_argument("--augment", choices=AUGMENT_KINDS, default=None,
                   help="distort each training batch: affine (the paper's translations, scaling, "
                        "squeezing, shearing) or elastic (Simard et al. 2003, sigma 4, alpha 34); "
                        "affine-fixed: the paper's regime, 9 affine copies of each image made once "
                        "and shown in turn with the original; computed on the batch's device, "
                        "reproducible by --seed")
    t.add_argument("--eager", action="store_true",
                   help="on the GPU, launch every kernel of every step from Python instead of "
                        "replaying the step captured once as a CUDA graph (same numbers, slower)")
    t.add_argument("--out", metavar="RUN_DIR", help="default runs/<date-time>")
    t.add_argument("--overwrite", action="store_true", help="allow replacing a run in RUN_DIR")
    t.add_argument("--quiet", action="store_true", help="no summary, no per-epoch lines")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test error of a saved model")
    e.add_argument("model", metavar="MODEL.npz")
    common(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="the digit in each image file (PNG/JPEG/BMP/GIF, .npy, "
                                        "IDX, or a directory of them)")
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.add_argument("--model", metavar="MODEL.npz", help="default: the model shipped with lenet-gpu")
    pr.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per image")
    pr.add_argument("--json", action="store_true", help="one JSON list, an object per image")
    pr.add_argument("--backend", choices=backend.BACKENDS, default=None)
    pr.set_defaults(func=cmd_predict)

    sh = sub.add_parser("show", help="a PNG of what a model sees: maps (every layer's output for "
                                     "one digit), kernels, confusion, errors (every misclassified "
                                     "test digit), curves (error per epoch of runs)")
    sh.add_argument("what", choices=("maps", "kernels", "confusion", "errors", "curves"))
    sh.add_argument("runs", nargs="*", metavar="RUN", help="curves: run directories or metrics.json")
    common(sh)
    sh.add_argument("--model", metavar="MODEL.npz", help="default: the model shipped with lenet-gpu")
    sh.add_argument("--image", metavar="IMAGE", help="maps: a digit image (default: a test digit)")
    sh.add_argument("--index", type=int, default=0, help="maps: which test digit (default 0)")
    sh.add_argument("--out", required=True, metavar="FIGURE.png")
    sh.set_defaults(func=cmd_show)

    a = sub.add_parser("show-augment", help="write a PNG grid of distorted training digits "
                                            "(needs matplotlib)")
    common(a)
    a.add_argument("--augment", choices=AUGMENT_KINDS, default="elastic")
    a.add_argument("--out", required=True, metavar="GRID.png")
    a.add_argument("--rows", type=int, default=6, help="digits, one per row")
    a.add_argument("--cols", type=int, default=8, help="distortions of each digit")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=cmd_show_augment)

    b = sub.add_parser("bench", help="time training steps on random data")
    b.add_argument("--backend", choices=backend.BACKENDS, default=None)
    b.add_argument("--model", choices=("lenet5", "mlp"), default="lenet5")
    b.add_argument("--batch-size", type=int, default=128, metavar="B")
    b.add_argument("--steps", type=int, default=50)
    b.set_defaults(func=cmd_bench)

    from .study import CONFIGS, STUDY
    s = sub.add_parser("study", help="the C++ version's six configurations x several seeds, one report")
    s.add_argument("--data", metavar="DIR", help="as for train")
    s.add_argument("--backend", choices=backend.BACKENDS, default=None)
    s.add_argument("--seeds", type=int, default=3, help="number of seeds per configuration")
    s.add_argument("--seed0", type=int, default=0, help="first seed")
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--batch-size", type=int, default=20, metavar="B")
    s.add_argument("--configs", nargs="+", default=STUDY, metavar="NAME",
                   help=f"subset of: {' '.join(CONFIGS)}")
    s.add_argument("--out", required=True, metavar="STUDY_DIR")
    s.add_argument("--notes", metavar="FILE", help="markdown put into REPORT.md as its discussion")
    s.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train each cell on the first N images only (quick checks)")
    s.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N cells at a time, each its own process (they share the cores, "
                        "or the one GPU); default 1")
    s.add_argument("--report-only", action="store_true",
                   help="train nothing; gather the finished cells into the report")
    s.set_defaults(func=cmd_study, argv=None)

    r = sub.add_parser("sdlm-rates", help="the paper network's first-pass SDLM learning rates "
                                          "for an initialisation, against the paper's range")
    common(r)
    r.add_argument("--init", default=None, metavar="NAME",
                   help=f"as for train (default {PAPER_INIT} with --subsample-coef {PAPER_COEF})")
    r.add_argument("--subsample-coef", type=float, default=None, metavar="C", help="as for train")
    r.add_argument("--lr", type=float, default=None, metavar="F",
                   help="factor on the paper's schedule, as for train --optimizer sdlm")
    sdlm_mu(r)
    r.add_argument("--seed", type=int, default=0, metavar="S")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=cmd_sdlm_rates)

    i = sub.add_parser("info", help="versions and the GPU found")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.command == "study" and args.argv is None:
        args.argv = list(sys.argv[1:] if argv is None else argv)
    lowest = {"seed": 0, **{name: 1 for name in ("batch_size", "epochs", "steps", "seeds", "rows",
                                                  "cols", "train_limit", "top", "jobs")}}
    for name, low in lowest.items():
        if getattr(args, name, None) is not None and getattr(args, name) < low:
            print(f"error: --{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
    if not 0 <= getattr(args, "momentum", 0) < 1:
        print(f"error: --momentum must be in [0, 1), got {args.momentum}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except RunDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except (DataError, backend.BackendError, FileNotFoundError, ValueError, NotImplementedError,
            ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:        # writing an output (a plot, a report) failed
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"error: cannot write{where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_WRITE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
