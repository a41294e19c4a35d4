"""The multilayer perceptron: forward pass, backpropagation, prediction.

Shapes, written once: a batch X is (n, d) with samples as rows. Layer l has weights
W_l (fan_in, fan_out) and bias b_l (fan_out,). Z_l = A_{l-1} @ W_l + b_l is its pre-activation
and A_l = f(Z_l) its activation, both (n, fan_out), with A_0 = X. The last layer has no
activation: its Z are the logits (n, k) that the loss turns into probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .activations import DEFAULT_LEAKY_SLOPE, Activation, get_activation
from .initializers import DEFAULT_INIT_SCALE, INITIALIZERS
from .losses import LOSSES


def forward(
    weights: list[np.ndarray], biases: list[np.ndarray], activation: Activation, X: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Returns the pre-activations [Z_1..Z_L] and activations [A_0..A_{L-1}] backprop needs."""
    Zs, As = [], [X]
    for layer, (W, b) in enumerate(zip(weights, biases, strict=True)):
        Z = As[-1] @ W
        Z += b
        Zs.append(Z)
        if layer < len(weights) - 1:
            As.append(activation.forward(Z))
    return Zs, As


def backpropagate(
    weights: list[np.ndarray],
    activation: Activation,
    Zs: list[np.ndarray],
    As: list[np.ndarray],
    dZ: np.ndarray,
    take: Callable[[int, np.ndarray, np.ndarray], None],
) -> None:
    """The chain rule from the logits' gradient dZ (n, k) down through every layer.

    For each layer l from the top it calls take(l, A_{l-1}, dZ_l), from which
    dW_l = A_{l-1}^T dZ_l and db_l = sum over the batch of dZ_l. The gradient then flows to
    the layer below as dZ_{l-1} = (dZ_l W_l^T) * f'(Z_{l-1}), with W_l as it was before
    `take`, which may update it in place (SGD does). The 1/n of the mean is already in dZ.
    """
    for layer in range(len(weights) - 1, -1, -1):
        below = dZ @ weights[layer].T if layer else None  # before take() may change W_l
        take(layer, As[layer], dZ)
        if layer:
            below *= activation.derivative(Zs[layer - 1], As[layer])
            dZ = below


def backward(
    weights: list[np.ndarray],
    activation: Activation,
    Zs: list[np.ndarray],
    As: list[np.ndarray],
    dZ: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every dW_l and db_l for the logits' gradient dZ (n, k); see backpropagate."""
    dWs: list[np.ndarray] = [None] * len(weights)  # type: ignore[list-item]
    dbs: list[np.ndarray] = [None] * len(weights)  # type: ignore[list-item]

    def record(layer: int, A: np.ndarray, dZ: np.ndarray) -> None:
        dWs[layer], dbs[layer] = A.T @ dZ, dZ.sum(axis=0)

    backpropagate(weights, activation, Zs, As, dZ, record)
    return dWs, dbs


@dataclass
class MLP:
    """A fully connected network; `weights[l]` and `biases[l]` are W_{l+1} and b_{l+1}."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str = "relu"
    loss: str = "cross-entropy"
    leaky_slope: float = DEFAULT_LEAKY_SLOPE

    @classmethod
    def initialize(
        cls,
        layers: list[int],
        rng: np.random.Generator,
        activation: str = "relu",
        init: str = "he-normal",
        loss: str = "cross-entropy",
        init_scale: float = DEFAULT_INIT_SCALE,
        leaky_slope: float = DEFAULT_LEAKY_SLOPE,
    ) -> MLP:
        """Weights drawn by the `init` scheme from `rng`; biases start at zero."""
        draw = INITIALIZERS[init]
        weights = [draw(rng, i, o, init_scale) for i, o in pairwise(layers)]
        biases = [np.zeros(o, dtype=np.float32) for o in layers[1:]]
        return cls(weights, biases, activation, loss, leaky_slope)

    @property
    def layers(self) -> list[int]:
        return [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]

    def _activation(self) -> Activation:
        return get_activation(self.activation, self.leaky_slope)

    def logits(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """X (n, d) -> logits (n, k), in chunks so a large X needs little extra memory. X may be
        anything whose slices are float rows, such as a data.Split of uint8 pixels."""
        activation = self._activation()
        parts = [
            forward(self.weights, self.biases, activation, X[i : i + chunk])[0][-1]
            for i in range(0, len(X), chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.layers[-1]), np.float32)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """X (n, d) -> class probabilities (n, k), each row summing to 1."""
        return LOSSES[self.loss].probabilities(self.logits(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """X (n, d) -> predicted class (n,)."""
        return self.logits(X).argmax(axis=1)

    def loss_and_gradients(
        self, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Mean loss on the batch, its logits (n, k), and the gradients dW_l, db_l."""
        activation = self._activation()
        Zs, As = forward(self.weights, self.biases, activation, X)
        loss = LOSSES[self.loss]
        dWs, dbs = backward(self.weights, activation, Zs, As, loss.gradient(Zs[-1], y))
        return loss.value(Zs[-1], y), Zs[-1], dWs, dbs

    def copy(self) -> MLP:
        return MLP(
            [W.copy() for W in self.weights],
            [b.copy() for b in self.biases],
            self.activation,
            self.loss,
            self.leaky_slope,
        )
