"""Weight initialization schemes, drawn from an explicit numpy Generator.

Each takes (rng, fan_in, fan_out, scale) and returns W (fan_in, fan_out) float32.
Glorot keeps the variance of activations and gradients alike across tanh/sigmoid layers
(Var W = 2 / (fan_in + fan_out)); He doubles it for ReLU, which zeroes half its inputs
(Var W = 2 / fan_in); LeCun uses Var W = 1 / fan_in. `scale` is only read by `normal`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (rng, fan_in, fan_out, variance) -> W; the Generator is not named here, as touching
# np.random at import would load it for `mlp predict`, which draws no random number
Initializer = Callable[..., np.ndarray]


def _uniform(rng: np.random.Generator, fan_in: int, fan_out: int, variance: float) -> np.ndarray:
    limit = np.sqrt(3 * variance)  # U(-a, a) has variance a^2 / 3
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


def _normal(rng: np.random.Generator, fan_in: int, fan_out: int, variance: float) -> np.ndarray:
    return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(variance)).astype(np.float32)


INITIALIZERS: dict[str, Initializer] = {
    "glorot-uniform": lambda rng, i, o, s: _uniform(rng, i, o, 2 / (i + o)),
    "glorot-normal": lambda rng, i, o, s: _normal(rng, i, o, 2 / (i + o)),
    "he-uniform": lambda rng, i, o, s: _uniform(rng, i, o, 2 / i),
    "he-normal": lambda rng, i, o, s: _normal(rng, i, o, 2 / i),
    "lecun-normal": lambda rng, i, o, s: _normal(rng, i, o, 1 / i),
    "normal": lambda rng, i, o, s: _normal(rng, i, o, s * s),
    "zeros": lambda rng, i, o, s: np.zeros((i, o), dtype=np.float32),
}

DEFAULT_INIT_SCALE = 0.01


def default_init(activation: str) -> str:
    """He for the ReLU family, Glorot for the saturating activations."""
    return "he-normal" if activation in ("relu", "leaky-relu") else "glorot-uniform"
