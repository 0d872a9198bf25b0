"""Optimizers. Each `step(params)` updates Param.value in place from Param.grad.

L2 weight decay (lambda) adds lambda * w to the gradient of every weight (Param.decay), which is
the gradient of lambda/2 * ||w||^2; biases and batch-norm parameters are not decayed.

    SGD:       w <- w - lr * g
    momentum:  v <- mu * v - lr * g;  w <- w + v      (nesterov: w <- w + mu * v - lr * g)
    Adam:      m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
               w <- w - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1-b1^t), v_hat = v / (1-b2^t)
    SDLM:      w <- w - eta_t / (mu + h) * g         (LeCun et al. 1998, appendix C; see SDLM)
On NumPy the update is plain array maths; on the GPU each parameter array is updated by one
kernel (kernels/optim.cu) that does the same maths, in place of the 2 to 9 elementwise kernels
the array maths would launch: at LeNet-5's size a step's cost is its number of launches.

A step is two halves, so that a CUDA graph can capture the second (lenet_gpu/step.py):
`prepare(params)` is host work, run before every step: it creates the state and writes the
step's scalars (the learning rate, Adam's bias corrections) into 0-d float32 device arrays;
`update(params)` is device work only and reads those arrays, never a Python number that
changes. `step(params)` does both.
"""
import numpy as np

from . import cuda
from .backend import get_array_module, is_gpu_array, to_cpu


def cosine_schedule(epochs):
    """lr multiplier for epoch e = 1..epochs: 0.5 (1 + cos(pi (e - 1) / epochs)), from 1 down
    to just above 0 in the last epoch."""
    return lambda epoch: 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))


def one_cycle_schedule(total_steps, pct_start=0.3, div=25.0, final_div=1e4):
    """lr multiplier for step t = 1..total_steps, PyTorch's OneCycleLR (cosine, two phases,
    momentum not cycled): from 1/div up to 1 at step pct_start * total_steps, then down to
    1/(div * final_div) at the last step, each phase a half cosine. Steps past total_steps
    keep the last value."""
    total_steps = int(total_steps)
    if total_steps < 2 or not 0 < pct_start < 1 or not div > 0 or not final_div > 0:
        raise ValueError(f"one-cycle needs total_steps >= 2, 0 < pct_start < 1, div > 0 and "
                         f"final_div > 0, got {total_steps}, {pct_start}, {div}, {final_div}")
    start, low = 1 / div, 1 / (div * final_div)
    peak = pct_start * total_steps - 1          # 0-based step of the peak, as in PyTorch

    def anneal(a, b, frac):
        return b + (a - b) / 2 * (np.cos(np.pi * frac) + 1)

    def multiplier(t):
        s = min(t, total_steps) - 1
        if s < peak:
            return anneal(start, 1.0, s / peak)
        return anneal(1.0, low, (s - peak) / (total_steps - 1 - peak))
    return multiplier


class Optimizer:
    def __init__(self, lr, weight_decay=0.0, schedule=None, step_schedule=None):
        """schedule: None (constant lr) or a function epoch -> multiplier of lr, e.g.
        cosine_schedule(epochs); applied by start_epoch, which Sequential.fit calls.
        step_schedule: instead, a function of the step count t = 1, 2, ... -> multiplier of lr,
        e.g. one_cycle_schedule(steps); applied before every step."""
        try:
            lr, weight_decay = float(lr), float(weight_decay)
        except (TypeError, ValueError):
            raise TypeError(f"learning rate and weight decay must be numbers, got {lr!r}, "
                            f"{weight_decay!r}") from None
        if not 0 < lr < np.inf:
            raise ValueError(f"learning rate must be > 0 and finite, got {lr}")
        if not 0 <= weight_decay < np.inf:
            raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
        if schedule is not None and step_schedule is not None:
            raise ValueError("give an epoch schedule or a step schedule, not both")
        self.lr, self.weight_decay = lr, weight_decay
        self.base_lr, self.schedule, self.step_schedule = self.lr, schedule, step_schedule
        self.steps_taken = 0
        self.state = {}         # i -> per-parameter arrays (momentum, Adam's moments)
        self.scalars = {}       # name -> 0-d float32 array on the parameters' device
        self._written = {}      # name -> the value last written there

    def step(self, params):
        self.prepare(params)
        self.update(params)

    def prepare(self, params):
        """Host side of a step (see the module doc): writes the learning rate to the device."""
        self._advance()
        self._scalar("lr", self.lr, params)

    def _advance(self):
        """Count the step; a step schedule sets its learning rate."""
        self.steps_taken += 1
        if self.step_schedule is not None:
            self.lr = self.base_lr * float(self.step_schedule(self.steps_taken))

    def update(self, params):
        """Device side of a step: every parameter with a gradient is updated in place."""
        for i, p in enumerate(params):
            if p.grad is None:
                continue
            decay = self.weight_decay if p.decay else 0.0
            if is_gpu_array(p.value):
                self._update_gpu(i, p, decay)
                continue
            g = p.grad + decay * p.value if decay else p.grad
            self._update(i, p, g)

    def _update(self, i, p, g):
        """NumPy: parameter i's update from its gradient g (weight decay included)."""
        raise NotImplementedError

    def _update_gpu(self, i, p, decay):
        """GPU: the same update, one kernel of kernels/optim.cu."""
        raise NotImplementedError

    @staticmethod
    def _launch(kernel, p, args):
        """Launch kernel(w, g, n, *args) over parameter p's n elements; w is updated in place."""
        (g,) = cuda.float32(g=p.grad)
        n = p.value.size
        cuda.launch("optim.cu", kernel, cuda.blocks(n),
                    [("w", p.value, cuda.F32), ("g", g, cuda.F32), ("n", n, cuda.INT), *args])

    def _scalar(self, name, value, params):
        """Write value into the 0-d float32 device array `name` (made on first use), only when
        it changed: a constant learning rate costs nothing per step."""
        xp = get_array_module(params[0].value)
        a = self.scalars.get(name)
        if a is None or get_array_module(a) is not xp:
            a = self.scalars[name] = xp.zeros((), np.float32)
            self._written.pop(name, None)
        if self._written.get(name) != value:
            a.fill(value)
            self._written[name] = value
        return a

    def reset(self):
        """Forget the state and device scalars (the parameters moved to another device)."""
        self.state.clear()
        self.scalars.clear()
        self._written.clear()

    def start_epoch(self, epoch, model, x, y):
        """Called by Sequential.fit before each pass (epoch counts from 1) with the device
        training data: sets this epoch's lr from the schedule."""
        if self.schedule is not None:
            self.lr = self.base_lr * float(self.schedule(epoch))

    def epoch_info(self):
        """What the optimizer has to say about this pass, for the epoch's metrics record."""
        return {}

    def config(self):
        return {"name": type(self).__name__.lower(), "lr": self.lr, "weight_decay": self.weight_decay}


class SGD(Optimizer):
    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, schedule=None,
                 step_schedule=None):
        super().__init__(lr, weight_decay, schedule, step_schedule)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def prepare(self, params):
        super().prepare(params)
        if self.momentum:
            for i, p in enumerate(params):
                if i not in self.state:
                    self.state[i] = get_array_module(p.value).zeros_like(p.value)

    def _update(self, i, p, g):
        lr = self.scalars["lr"]
        if not self.momentum:
            p.value -= lr * g
            return
        v = self.state[i]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            p.value += self.momentum * v - lr * g
        else:
            p.value += v

    def _update_gpu(self, i, p, decay):
        self._launch("sgd_update", p, [
            ("v", self.state.get(i), cuda.F32_OPT), ("lr", self.scalars["lr"], cuda.F32),
            ("momentum", self.momentum, cuda.FLOAT), ("nesterov", int(self.nesterov), cuda.INT),
            ("decay", decay, cuda.FLOAT)])

    def config(self):
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, schedule=None,
                 step_schedule=None):
        super().__init__(lr, weight_decay, schedule, step_schedule)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
        if not self.eps > 0:
            raise ValueError(f"Adam's eps must be > 0, got {eps}")

    def prepare(self, params):
        """Step t's scalars: both bias corrections folded into the step size and epsilon,
        step = lr sqrt(1 - b2^t) / (1 - b1^t),  eps_t = eps sqrt(1 - b2^t)."""
        self._advance()
        t = self.steps_taken
        correction2 = (1 - self.beta2 ** t) ** 0.5
        self._scalar("step", self.lr * correction2 / (1 - self.beta1 ** t), params)
        self._scalar("eps", self.eps * correction2, params)
        for i, p in enumerate(params):
            if i not in self.state:
                xp = get_array_module(p.value)
                self.state[i] = (xp.zeros_like(p.value), xp.zeros_like(p.value))

    def _update(self, i, p, g):
        xp = get_array_module(g)
        m, v = self.state[i]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        p.value -= self.scalars["step"] * m / (xp.sqrt(v) + self.scalars["eps"])

    def _update_gpu(self, i, p, decay):
        m, v = self.state[i]
        self._launch("adam_update", p, [
            ("m", m, cuda.F32), ("v", v, cuda.F32), ("step", self.scalars["step"], cuda.F32),
            ("eps", self.scalars["eps"], cuda.F32),
            ("beta1", self.beta1, cuda.FLOAT), ("beta2", self.beta2, cuda.FLOAT),
            ("one_minus_beta1", 1 - self.beta1, cuda.FLOAT),
            ("one_minus_beta2", 1 - self.beta2, cuda.FLOAT), ("decay", decay, cuda.FLOAT)])

    def config(self):
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


# The paper's learning rates eta per pass (appendix C): 0.0005 for 2 passes, 0.0002 for 3,
# 0.0001 for 3, 0.00005 for 4, then 0.00001.
PAPER_SCHEDULE = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5))
PAPER_FINAL_RATE = 1e-5
SDLM_MU = 0.02          # appendix C's mu in eta / (mu + h_kk)


def paper_rate(epoch):
    """eta of the paper's schedule for pass `epoch` (1-based)."""
    if epoch < 1:
        raise ValueError(f"epochs count from 1, got {epoch}")
    end = 0
    for passes, rate in PAPER_SCHEDULE:
        end += passes
        if epoch <= end:
            return rate
    return PAPER_FINAL_RATE


class SDLM(Optimizer):
    """Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, appendix C).

    Each parameter w_k has its own step eta / (mu + h_kk), h_kk the diagonal Gauss-Newton
    estimate of d2E/dw_k^2 (Sequential.hessian_diagonal). Before each pass, h is re-estimated
    on `hessian_samples` random training samples (a plain average, frozen for the pass, as
    appendix C says) and eta follows the paper's schedule times `lr_scale` (1: the paper's own
    rates). mu = 0.02 keeps the step bounded where h is small.

    The paper's rates train the paper's network from lenet5_paper's default start (first-pass
    rates 8.9e-5 .. 0.017 against the paper's 7e-5 .. 0.016); from the literal U(+-2.4/F) they
    sit at the eta/mu ceiling and diverge (lr_scale 0.1 trains from there). The measurements
    are in docs/paper/REPORT.md.

    The paper updates after every sample. eta is per sample: with mini-batches of B samples and
    the batch-mean gradient, the step is B * eta / (mu + h) (about B of the paper's steps), so
    pass `batch_size`; B = 1 is the paper exactly.
    """

    def __init__(self, lr_scale=1.0, mu=SDLM_MU, batch_size=1, hessian_samples=500, seed=0,
                 weight_decay=0.0):
        super().__init__(paper_rate(1) * lr_scale, weight_decay)
        if not mu > 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        if int(batch_size) < 1 or int(hessian_samples) < 1:
            raise ValueError(f"batch_size and hessian_samples must be >= 1, got {batch_size}, "
                             f"{hessian_samples}")
        self.lr_scale, self.mu = float(lr_scale), float(mu)
        self.batch_size, self.hessian_samples = int(batch_size), int(hessian_samples)
        self.rng = np.random.default_rng(seed)
        self.h = None           # the pass's h_kk, one array per parameter
        self.steps = None       # B eta / (mu + h_kk): each parameter's step, frozen for the pass
        self.rates = None       # rate_stats of the pass

    def start_epoch(self, epoch, model, x, y):
        self.lr = paper_rate(epoch) * self.lr_scale
        n = x.shape[0]
        pick = self.rng.choice(n, size=min(self.hessian_samples, n), replace=False)
        xp = get_array_module(x)
        pick = xp.asarray(np.sort(pick))
        self.h = model.hessian_diagonal(x[pick], y[pick])
        if self.steps is None or get_array_module(self.steps[0]) is not xp:
            self.steps = [xp.empty_like(h) for h in self.h]
        for step, h in zip(self.steps, self.h):   # in place: a captured step reads these arrays
            xp.divide(self.batch_size * self.lr, self.mu + h, out=step)
        self.rates = self.rate_stats(model)

    def rate_stats(self, model):
        """The pass's effective learning rates eta / (mu + h_kk) per parameter (the paper's
        section III-B quotes 7e-5 .. 0.016 for its first pass): min, median, max and the share
        within 10% of the ceiling eta / mu (h_kk <= mu / 9), over all parameters and per
        parameter array (layers.<i>.<name>). Weights of absent C3 connections are not counted."""
        ceiling = self.lr / self.mu
        rates = {}
        h = iter(self.h)
        for i, layer in enumerate(model.layers):
            for p in layer.params:
                r = self.lr / (self.mu + to_cpu(next(h)).astype(np.float64))
                mask = layer.connected(p)
                rates[f"layers.{i}.{p.name}"] = r[mask] if mask is not None else r.ravel()

        def stats(r):
            return {"min": float(r.min()), "median": float(np.median(r)), "max": float(r.max()),
                    "at_ceiling_pct": 100.0 * float(np.mean(r >= 0.9 * ceiling))}
        return {"ceiling": ceiling, **stats(np.concatenate(list(rates.values()))),
                "arrays": {name: stats(r) for name, r in rates.items()}}

    def epoch_info(self):
        return {} if self.rates is None else {"sdlm_rates": self.rates}

    def prepare(self, params):
        if self.steps is None:
            raise RuntimeError("SDLM has no second derivatives yet: train with Sequential.fit, or "
                               "call optimizer.start_epoch(epoch, model, x, y) before train_step")

    def _update(self, i, p, g):
        p.value -= self.steps[i] * g

    def _update_gpu(self, i, p, decay):
        self._launch("sdlm_update", p, [("rate", self.steps[i], cuda.F32), ("decay", decay, cuda.FLOAT)])

    def reset(self):
        super().reset()
        self.h = self.steps = self.rates = None

    def config(self):
        return {**super().config(), "lr_scale": self.lr_scale, "mu": self.mu,
                "batch_size": self.batch_size, "hessian_samples": self.hessian_samples}


def make_optimizer(name, lr, weight_decay=0.0, momentum=0.9, batch_size=1, seed=0,
                   schedule="constant", epochs=1, mu=SDLM_MU, steps_per_epoch=1):
    """The CLI's --optimizer: sgd | momentum | nesterov | adam | sdlm (lr scales the paper's
    schedule; batch_size sets SDLM's per-sample step, mu its damping) and --lr-schedule
    constant | cosine | one-cycle (lr is then the peak, reached after 30% of the steps)."""
    if schedule not in ("constant", "cosine", "one-cycle"):
        raise ValueError(f"unknown lr schedule {schedule!r}; choose constant, cosine or one-cycle")
    sched = {}
    if schedule == "cosine":
        sched = {"schedule": cosine_schedule(epochs)}
    elif schedule == "one-cycle":
        sched = {"step_schedule": one_cycle_schedule(epochs * steps_per_epoch)}
    if name == "sgd":
        return SGD(lr, weight_decay=weight_decay, **sched)
    if name in ("momentum", "nesterov"):
        return SGD(lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=weight_decay,
                   **sched)
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay, **sched)
    if name == "sdlm":
        if sched:
            raise ValueError("sdlm follows the paper's own schedule; drop --lr-schedule")
        return SDLM(lr, mu=mu, batch_size=batch_size, seed=seed, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd, momentum, nesterov, adam or sdlm")
