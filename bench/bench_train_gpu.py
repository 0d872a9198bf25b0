"""One training epoch (60,000 images) of LeNet-5, tanh + CE + SGD lr 0.1, on the GPU: ours eager,
ours with the step captured as a CUDA graph, PyTorch eager and PyTorch with a CUDA graph
(`torch.cuda.graph`, whole-network capture as in PyTorch's docs), in one run on one GPU, at
batch 20, 128 and 1024. torch.compile(mode="max-autotune") joins with BENCH_TORCH_COMPILE=1
(it compiles for minutes).

    python -m pytest bench/bench_train_gpu.py -q          (the ratio table comes last)

The data are random images of MNIST's size already on the device (an epoch's speed does not
depend on the pixels); each timed call runs a whole epoch, shuffling included, and waits for
the device. Our fit() captures its graph inside the timed epoch: the capture is part of the cost.
"""
import os

import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu import backend

pytestmark = pytest.mark.gpu

if not backend.gpu_available():
    pytest.skip(f"no usable CUDA GPU ({backend.gpu_unavailable_reason()})", allow_module_level=True)

import cupy  # noqa: E402

N_TRAIN = 60_000
BATCHES = [20, 128, 1024]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((N_TRAIN, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, N_TRAIN)


def run(benchmark, record, fn, batch, impl, sync):
    def timed():
        fn()
        sync()
    benchmark.group = f"epoch batch {batch}"
    benchmark.extra_info.update(batch=batch, impl=impl, images=N_TRAIN)
    benchmark.pedantic(timed, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    record(benchmark, f"batch {batch:>4}", impl)


@pytest.mark.parametrize("graph", [False, None], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", BATCHES)
def test_epoch_ours(benchmark, record, data, batch, graph):
    x, y = cupy.asarray(data[0]), cupy.asarray(data[1])
    model = L.lenet5(activation="tanh", backend_name="cupy").compile("ce", L.SGD(0.1))
    run(benchmark, record, lambda: model.fit(x, y, epochs=1, batch_size=batch, verbose=0, graph=graph),
        batch, "ours-" + ("eager" if graph is False else "graph"), cupy.cuda.Device().synchronize)


def torch_lenet5(torch):
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
                         nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10)).cuda()


@pytest.mark.parametrize("mode", ["eager", "graph", "compile"])
@pytest.mark.parametrize("batch", BATCHES)
def test_epoch_torch(benchmark, record, data, batch, mode):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    if mode == "compile" and os.environ.get("BENCH_TORCH_COMPILE") != "1":
        pytest.skip("torch.compile max-autotune takes minutes: set BENCH_TORCH_COMPILE=1")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False   # fp32 like ours
    torch.backends.cudnn.benchmark = True
    net = torch_lenet5(torch)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.as_tensor(data[0], device="cuda"), torch.as_tensor(data[1], device="cuda")
    steps = N_TRAIN // batch          # full batches (the graph needs one shape; ours does the rest eagerly)

    def step(xb, yb):
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        return loss

    if mode == "compile":
        step = torch.compile(step, mode="max-autotune")
    if mode == "graph":
        static_x, static_y = x[:batch].clone(), y[:batch].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):          # warm up on a side stream, as the docs say
            for _ in range(3):
                step(static_x, static_y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step(static_x, static_y)

    def epoch():
        perm = torch.randperm(N_TRAIN, device="cuda")
        for s in range(steps):
            idx = perm[s * batch:(s + 1) * batch]
            if mode == "graph":
                torch.index_select(x, 0, idx, out=static_x)
                torch.index_select(y, 0, idx, out=static_y)
                graph.replay()
            else:
                step(x[idx], y[idx])
    run(benchmark, record, epoch, batch, f"torch-{mode}", torch.cuda.synchronize)
