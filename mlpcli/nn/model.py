"""The multilayer perceptron: forward pass, backpropagation, prediction.

Shapes, written once: a batch X is (n, d) with samples as rows. Layer l has weights
W_l (fan_in, fan_out) and bias b_l (fan_out,). Z_l = A_{l-1} @ W_l + b_l is its pre-activation
and A_l = f(Z_l) its activation, both (n, fan_out), with A_0 = X. The last layer has no
activation: its Z are the logits (n, k) that the loss turns into probabilities.

Training is three steps, each its own function, as in Nielsen's network.py:
    cache = forward(model, X, dropout)      # what backward needs
    dZ = loss gradient of the logits        # losses.py
    dWs, dbs = backward(model, cache, dZ)   # the chain rule, layer by layer
and then an optimizer (optim.py) applies the gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from .activations import DEFAULT_LEAKY_SLOPE, Activation, get_activation
from .dropout import Dropout
from .initializers import DEFAULT_INIT_SCALE, INITIALIZERS
from .losses import LOSSES
from .optim import Optimizer


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

    @property
    def params(self) -> list[np.ndarray]:
        """W_1, b_1, W_2, b_2, ...: the arrays an optimizer updates, in a fixed order."""
        return [p for W, b in zip(self.weights, self.biases, strict=True) for p in (W, b)]

    def get_activation(self) -> Activation:
        return get_activation(self.activation, self.leaky_slope)

    def logits(self, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """X (n, d) -> logits (n, k), in chunks so a large X needs little extra memory (a
        chunk's float rows and activations are a training run's largest passing allocation;
        BLAS is as fast on 2048 rows as on more). X may be anything whose slices are float
        rows, such as a data.Split of uint8 pixels."""
        parts = [forward(self, X[i : i + chunk]).logits for i in range(0, len(X), chunk)]
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
        cache = forward(self, X)
        loss = LOSSES[self.loss]
        dWs, dbs = backward(self, cache, loss.gradient(cache.logits, y))
        return loss.value(cache.logits, y), cache.logits, dWs, dbs

    def copy(self) -> MLP:
        return MLP(
            [W.copy() for W in self.weights],
            [b.copy() for b in self.biases],
            self.activation,
            self.loss,
            self.leaky_slope,
        )


@dataclass
class Cache:
    """What backward needs from a forward pass: Zs = [Z_1..Z_L], As = [A_0..A_{L-1}] (after
    dropout, as the next layer saw them), and the dropout masks of A_0..A_{L-1} (None where
    nothing was dropped)."""

    Zs: list[np.ndarray]
    As: list[np.ndarray]
    masks: list[np.ndarray | None] = field(default_factory=list)

    @property
    def logits(self) -> np.ndarray:
        return self.Zs[-1]


def forward(model: MLP, X: np.ndarray, dropout: Dropout | None = None) -> Cache:
    """The pass from X (n, d) to the logits, keeping what backward needs.

    With `dropout` (training), each A_l is multiplied by its mask: inverted dropout, whose
    kept units are scaled by 1 / (1 - p), so that nothing changes at prediction time.
    """
    activation = model.get_activation()
    last = len(model.weights) - 1
    mask = dropout.mask(X.shape, layer=0) if dropout else None
    cache = Cache([], [X if mask is None else X * mask], [mask])
    for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        Z = cache.As[-1] @ W
        Z += b
        cache.Zs.append(Z)
        if layer < last:
            A = activation.forward(Z)
            mask = dropout.mask(A.shape, layer=layer + 1) if dropout else None
            cache.As.append(A if mask is None else A * mask)
            cache.masks.append(mask)
    return cache


def backward(model: MLP, cache: Cache, dZ: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every dW_l (fan_in, fan_out) and db_l (fan_out,) from the logits' gradient dZ (n, k),
    which already carries the loss's 1/n.

    For each layer from the top: dW_l = A_{l-1}^T dZ_l and db_l = sum over the batch of dZ_l.
    The gradient flows down as dA_{l-1} = dZ_l W_l^T, through the dropout mask (a dropped unit
    passed nothing up, so it gets nothing back), then dZ_{l-1} = dA_{l-1} * f'(Z_{l-1}).
    """
    activation = model.get_activation()
    dWs: list[np.ndarray] = [None] * len(model.weights)  # type: ignore[list-item]
    dbs: list[np.ndarray] = [None] * len(model.weights)  # type: ignore[list-item]
    for layer in range(len(model.weights) - 1, -1, -1):
        dWs[layer] = cache.As[layer].T @ dZ
        dbs[layer] = dZ.sum(axis=0)
        if layer:
            dA = dZ @ model.weights[layer].T
            mask = cache.masks[layer]
            if mask is not None:
                dA *= mask
            Z = cache.Zs[layer - 1]
            # f' takes A = f(Z) before dropout: with a mask, As holds A * mask
            A = cache.As[layer] if mask is None else activation.forward(Z)
            dZ = dA * activation.derivative(Z, A)
    return dWs, dbs


def train_step(
    model: MLP, optimizer: Optimizer, X: np.ndarray, y: np.ndarray, dropout: Dropout | None = None
) -> np.ndarray:
    """One step on the batch X (n, d), y (n,): forward, the loss's gradient, backward, and the
    optimizer's update of the model in place. Returns the logits (n, k) the batch had before
    the step, from which the caller measures loss and accuracy."""
    cache = forward(model, X, dropout)
    dZ = LOSSES[model.loss].gradient(cache.logits, y)
    dWs, dbs = backward(model, cache, dZ)
    optimizer.step(model.params, [g for dW, db in zip(dWs, dbs, strict=True) for g in (dW, db)])
    return cache.logits
