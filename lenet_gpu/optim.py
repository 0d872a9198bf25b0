"""Optimizers. Each `step(params)` updates Param.value in place from Param.grad.

L2 weight decay (lambda) adds lambda * w to the gradient of every weight (Param.decay), which is
the gradient of lambda/2 * ||w||^2; biases and batch-norm parameters are not decayed.

    SGD:       w <- w - lr * g
    momentum:  v <- mu * v - lr * g;  w <- w + v      (nesterov: w <- w + mu * v - lr * g)
    Adam:      m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
               w <- w - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1-b1^t), v_hat = v / (1-b2^t)
The update is plain array maths, so it runs on NumPy and CuPy alike.
"""
from .backend import get_array_module


class Optimizer:
    def __init__(self, lr, weight_decay=0.0):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.state = {}

    def step(self, params):
        for i, p in enumerate(params):
            g = p.grad
            if g is None:
                continue
            if self.weight_decay and p.decay:
                g = g + self.weight_decay * p.value
            self._update(i, p, g)

    def _update(self, i, p, g):
        raise NotImplementedError

    def config(self):
        return {"name": type(self).__name__.lower(), "lr": self.lr, "weight_decay": self.weight_decay}


class SGD(Optimizer):
    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, i, p, g):
        if not self.momentum:
            p.value -= self.lr * g
            return
        v = self.state.get(i)
        if v is None:
            v = self.state[i] = get_array_module(g).zeros_like(g)
        v *= self.momentum
        v -= self.lr * g
        if self.nesterov:
            p.value += self.momentum * v - self.lr * g
        else:
            p.value += v

    def config(self):
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0

    def step(self, params):
        self.t += 1
        super().step(params)

    def _update(self, i, p, g):
        xp = get_array_module(g)
        if i not in self.state:
            self.state[i] = (xp.zeros_like(g), xp.zeros_like(g))
        m, v = self.state[i]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        # fold both bias corrections into the step size
        step = self.lr * (1 - self.beta2 ** self.t) ** 0.5 / (1 - self.beta1 ** self.t)
        p.value -= step * m / (xp.sqrt(v) + self.eps * (1 - self.beta2 ** self.t) ** 0.5)

    def config(self):
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def make_optimizer(name, lr, weight_decay=0.0, momentum=0.9):
    """The CLI's --optimizer: sgd | momentum | nesterov | adam."""
    if name == "sgd":
        return SGD(lr, weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return SGD(lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=weight_decay)
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd, momentum, nesterov or adam")
