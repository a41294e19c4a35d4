"""Optimizers: what to do with the gradients backward() returns.

Each optimizer's `step(params, grads)` updates the parameter arrays in place, and keeps what
it must remember between steps (momentum, Adam's moments) as arrays that `state()` returns
and `load_state()` restores, so a run can be saved and resumed. The update rules are those of
torch.optim, step for step (tests/test_optim.py compares the trajectories):

- sgd:       p -= lr * g
- momentum:  v = mu v + g;  p -= lr * v                    (torch.optim.SGD, momentum=mu)
- nesterov:  v = mu v + g;  p -= lr * (g + mu v)           (SGD, nesterov=True)
- adam:      m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;  t += 1
             p -= lr / (1 - b1^t) * m / (sqrt(s) / sqrt(1 - b2^t) + eps)
- adamw:     p -= lr * wd * p first (decoupled weight decay), then adam's step with no decay

Weight decay (L2) adds wd * p to every gradient, biases included, as torch.optim does for one
parameter group; adamw decays the weights directly instead. With `max_norm`, each unit's
incoming weights (a column of W) are scaled back onto the ball of that radius after the step.

Shapes: params and grads are matching lists of float32 arrays (model.MLP.params' order:
W_1, b_1, W_2, b_2, ...); W_l is (fan_in, fan_out).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class Optimizer:
    """Plain SGD, and the base of the others: `learning_rate` may be changed between steps
    (a schedule does, once an epoch)."""

    def __init__(
        self,
        params: list[np.ndarray],
        learning_rate: float,
        weight_decay: float = 0.0,
        max_norm: float = 0.0,
    ):
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_norm = max_norm
        self.steps = 0
        self.buffers: dict[str, list[np.ndarray]] = {}  # the state arrays, by name

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update every parameter array in place from its gradient."""
        self.steps += 1
        for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
            self.update(i, param, grad)
        if self.max_norm:
            limit_unit_norms(params[0::2], self.max_norm)

    def update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        param -= np.float32(self.learning_rate) * self.decayed(param, grad)

    def decayed(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient of the loss plus the L2 penalty wd/2 ||p||^2."""
        if not self.weight_decay:
            return grad
        return grad + np.float32(self.weight_decay) * param

    def state(self) -> dict[str, np.ndarray]:
        """The arrays a resumed run needs, by name: '<buffer>.<i>' and 'steps'."""
        arrays = {
            f"{name}.{i}": a for name, bufs in self.buffers.items() for i, a in enumerate(bufs)
        }
        return {**arrays, "steps": np.array(self.steps, np.int64)}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what state() returned; KeyError or ValueError if it does not fit."""
        for name, bufs in self.buffers.items():
            for i, buffer in enumerate(bufs):
                saved = arrays[f"{name}.{i}"]
                if saved.shape != buffer.shape:
                    raise ValueError(f"{name}.{i} is {saved.shape}, expected {buffer.shape}")
                buffer[...] = saved
        self.steps = int(arrays["steps"])


class Momentum(Optimizer):
    """SGD with heavy-ball momentum, or Nesterov's look-ahead form of it."""

    def __init__(self, params, learning_rate, momentum=0.9, nesterov=False, **common):
        super().__init__(params, learning_rate, **common)
        self.momentum, self.nesterov = momentum, nesterov
        self.buffers["velocity"] = [np.zeros_like(p) for p in params]

    def update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        grad = self.decayed(param, grad)
        velocity = self.buffers["velocity"][i]
        velocity *= np.float32(self.momentum)
        velocity += grad
        direction = grad + np.float32(self.momentum) * velocity if self.nesterov else velocity
        param -= np.float32(self.learning_rate) * direction


class Adam(Optimizer):
    """Adam: a step along the running mean of the gradient, divided by the running root mean
    square, both corrected for starting at zero. `decoupled` makes it AdamW."""

    def __init__(
        self, params, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8, decoupled=False, **common
    ):
        super().__init__(params, learning_rate, **common)
        self.beta1, self.beta2, self.eps, self.decoupled = beta1, beta2, eps, decoupled
        self.buffers["mean"] = [np.zeros_like(p) for p in params]
        self.buffers["square"] = [np.zeros_like(p) for p in params]

    def update(self, i: int, param: np.ndarray, grad: np.ndarray) -> None:
        if self.decoupled:
            param *= np.float32(1 - self.learning_rate * self.weight_decay)
        else:
            grad = self.decayed(param, grad)
        mean, square = self.buffers["mean"][i], self.buffers["square"][i]
        mean += np.float32(1 - self.beta1) * (grad - mean)
        square *= np.float32(self.beta2)
        square += np.float32(1 - self.beta2) * grad * grad
        t = self.steps
        step_size = np.float32(self.learning_rate / (1 - self.beta1**t))
        denominator = np.sqrt(square) / np.float32(np.sqrt(1 - self.beta2**t))
        denominator += np.float32(self.eps)
        param -= step_size * (mean / denominator)


def limit_unit_norms(weights: list[np.ndarray], max_norm: float) -> None:
    """Scale each column of each W (a unit's incoming weights) whose L2 norm exceeds max_norm
    back to max_norm, in place."""
    for W in weights:
        norms = np.sqrt(np.einsum("ij,ij->j", W, W))
        W *= np.minimum(np.float32(1), np.float32(max_norm) / np.maximum(norms, 1e-12))


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": Optimizer,
    "momentum": Momentum,
    "nesterov": lambda params, learning_rate, **kw: Momentum(
        params, learning_rate, nesterov=True, **kw
    ),
    "adam": Adam,
    "adamw": lambda params, learning_rate, **kw: Adam(params, learning_rate, decoupled=True, **kw),
}
# Each optimizer's rate at a batch of REFERENCE_BATCH when none is given: what each steps well
# with on MNIST (plain SGD about 0.1, heavy ball a tenth of that times 1 / (1 - momentum),
# Adam torch's 0.001).
BASE_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 1e-3, "adamw": 1e-3}
REFERENCE_BATCH = 128
LARGEST_SCALED_BATCH = 512  # larger batches (and the full batch) take this one's rate


def default_learning_rate(optimizer: str, batch_size: int) -> float:
    """The rate for `optimizer` at `batch_size` (0: the full batch) when none is given: its
    base rate scaled by batch / REFERENCE_BATCH, the batch capped at LARGEST_SCALED_BATCH.
    SGD's step is linear in the mean gradient, so a batch k times as large takes a rate k
    times as large (Goyal et al. 2017, "linear scaling rule"): one sample at a time, each
    step is 1/128 of a batch's. Adam divides by the gradient's running size, whose noise
    falls as the square root of the batch: its rate scales by that root (Malladi et al.
    2022, "square root scaling rule")."""
    batch = LARGEST_SCALED_BATCH if batch_size <= 0 else min(batch_size, LARGEST_SCALED_BATCH)
    ratio = batch / REFERENCE_BATCH
    if optimizer in ("adam", "adamw"):
        ratio = ratio**0.5
    return BASE_LEARNING_RATES[optimizer] * ratio


# The settings each optimizer reads besides learning_rate, weight_decay and max_norm.
SETTINGS = {
    "sgd": (),
    "momentum": ("momentum",),
    "nesterov": ("momentum",),
    "adam": ("beta1", "beta2", "eps"),
    "adamw": ("beta1", "beta2", "eps"),
}


def make_optimizer(
    name: str,
    params: list[np.ndarray],
    learning_rate: float,
    weight_decay: float = 0.0,
    max_norm: float = 0.0,
    **settings: float,
) -> Optimizer:
    """The optimizer `name` for `params`; `settings` may hold any of momentum, beta1, beta2
    and eps, of which it takes those SETTINGS[name] lists."""
    chosen = {key: settings[key] for key in SETTINGS[name] if key in settings}
    return OPTIMIZERS[name](
        params, learning_rate, weight_decay=weight_decay, max_norm=max_norm, **chosen
    )
