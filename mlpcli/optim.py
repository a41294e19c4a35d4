"""Update rules. Plain stochastic gradient descent: theta <- theta - learning_rate * gradient."""

from __future__ import annotations

import numpy as np


def sgd_step(params: list[np.ndarray], grads: list[np.ndarray], learning_rate: float) -> None:
    """Updates every parameter array in place (no new arrays: the model keeps its buffers)."""
    for param, grad in zip(params, grads, strict=True):
        param -= param.dtype.type(learning_rate) * grad
