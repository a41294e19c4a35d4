"""Training on the ink alone: the compiled engine, and when it applies.

An MNIST image is mostly blank paper: about 150 of its 784 pixels hold ink. NumPy can only
multiply whole matrices, so the NumPy engines pay for every pixel (or every pixel of the
inked prefix of each batch). The compiled step (_sparse_sgd.c) multiplies by the ink alone,
with the blank value v folded in exactly: for x = s + v (s zero on blank paper),
    x W + b  = s W + v colsum(W) + b,     dW = x^T dZ = s^T dZ + v 1 (1^T dZ)
Plain SGD defers the rank-one part of its step as a shift shared by every row of W, so a
step touches only the inked rows; every other optimizer, weight decay and max-norm step each
row of W with its gradient. The C file says how; the result is the reference's step to
rounding (tests/test_sparse_sgd.py).

It takes uint8 pixels with their normalization, cross-entropy, any batch size (1 is
per-sample SGD), up to 16 layers of weights, any hidden activation, every optimizer, weight
decay, max-norm and hidden dropout, whose masks are drawn here in the reference's order. It
has no input dropout: that would zero blank pixels too, and the ink would no longer be all
that differs between images. When the extension was not built (no C compiler at install),
the NumPy engines do everything.

The step is built once per instruction set (setup.py): `step_module()` is the widest build
that this CPU runs, or a narrower one where MLPCLI_SIMD caps it (avx512, avx2 or baseline),
so that each build can be run and tested on one machine.

Shapes: a split's pixels (N, d) uint8 are kept as CSR: ink columns `cols` (nnz,) and values
`pixels` (nnz,) row after row, row r's between rowptr[r] and rowptr[r + 1] (N + 1,).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from ..data import Split, normalization_coefficients
from ..errors import ConfigError
from ..nn.dropout import Dropout
from ..nn.model import MLP
from ..nn.optim import Adam, Momentum, Optimizer
from .base import CHUNK_SAMPLES, Engine, StepOptions, Trained, usable_cpus

try:
    from . import _sparse_sgd  # the baseline build, which every CPU runs
except ImportError:  # built without a C compiler: the NumPy engine alone
    _sparse_sgd = None

SIMD_PATHS = ("avx512", "avx2", "baseline")  # setup.py's builds, widest first
SIMD_VARIABLE = "MLPCLI_SIMD"  # caps the build used at the one named

# the C file's codes of its activations and optimizers (their enums' order) and its limit
ACTIVATION_CODES = {name: code for code, name in enumerate(getattr(_sparse_sgd, "ACTIVATIONS", ()))}
OPTIMIZER_CODES = {name: code for code, name in enumerate(getattr(_sparse_sgd, "OPTIMIZERS", ()))}
MAX_LAYERS = getattr(_sparse_sgd, "MAX_LAYERS", 0)  # layers of weights


def available() -> bool:
    """Whether the compiled step was built with this install."""
    return _sparse_sgd is not None


@functools.cache
def simd_paths() -> tuple[str, ...]:
    """The builds of the step that were installed and that this CPU runs, widest first
    (looked up once: step_module() asks on every chunk)."""
    if _sparse_sgd is None:
        return ()
    package = __name__.rpartition(".")[0]
    built = [
        path
        for path in _sparse_sgd.cpu_runs()
        if importlib.util.find_spec(f"{package}._sparse_sgd_{path}") is not None
    ]
    return (*built, "baseline")


def simd_path() -> str:
    """The build that trains: the widest of simd_paths(), no wider than MLPCLI_SIMD."""
    cap = os.environ.get(SIMD_VARIABLE, "").strip().lower() or SIMD_PATHS[0]
    if cap not in SIMD_PATHS:
        raise ConfigError(
            f"{SIMD_VARIABLE}={cap} is not an instruction set of the compiled step; "
            f"set it to one of {', '.join(SIMD_PATHS)}, or unset it"
        )
    allowed = SIMD_PATHS[SIMD_PATHS.index(cap) :]
    return next(path for path in simd_paths() if path in allowed)


def step_module() -> ModuleType:
    """The module of simd_path()'s build: train_chunk, count_ink, gather_ink."""
    path = simd_path()
    if path == "baseline":
        return _sparse_sgd
    return importlib.import_module(f"{_sparse_sgd.__name__}_{path}")


def not_built_reason() -> str:
    """Why the extension is missing: most often mlpcli runs from its source folder, whose
    copy of the package has the C file but not what `pip install .` built elsewhere."""
    here = Path(__file__).parent
    if (here / "_sparse_sgd.c").exists():
        return (
            f"it is not built in {here}: this mlpcli runs from its source folder, where "
            "`pip install .` puts no build; run it from another folder, or install with "
            "`pip install -e .`"
        )
    return "it was not built with this install (no C compiler, or its build failed)"


def takes(split: Split) -> bool:
    """Whether `split` holds what the compiled step reads: uint8 pixels, at most 65535 a
    row (its column indices are uint16), with the normalization that makes them x."""
    return (
        split.normalization is not None
        and split.X.dtype == np.uint8
        and int(np.prod(split.X.shape[1:])) <= np.iinfo(np.uint16).max
    )


@dataclass(frozen=True)
class InkPixels:
    """A split's uint8 pixels as CSR (module docstring), with x = pixel * scale + blank."""

    rowptr: np.ndarray  # (N + 1,) int64
    cols: np.ndarray  # (nnz,) uint16
    pixels: np.ndarray  # (nnz,) uint8
    scale: float
    blank: float

    @classmethod
    def of(cls, split: Split, threads: int = 1) -> InkPixels:
        """The ink of `split` (uint8 pixels with a normalization), counted and gathered in C
        on `threads` threads
        (many times faster than NumPy's np.nonzero; docs/performance.md)."""
        X = np.ascontiguousarray(split.X.reshape(len(split.X), -1))
        rowptr = np.empty(len(X) + 1, np.int64)
        step = step_module()
        step.count_ink(X, len(X), X.shape[1], rowptr, threads)
        cols, pixels = np.empty(rowptr[-1], np.uint16), np.empty(rowptr[-1], np.uint8)
        step.gather_ink(X, len(X), X.shape[1], rowptr, cols, pixels, threads)
        scale, blank = normalization_coefficients(*split.normalization)
        return cls(rowptr, cols, pixels, float(scale), float(blank))


@dataclass(frozen=True)
class TrainedChunk:
    """What a chunk's rows gave as they were trained on."""

    logits: np.ndarray  # (n, k)
    loss: float  # mean cross-entropy, as losses.cross_entropy(logits, y); NaN or inf if diverged
    correct: int  # rows whose logits' argmax is their label


def gemm_address() -> int:
    """The address of the cblas_sgemm of numpy's OpenBLAS (engines/blas.py), which the step
    calls for its large layers above the first, or 0 where there is none: its own kernels
    then."""
    import ctypes

    from .blas import _gemm

    gemm = _gemm(np.dtype(np.float32))
    return ctypes.cast(gemm, ctypes.c_void_p).value or 0 if gemm is not None else 0


def optimizer_code(optimizer: Optimizer) -> int:
    """The C file's code for `optimizer`: plain-sgd takes the shared-shift path."""
    if isinstance(optimizer, Adam):
        name = "adamw" if optimizer.decoupled else "adam"
    elif isinstance(optimizer, Momentum):
        name = "nesterov" if optimizer.nesterov else "momentum"
    else:
        name = "sgd" if optimizer.weight_decay or optimizer.max_norm else "plain-sgd"
    return OPTIMIZER_CODES[name]


def train_on_ink(
    model: MLP,
    ink: InkPixels,
    rows: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    optimizer: Optimizer,
    threads: int,
    masks: list[np.ndarray | None] | None = None,
) -> TrainedChunk:
    """The reference's steps (nn.model.train_step) on the split's rows `rows` (n,) in that
    order, labels y (n,), with up to `threads` threads (the C file caps them: each needs 64
    hidden units of its own): updates `model` and the optimizer's buffers in place, counting
    on from optimizer.steps (which the caller advances). `masks` (one per layer: None for the
    input, then (n, size) float32 for each hidden layer) are the dropout masks, as
    nn.dropout.Dropout draws them. The loss and hits are summed in C as the softmax is taken;
    finding them again in numpy took a noticeable share of an epoch at batch 64."""
    logits = np.empty((len(rows), model.layers[-1]), np.float32)
    count = 2 * len(model.weights)
    firsts = optimizer.buffers.get("velocity") or optimizer.buffers.get("mean") or [None] * count
    seconds = optimizer.buffers.get("square") or [None] * count
    loss_sum, correct = step_module().train_chunk(
        order=np.ascontiguousarray(rows, np.int64),
        rowptr=ink.rowptr,
        cols=ink.cols,
        pixels=ink.pixels,
        labels=np.ascontiguousarray(y, np.int64),
        n=len(rows),
        rows_total=len(ink.rowptr) - 1,
        scale=ink.scale,
        blank=ink.blank,
        activation=ACTIVATION_CODES[model.activation],
        slope=model.leaky_slope,
        weights=tuple(model.weights),
        biases=tuple(model.biases),
        lr=optimizer.learning_rate,
        logits=logits,
        batch=batch_size,
        threads=threads,
        optimizer=optimizer_code(optimizer),
        momentum=getattr(optimizer, "momentum", 0.0),
        beta1=getattr(optimizer, "beta1", 0.0),
        beta2=getattr(optimizer, "beta2", 0.0),
        eps=getattr(optimizer, "eps", 0.0),
        weight_decay=optimizer.weight_decay,
        max_norm=optimizer.max_norm,
        steps=optimizer.steps,
        firsts=tuple(firsts),
        seconds=tuple(seconds),
        masks=tuple(masks or [None] * len(model.weights)),
        gemm=gemm_address(),
    )
    return TrainedChunk(logits, loss_sum / len(rows), correct)


def dropout_masks(dropout: Dropout, layers: list[int], rows: int, batch_size: int) -> list:
    """The masks of `rows` rows, drawn batch by batch and layer by layer as the reference's
    forward() draws them: None for the input, then (rows, size) for each hidden layer."""
    masks = [np.empty((rows, size), np.float32) for size in layers[1:-1]]
    for start in range(0, rows, batch_size):
        count = min(batch_size, rows - start)
        for layer, mask in enumerate(masks, 1):
            mask[start : start + count] = dropout.mask((count, mask.shape[1]), layer)
    return [None, *masks]


def _in_background(work, *args):
    """work(*args) in a thread of its own, the main thread waiting in Python meanwhile.

    A C call that releases the GIL cannot be interrupted: Python runs its signal handlers in
    the main thread, between bytecodes, once the call returns. A full-batch step can take
    seconds, and a second Ctrl-C must stop at once; so the main thread waits here, where the
    signal raises KeyboardInterrupt, and the step (a daemon thread, which does not hold the
    process open) finishes on its own, on arrays nothing reads any more: the run's state is
    the copy taken at the last epoch's end.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work(*args)
        except BaseException as exc:  # handed to the waiting thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="mlpcli-compiled-step")
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.05)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class CompiledEngine(Engine):
    """train_on_ink a chunk at a time, on every CPU this process may use."""

    name = "compiled"
    reads_split_while_training = False  # it trains on the index of the ink that prepare made

    def prepare(self, train: Split) -> None:
        self.ink = None  # the last epoch's index goes before the next one is made
        self.ink = InkPixels.of(train, usable_cpus(self.threads))

    @staticmethod
    def why_not(step: StepOptions, train: Split | None = None) -> str | None:
        if not available():
            return not_built_reason()
        simd_path()  # a bad MLPCLI_SIMD is refused before any work
        if step.loss != "cross-entropy":
            return f"it has the cross-entropy loss only, not {step.loss}"
        if step.activation not in ACTIVATION_CODES:
            return f"it has no {step.activation} activation"
        if step.depth > MAX_LAYERS:
            return f"it takes at most {MAX_LAYERS} layers of weights, not {step.depth}"
        if step.input_dropout:
            return "it has no --input-dropout (dropping blank pixels breaks its ink-only sums)"
        if train is not None and not takes(train):
            return "it reads uint8 pixels with their normalization, not these features"
        return None

    def run_epoch(self, order: np.ndarray) -> Iterator[Trained]:
        self.ready()
        threads = usable_cpus(self.threads)
        for rows in self.chunks(order):
            masks = None
            if self.dropout is not None:
                masks = dropout_masks(self.dropout, self.model.layers, len(rows), self.batch_size)
            args = (self.model, self.ink, rows, self.train.y[rows], self.batch_size)
            args += (self.optimizer, threads, masks)
            if self.batch_size > CHUNK_SAMPLES:  # one step may take seconds: stay stoppable
                trained = _in_background(train_on_ink, *args)
            else:
                trained = train_on_ink(*args)
            self.optimizer.steps += -(-len(rows) // self.batch_size)
            yield Trained(len(rows), trained.loss, trained.correct)
