"""Output losses, each with its exact gradient with respect to the logits.

Shapes: Z holds the logits (n, k) of a batch of n samples and k classes; y holds the integer
labels (n,). Every loss is a mean over the batch, so every gradient dZ (n, k) carries a 1/n.

- cross-entropy: softmax output, L = -mean(log softmax(Z)[y]). Fused gradient (P - Y) / n,
  which holds because softmax and cross-entropy are differentiated together.
- mse: L = mean over samples of 1/2 * ||Z - Y||^2 on the raw logits against one-hot Y
  (Nielsen's quadratic cost). dZ = (Z - Y) / n.
- mse-softmax: the same on the probabilities P = softmax(Z). dZ = J^T (P - Y) / n with the
  softmax Jacobian J = diag(P) - P P^T, i.e. P * (G - sum(G * P)) row by row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


def one_hot(y: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """y (n,) integer labels -> Y (n, num_classes) with a single 1 per row."""
    Y = np.zeros((len(y), num_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def by_columns(Z: np.ndarray) -> np.ndarray:
    """Z (n, k) laid out column by column (Fortran order), copied only if it is not already.

    numpy reduces along a short last axis one row at a time: the row max of (2048, 10)
    float32 logits is many times faster in column order, where it runs down whole columns,
    than the copy costs (docs/performance.md), so row-wise softmax work starts with it.
    """
    return np.asfortranarray(Z)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """log softmax(Z) row by row, via log-sum-exp with the row max subtracted (no overflow)."""
    Z = by_columns(Z)
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row max keeps exp from overflowing."""
    Z = by_columns(Z)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def cross_entropy(Z: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax(Z)[np.arange(len(y)), y].mean())


def cross_entropy_gradient(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    dZ = softmax(Z)
    dZ[np.arange(len(y)), y] -= 1
    dZ /= Z.dtype.type(len(y))
    return dZ


def mse(Z: np.ndarray, y: np.ndarray) -> float:
    D = Z - one_hot(y, Z.shape[1], Z.dtype)
    return float(0.5 * np.einsum("ij,ij->", D, D) / len(y))


def mse_gradient(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    D = Z - one_hot(y, Z.shape[1], Z.dtype)
    D /= Z.dtype.type(len(y))
    return D


def mse_softmax(Z: np.ndarray, y: np.ndarray) -> float:
    return mse(softmax(Z), y)


def mse_softmax_gradient(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    P = softmax(Z)
    G = mse_gradient(P, y)
    return P * (G - (G * P).sum(axis=1, keepdims=True))


def clipped_share(Z: np.ndarray) -> np.ndarray:
    """Probabilities for a net trained with mse on raw outputs: outputs clipped to [0, 1] and
    scaled to sum to 1 (softmax would flatten outputs that are already near one-hot)."""
    C = np.clip(Z, 0, 1)
    total = C.sum(axis=1, keepdims=True)
    uniform = np.full_like(C, 1 / C.shape[1])
    return np.divide(C, total, out=uniform, where=total > 0)


class Loss(NamedTuple):
    value: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]  # dL/dZ (n, k)
    probabilities: Callable[[np.ndarray], np.ndarray]  # logits (n, k) -> (n, k), rows sum to 1


LOSSES: dict[str, Loss] = {
    "cross-entropy": Loss(cross_entropy, cross_entropy_gradient, softmax),
    "mse": Loss(mse, mse_gradient, clipped_share),
    "mse-softmax": Loss(mse_softmax, mse_softmax_gradient, softmax),
}
