"""Mini-batch SGD on the ink alone: the compiled engine, and when it applies.

An MNIST image is mostly blank paper: about 150 of its 784 pixels hold ink. NumPy can only
multiply whole matrices, so the NumPy engine (sgd.py) pays for every pixel of the inked
prefix of each batch. The compiled step (_sparse_sgd.c) multiplies by the ink alone, with
the blank value v folded in exactly: for x = s + v (s zero on blank paper),
    x W + b  = s W + v colsum(W) + b,     W -= x^T dZ  is  W -= s^T dZ and W -= v 1 (1^T dZ)
where the last, rank-one, step is deferred as a shift shared by every row of W. The C file
says how; the result is the NumPy engine's step to rounding (tests/test_sparse_sgd.py).

It takes uint8 pixels with their normalization, cross-entropy, any batch size (1 is
per-sample SGD), and any depth and hidden activation, with plain SGD's steps: the shared
shift above holds because plain SGD's update is linear in the gradient. Other options train
on another engine (why_not says which fail). When the extension was not built (no C
compiler at install), the NumPy engines do everything.

Shapes: a split's pixels (N, d) uint8 are kept as CSR: ink columns `cols` (nnz,) and values
`pixels` (nnz,) row after row, row r's between rowptr[r] and rowptr[r + 1] (N + 1,).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..data import Split, normalization_coefficients
from ..nn.model import MLP
from .base import Engine, StepOptions
from .base import Trained as ChunkFigures

try:
    from . import _sparse_sgd
except ImportError:  # built without a C compiler: the NumPy engine alone
    _sparse_sgd = None

ACTIVATION_CODES = {"relu": 0, "leaky-relu": 1, "sigmoid": 2, "tanh": 3}  # as in the C file
MAX_LAYERS = 16  # as in the C file: layers of weights


def available() -> bool:
    """Whether the compiled step was built with this install."""
    return _sparse_sgd is not None


def takes(split: Split) -> bool:
    """Whether `split` holds what the compiled step reads: uint8 pixels, at most 65535 a
    row (its column indices are uint16), with the normalization that makes them x."""
    return (
        split.normalization is not None
        and split.X.dtype == np.uint8
        and int(np.prod(split.X.shape[1:])) <= np.iinfo(np.uint16).max
    )


def usable_cpus() -> int:
    """The CPUs this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class InkPixels:
    """A split's uint8 pixels as CSR (module docstring), with x = pixel * scale + blank."""

    rowptr: np.ndarray  # (N + 1,) int64
    cols: np.ndarray  # (nnz,) uint16
    pixels: np.ndarray  # (nnz,) uint8
    scale: float
    blank: float

    @classmethod
    def of(cls, split: Split) -> InkPixels:
        """The ink of `split` (uint8 pixels with a normalization), counted and gathered in C
        (NumPy's np.nonzero took 0.5 s for MNIST, this about 0.02 s)."""
        X = np.ascontiguousarray(split.X.reshape(len(split.X), -1))
        rowptr = np.empty(len(X) + 1, np.int64)
        _sparse_sgd.count_ink(X, len(X), X.shape[1], rowptr, usable_cpus())
        cols, pixels = np.empty(rowptr[-1], np.uint16), np.empty(rowptr[-1], np.uint8)
        _sparse_sgd.gather_ink(X, len(X), X.shape[1], rowptr, cols, pixels, usable_cpus())
        scale, blank = normalization_coefficients(*split.normalization)
        return cls(rowptr, cols, pixels, float(scale), float(blank))


@dataclass(frozen=True)
class Trained:
    """What a chunk's rows gave as they were trained on."""

    logits: np.ndarray  # (n, k)
    loss: float  # mean cross-entropy, as losses.cross_entropy(logits, y); NaN or inf if diverged
    correct: int  # rows whose logits' argmax is their label


def sgd_minibatches_on_ink(
    model: MLP,
    ink: InkPixels,
    rows: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    learning_rate: float,
    threads: int,
) -> Trained:
    """sgd.sgd_minibatches (sgd_per_sample at batch size 1) on the split's rows `rows` (n,) in
    that order, labels y (n,), with up to `threads` threads (the C file caps them: each needs
    64 hidden units of its own): updates `model` in place. The loss and hits are summed in C
    as the softmax is taken; numpy took 7% of an epoch at batch 64 to find them again."""
    logits = np.empty((len(rows), model.layers[-1]), np.float32)
    loss_sum, correct = _sparse_sgd.train_chunk(
        np.ascontiguousarray(rows, np.int64),
        ink.rowptr,
        ink.cols,
        ink.pixels,
        np.ascontiguousarray(y, np.int64),
        len(rows),
        len(ink.rowptr) - 1,
        ink.scale,
        ink.blank,
        ACTIVATION_CODES[model.activation],
        model.leaky_slope,
        tuple(model.weights),
        tuple(model.biases),
        learning_rate,
        logits,
        batch_size,
        threads,
    )
    return Trained(logits, loss_sum / len(rows), correct)


class CompiledEngine(Engine):
    """sgd_minibatches_on_ink a chunk at a time, on every CPU this process may use."""

    name = "compiled"

    def __init__(self, model, optimizer, dropout, train, batch_size):
        super().__init__(model, optimizer, dropout, train, batch_size)
        self.ink = InkPixels.of(train)

    @staticmethod
    def why_not(step: StepOptions, train: Split | None = None) -> str | None:
        if not available():
            return "it was not built with this install (no C compiler, or its build failed)"
        if step.loss != "cross-entropy":
            return f"it has the cross-entropy loss only, not {step.loss}"
        if step.activation not in ACTIVATION_CODES:
            return f"it has no {step.activation} activation"
        if step.depth > MAX_LAYERS:
            return f"it takes at most {MAX_LAYERS} layers of weights, not {step.depth}"
        extras = step.beyond_plain_sgd()
        if extras:
            return f"it takes plain SGD steps only, without {extras}"
        if train is not None and not takes(train):
            return "it reads uint8 pixels with their normalization, not these features"
        return None

    def run_epoch(self, order: np.ndarray) -> Iterator[ChunkFigures]:
        threads = usable_cpus()
        for rows in self.chunks(order):
            trained = sgd_minibatches_on_ink(
                self.model,
                self.ink,
                rows,
                self.train.y[rows],
                self.batch_size,
                self.optimizer.learning_rate,
                threads,
            )
            self.optimizer.steps += -(-len(rows) // self.batch_size)
            yield ChunkFigures(len(rows), trained.loss, trained.correct)
