"""Hidden-layer activations: each pure function f(Z) sits beside its derivative.

Shapes: Z is the pre-activation (n, fan_out); A = f(Z) has the same shape.
Each derivative takes A (and Z) and returns dA/dZ elementwise, so backprop can multiply it by
the incoming gradient. Picking by name from ACTIVATIONS keeps the CLI choices and the code in
one table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

DEFAULT_LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    forward: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (Z, A) -> dA/dZ


def relu(Z: np.ndarray) -> np.ndarray:
    return np.maximum(Z, 0)


def relu_derivative(Z: np.ndarray, A: np.ndarray) -> np.ndarray:
    return (Z > 0).astype(Z.dtype)


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """Stable logistic: exp only ever sees a non-positive argument, so it cannot overflow."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E)).astype(Z.dtype, copy=False)


def sigmoid_derivative(Z: np.ndarray, A: np.ndarray) -> np.ndarray:
    return A * (1 - A)


def tanh(Z: np.ndarray) -> np.ndarray:
    return np.tanh(Z)


def tanh_derivative(Z: np.ndarray, A: np.ndarray) -> np.ndarray:
    return 1 - A * A


def leaky_relu(Z: np.ndarray, slope: float = DEFAULT_LEAKY_SLOPE) -> np.ndarray:
    return np.where(Z > 0, Z, Z * Z.dtype.type(slope))


def leaky_relu_derivative(
    Z: np.ndarray, A: np.ndarray, slope: float = DEFAULT_LEAKY_SLOPE
) -> np.ndarray:
    return np.where(Z > 0, Z.dtype.type(1), Z.dtype.type(slope))


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(relu, relu_derivative),
    "sigmoid": Activation(sigmoid, sigmoid_derivative),
    "tanh": Activation(tanh, tanh_derivative),
    "leaky-relu": Activation(leaky_relu, leaky_relu_derivative),
}


def get_activation(name: str, leaky_slope: float = DEFAULT_LEAKY_SLOPE) -> Activation:
    """The (forward, derivative) pair for `name`, with the leaky-relu slope bound in."""
    if name == "leaky-relu":
        return Activation(
            lambda Z: leaky_relu(Z, leaky_slope),
            lambda Z, A: leaky_relu_derivative(Z, A, leaky_slope),
        )
    return ACTIVATIONS[name]
