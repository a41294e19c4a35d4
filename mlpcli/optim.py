"""Update rules. Plain stochastic gradient descent: theta <- theta - learning_rate * gradient."""

from __future__ import annotations

import numpy as np


def sgd_step(params: list[np.ndarray], grads: list[np.ndarray], learning_rate: float) -> None:
    """Update every parameter in place. The gradients are scaled in place too (they are fresh
    arrays of this step): at batch size 1 a temporary per array costs more than the math."""
    for param, grad in zip(params, grads, strict=True):
        grad *= param.dtype.type(learning_rate)
        param -= grad
