#!/usr/bin/env python3
"""Time to 99.0% MNIST test accuracy: our fastest recipe against the same recipe in PyTorch.

    python bench/time_to_accuracy.py [--data DIR] [--seeds 3] [--impl ours-graph torch-graph ...]

The recipe, the same on both sides: LeNet-5 with ReLU and batch norm (before each activation,
no bias there), cross-entropy, SGD with Nesterov momentum 0.9, a one-cycle learning rate
(PyTorch's OneCycleLR: up from lr/25 over 30% of the steps, then down to lr/250000) peaking at
--lr, batch 512, 2 epochs, pixels in [0, 1]. Each library initialises its layers its own way
and keeps its own momentum convention (ours v <- m v - lr g; PyTorch's v <- m v + g, lr applied
after), which differ while the lr changes.

The clock runs from the first training step to the last (the data already on the device, the
model built); the test set is evaluated after, outside it. Before timing, each implementation
runs the recipe once untimed on a few batches, so kernel compilation and cuDNN's autotuning are
not counted; our graph capture and PyTorch's are part of every timed run.

Implementations:
  ours-graph   Sequential.fit, the step captured as a CUDA graph (the default on the GPU)
  ours-eager   Sequential.fit(graph=False)
  torch-graph  the whole step (forward, backward, the update) captured with torch.cuda.graph and
               replayed; the update is torch.optim.SGD's Nesterov step written in torch ops that
               read the learning rate from a device tensor (torch.optim.SGD bakes a float lr into
               a captured graph). The last, shorter batch runs the same step eagerly (as ours)
  torch-eager  torch.optim.SGD(nesterov=True) with torch.optim.lr_scheduler.OneCycleLR
With --backend numpy everything runs on the CPU, ours eagerly and PyTorch's graph variant
without capture: a check of the recipe's accuracy and of this script, not of speed.
Prints one line per run, a table, and a last line "RESULT: ..."; --json writes every figure.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lenet_gpu as L  # noqa: E402
from lenet_gpu import backend  # noqa: E402
from lenet_gpu.data import load_mnist, preprocess  # noqa: E402
from lenet_gpu.model import batch_bounds  # noqa: E402
from lenet_gpu.optim import one_cycle_schedule  # noqa: E402

BATCH, EPOCHS, MOMENTUM, LR = 512, 2, 0.9, 0.4


def ours(x, y, x_test, y_test, seed, lr, graph, xp, limit=None):
    """Train our recipe; -> (seconds, test accuracy in %)."""
    n = limit or x.shape[0]
    steps = EPOCHS * len(batch_bounds(n, BATCH))
    model = L.lenet5(activation="relu", batchnorm=True, seed=seed,
                     backend_name="cupy" if xp is not np else "numpy")
    model.compile("ce", L.SGD(lr, momentum=MOMENTUM, nesterov=True,
                              step_schedule=one_cycle_schedule(steps)))
    sync = xp.cuda.Device().synchronize if xp is not np else (lambda: None)
    sync()
    start = time.perf_counter()
    model.fit(x[:n], y[:n], epochs=EPOCHS, batch_size=BATCH, seed=seed, verbose=0, graph=graph)
    sync()
    seconds = time.perf_counter() - start
    return seconds, 100 * model.evaluate(x_test, y_test)["accuracy"]


def torch_net(torch, seed, device):
    nn = torch.nn
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5, bias=False), nn.BatchNorm2d(120), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84, bias=False), nn.BatchNorm1d(84), nn.ReLU(), nn.Linear(84, 10)).to(device)


def torch_run(torch, x, y, x_test, y_test, seed, lr, graph, limit=None):
    """Train the recipe in PyTorch; -> (seconds, test accuracy in %). On the CPU (tensors not on
    CUDA) the graph variant runs its step without capturing it: a check of everything else."""
    n = limit or x.shape[0]
    bounds = batch_bounds(n, BATCH)
    steps = EPOCHS * len(bounds)
    cuda = x.is_cuda
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    net = torch_net(torch, seed, x.device)
    loss_fn = torch.nn.CrossEntropyLoss()
    params = list(net.parameters())
    gen = torch.Generator(device=x.device).manual_seed(seed)
    if not graph:
        opt = torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, nesterov=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                    cycle_momentum=False)

        def step(idx):
            opt.zero_grad(set_to_none=False)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    else:
        # torch.optim.SGD's Nesterov step, with lr read from the device:
        # v <- m v + g;  w <- w - lr (g + m v)
        velocity = [torch.zeros_like(p) for p in params]
        lr_now = torch.zeros((), device=x.device)
        schedule = one_cycle_schedule(steps)
        for p in params:
            p.grad = torch.zeros_like(p)

        def update():
            with torch.no_grad():
                for p, v in zip(params, velocity):
                    v.mul_(MOMENTUM).add_(p.grad)
                    p.sub_(lr_now * (p.grad + MOMENTUM * v))

        def body(xb, yb):
            for p in params:
                p.grad.zero_()
            loss_fn(net(xb), yb).backward()
            update()

        static_x, static_y = x[:BATCH].clone(), y[:BATCH].clone()
        captured = torch.cuda.CUDAGraph() if cuda else None
        t = [0]

        def step(idx):
            t[0] += 1
            lr_now.fill_(lr * schedule(t[0]))
            if idx.shape[0] != BATCH:
                body(x[idx], y[idx])
            else:
                torch.index_select(x, 0, idx, out=static_x)
                torch.index_select(y, 0, idx, out=static_y)
                if cuda:
                    captured.replay()
                else:
                    body(static_x, static_y)

    sync()
    start = time.perf_counter()
    if graph:   # warm up on a side stream, then capture (PyTorch's documented way), timed
        saved = [p.detach().clone() for p in params] + [b.clone() for b in net.buffers()]
        if cuda:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    body(static_x, static_y)
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(captured):
                body(static_x, static_y)
        with torch.no_grad():     # the warm-up steps trained: start again from the same weights
            for a, b in zip(list(params) + list(net.buffers()), saved):
                a.copy_(b)
            for v in velocity:
                v.zero_()
    for _ in range(EPOCHS):
        order = torch.randperm(n, device=x.device, generator=gen)
        for a, b in bounds:
            step(order[a:b])
    sync()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum())
                      for i in range(0, x_test.shape[0], 1000))
    return seconds, 100 * correct / x_test.shape[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="MNIST directory (default: LENET_GPU_DATA, ...)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=LR, help=f"the one-cycle peak (default {LR})")
    ap.add_argument("--target", type=float, default=99.0, help="test accuracy goal in %%")
    ap.add_argument("--impl", nargs="+", default=["ours-graph", "ours-eager", "torch-graph", "torch-eager"])
    ap.add_argument("--backend", choices=("cupy", "numpy"), default="cupy")
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="train on the first N images only (a quick check of this script)")
    ap.add_argument("--json", default=None, help="write every run's figures here")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.limit is not None and args.limit < 2:
        ap.error(f"--limit must be >= 2, got {args.limit}")

    x_train, y_train, x_test, y_test = load_mnist(args.data)
    x_train, x_test = preprocess(x_train), preprocess(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    impls = list(args.impl)
    if args.backend == "numpy":     # no graphs on the CPU: ours eagerly, PyTorch uncaptured
        xp, impls = np, [i for i in impls if i != "ours-graph"]
    else:
        backend.set_backend("cupy")
        import cupy as xp
    runners = {}
    if any(i.startswith("ours") for i in impls):
        xs = [xp.asarray(a) for a in (x_train, y_train, x_test, y_test)]
        for graph, name in ((None, "ours-graph"), (False, "ours-eager")):
            runners[name] = (lambda graph: lambda seed, limit=None:
                             ours(*xs, seed, args.lr, graph, xp, limit))(graph)
    if any(i.startswith("torch") for i in impls):
        try:
            import torch
            if args.backend == "cupy" and not torch.cuda.is_available():
                raise ImportError("torch has no CUDA here")
        except ImportError as e:
            print(f"PyTorch left out: {e}", file=sys.stderr)
            impls = [i for i in impls if not i.startswith("torch")]
        else:
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
            device = "cuda" if args.backend == "cupy" else "cpu"
            ts = [torch.as_tensor(a, device=device) for a in (x_train, y_train, x_test, y_test)]
            for graph, name in ((True, "torch-graph"), (False, "torch-eager")):
                runners[name] = (lambda graph: lambda seed, limit=None:
                                 torch_run(torch, *ts, seed, args.lr, graph, limit))(graph)
    unknown = [i for i in impls if i not in runners]
    if unknown:
        ap.error(f"unknown --impl {' '.join(unknown)}; choose ours-graph ours-eager torch-graph torch-eager")

    runs = {}
    for impl in impls:
        runners[impl](0, limit=min(args.limit or 4 * BATCH, 4 * BATCH))   # untimed: compile, autotune
        runs[impl] = []
        for seed in range(args.seeds):
            seconds, acc = runners[impl](seed, limit=args.limit)
            runs[impl].append({"seed": seed, "seconds": seconds, "test_accuracy_pct": acc})
            print(f"{impl} seed {seed}: {seconds:.3f} s, test accuracy {acc:.2f}%", flush=True)

    ref = "torch-graph" if "torch-graph" in runs else None
    table = {}
    print(f"\n| implementation | median s | seeds >= {args.target}% | accuracies | / {ref or '-'} |")
    print("|---|---:|---|---|---:|")
    for impl, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        hit = sum(r["test_accuracy_pct"] >= args.target for r in rs)
        ratio = med / statistics.median(r["seconds"] for r in runs[ref]) if ref else None
        table[impl] = {"median_seconds": med, "seeds_at_target": hit, "ratio_to_torch_graph": ratio}
        accs = ", ".join(f"{r['test_accuracy_pct']:.2f}" for r in rs)
        print(f"| {impl} | {med:.3f} | {hit} of {len(rs)} | {accs} | {f'{ratio:.2f}' if ratio else '-'} |")
    device = backend.device_name() if args.backend == "cupy" else "CPU (NumPy)"
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"device": device, "recipe": {"batch": BATCH, "epochs": EPOCHS, "lr": args.lr,
                                          "momentum": MOMENTUM, "schedule": "one-cycle"},
             "target_pct": args.target, "runs": runs, "table": table}, indent=1))
    best = min(runs, key=lambda i: table[i]["median_seconds"] if i.startswith("ours") else np.inf)
    print(f"RESULT: {device}: {best} {table[best]['median_seconds']:.3f} s, "
          f"{table[best]['seeds_at_target']}/{args.seeds} seeds >= {args.target}%"
          + (f", {table[best]['ratio_to_torch_graph']:.2f}x torch-graph "
             f"({table[ref]['median_seconds']:.3f} s, {table[ref]['seeds_at_target']}/{args.seeds})"
             if ref else ""))
    return 0 if all(t["seeds_at_target"] == args.seeds for i, t in table.items() if i.startswith("ours")) else 1


if __name__ == "__main__":
    sys.exit(main())
