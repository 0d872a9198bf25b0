"""LeNet-5 (tanh + CE + SGD) on the CPU: our NumPy engine against PyTorch CPU in the same run.

    python -m pytest bench/bench_epoch_cpu.py            (about 3 minutes on 2 cores)

Training: one epoch of 60,000 images at batch 20, 128 and 1024, 3 rounds each (the table uses
the median). Inference: `evaluate` on 10,000 images at batch 1,000 (loss and error count), 5
rounds. The table at the end gives numpy/torch time ratios; issue 16's goals are <= 1.0 at batch
20 and 128, <= 1.15 at batch 1024, and <= 1.0 for inference.

Both run under the same glibc allocator settings: our fit() raises glibc's mmap/trim thresholds
(backend.tune_cpu_allocator), which is process-wide, so this module does it first for both.
"""
import numpy as np
import pytest

import lenet_gpu as L
from lenet_gpu import backend

N_TRAIN, N_TEST = 60_000, 10_000
BATCHES = [20, 128, 1024]
backend.tune_cpu_allocator()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((N_TRAIN, 1, 28, 28), dtype=np.float32) * 0.3, rng.integers(0, 10, N_TRAIN)


def torch_lenet5():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    return torch, nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                                nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
                                nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
                                nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def torch_epoch(data, batch):
    torch, net = torch_lenet5()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])

    def epoch():
        perm = torch.randperm(N_TRAIN)
        for s in range(0, N_TRAIN, batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
    return epoch


def numpy_epoch(data, batch):
    model = L.lenet5(activation="tanh", backend_name="numpy")
    model.compile("ce", L.SGD(0.01))
    return lambda: model.fit(*data, epochs=1, batch_size=batch, verbose=0)


# PyTorch's and our cell of a batch size run one after the other, so that the machine's drift
# over the module's minutes does not enter their ratio (on a shared machine it moved PyTorch's
# own epoch by 10-30% between runs)
@pytest.mark.parametrize("batch,engine", [(b, e) for b in BATCHES for e in ("torch", "numpy")])
def test_epoch(benchmark, record, data, batch, engine):
    epoch = (torch_epoch if engine == "torch" else numpy_epoch)(data, batch)
    benchmark.group = f"epoch batch {batch}"
    benchmark.extra_info["images"] = N_TRAIN
    benchmark.pedantic(epoch, rounds=3, warmup_rounds=0)
    record(benchmark, f"batch {batch:>4}", engine)


def test_evaluate_torch_cpu(benchmark, record, data):
    torch, net = torch_lenet5()
    x, y = torch.from_numpy(data[0][:N_TEST]), torch.from_numpy(data[1][:N_TEST])
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")

    def evaluate():
        loss, correct = 0.0, 0
        with torch.no_grad():
            for s in range(0, N_TEST, 1000):
                out = net(x[s:s + 1000])
                loss += float(loss_fn(out, y[s:s + 1000]))
                correct += int((out.argmax(1) == y[s:s + 1000]).sum())
        return loss / N_TEST, correct
    benchmark.group = "evaluate"
    benchmark.pedantic(evaluate, rounds=5, warmup_rounds=1)
    record(benchmark, "evaluate 10k", "torch")


def test_evaluate_numpy(benchmark, record, data):
    model = L.lenet5(activation="tanh", backend_name="numpy")
    model.compile("ce", L.SGD(0.01))
    benchmark.group = "evaluate"
    benchmark.pedantic(model.evaluate, args=(data[0][:N_TEST], data[1][:N_TEST]),
                       kwargs=dict(batch_size=1000), rounds=5, warmup_rounds=1)
    record(benchmark, "evaluate 10k", "numpy")
