"""One training epoch (60,000 images) of LeNet-5, tanh + CE + SGD, on the CPU: our NumPy engine
against PyTorch CPU (when importable) in the same run, at batch 20, 128 and 1024.

    python -m pytest bench/bench_epoch_cpu.py            (about 2-3 minutes on 2 cores)
The table at the end gives numpy/torch time ratios: the goal is numpy <= 1.5x torch.

PyTorch runs first, under glibc's default allocator settings as its users have them. Our fit()
then raises glibc's mmap/trim thresholds (backend.tune_cpu_allocator), which is process-wide and
would speed PyTorch up too had it run later. To compare both under the tuned allocator, run with
MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864.
"""
import numpy as np
import pytest

import lenet_gpu as L

N_TRAIN = 60_000
BATCHES = [20, 128, 1024]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((N_TRAIN, 1, 28, 28), dtype=np.float32) * 0.3, rng.integers(0, 10, N_TRAIN)


@pytest.mark.parametrize("batch", BATCHES)
def test_epoch_torch_cpu(benchmark, record, data, batch):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
                        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
                        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])

    def epoch():
        perm = torch.randperm(N_TRAIN)
        for s in range(0, N_TRAIN, batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
    benchmark.group = f"epoch batch {batch}"
    benchmark.pedantic(epoch, rounds=1, warmup_rounds=0)
    record(benchmark, f"batch {batch:>4}", "torch")


@pytest.mark.parametrize("batch", BATCHES)
def test_epoch_numpy(benchmark, record, data, batch):
    x, y = data
    model = L.lenet5(activation="tanh", backend_name="numpy")
    model.compile("ce", L.SGD(0.01))
    benchmark.group = f"epoch batch {batch}"
    benchmark.extra_info["images"] = N_TRAIN
    benchmark.pedantic(model.fit, args=(x, y), kwargs=dict(epochs=1, batch_size=batch, verbose=0),
                       rounds=1, warmup_rounds=0)
    record(benchmark, f"batch {batch:>4}", "numpy")
