"""fit(): mini-batch SGD (batch 1 = per-sample) with early stopping on validation loss."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from . import interrupts, sparse_sgd
from .data import Split, normalize
from .errors import ConfigError, TrainingDiverged
from .ink import batch_ends, in_ink_order, ink_order
from .losses import LOSSES
from .metrics import evaluate_split
from .model import MLP
from .sgd import BlankTail, sgd_minibatches, sgd_per_sample


@dataclass
class FitOptions:
    learning_rate: float = 0.1
    epochs: int = 20
    batch_size: int = 32  # 1 = per-sample SGD; 0 (or >= n) = full batch
    patience: int = 3  # epochs without improvement before stopping; 0 = never stop early
    min_delta: float = 0.0  # how much the validation loss must drop to count as improvement
    engine: str = "auto"  # one of ENGINES


@dataclass
class FitResult:
    model: MLP  # holds the best epoch's weights
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0  # 0 when no epoch completed
    stopped_early: bool = False
    interrupted: bool = False
    engine: str = "numpy"  # the engine that trained: "compiled" or "numpy"


# One BLAS thread below this many multiply-adds per layer product: OpenBLAS's second thread
# costs more than it gives on small products (784-64-10 at batch 64 ran about 25% slower with
# two) and pays on large ones (784-800-10 at batch 128 ran about 30% faster).
ONE_THREAD_BELOW = 10_000_000
CHUNK_SAMPLES = 2048  # samples normalized at a time: a few MB of float32, not the whole split
# auto: the compiled step (sparse_sgd.py) where it applies, else NumPy; or either alone
ENGINES = ("auto", "compiled", "numpy")


def choose_engine(wanted: str, activation: str, loss: str, train: Split | None = None) -> str:
    """'compiled' or 'numpy' for the `wanted` engine; ConfigError if 'compiled' cannot run.
    Without `train`, only the options are checked (as config validation does)."""
    if wanted == "numpy":
        return "numpy"
    reason = sparse_sgd.unsupported(activation, loss)
    if reason is None and train is not None and not sparse_sgd.takes(train):
        reason = "it reads uint8 pixels, not these features"
    if reason is None:
        return "compiled"
    if wanted == "compiled":
        raise ConfigError(f"--engine compiled cannot train this: {reason}; use --engine auto")
    return "numpy"


def blas_threads(layers: list[int], batch_size: int) -> int | None:
    """The BLAS thread limit for training `layers` at `batch_size`; None leaves BLAS's own."""
    largest = max(batch_size * fan_in * fan_out for fan_in, fan_out in pairwise(layers))
    return 1 if largest < ONE_THREAD_BELOW else None


@dataclass
class InkOrder:
    """Mini-batches that skip their blank margins (ink.py): `order` (d,) lists the training
    pixels' columns most-inked first, and `blank_value` is what a blank pixel normalizes to."""

    train: Split
    order: np.ndarray
    blank_value: float

    @classmethod
    def of(cls, train: Split) -> InkOrder | None:
        """None when `train` holds float features, whose blank value is unknown, or rows of
        odd width, which ink.py cannot take in pairs."""
        if train.normalization is None or train.X.shape[1] % 2:
            return None
        blank = normalize(np.zeros((1, 1), train.X.dtype), *train.normalization)[0, 0]
        return cls(train, ink_order(train.X), float(blank))

    def features(self, rows: np.ndarray, batch_size: int) -> tuple[np.ndarray, BlankTail]:
        """The network's input for `rows`, its columns in ink order, and where the ink of
        each batch of `batch_size` of them ends."""
        pixels = in_ink_order(self.train.X[rows], self.order)
        blank = BlankTail(batch_ends(pixels, batch_size), self.blank_value)
        return normalize(pixels, *self.train.normalization), blank

    @contextmanager
    def first_layer_reordered(self, model: MLP) -> Iterator[None]:
        """The first layer's weight rows in ink order for the duration, then back in pixel
        order, however the epoch ends: nothing outside it sees the ink order."""
        W = model.weights[0]
        W[:] = W[self.order]
        try:
            yield
        finally:
            W[self.order] = W.copy()


def _normalized_chunks(features: Callable, order: np.ndarray, chunk: int, prefetch: bool):
    """(start, rows, features(rows)) for each chunk of `order` in turn. With `prefetch`,
    the next chunk is normalized in a background thread while this one trains: numpy
    releases the GIL for that work, so it runs on the core that one-thread BLAS leaves idle.
    When BLAS runs on both cores, that thread would only slow it (784-800-10 at batch 128
    trained about 6% slower with it)."""
    if not prefetch:
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            yield start, rows, features(rows)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(features, order[:chunk])
        for start in range(0, len(order), chunk):
            ready = pending.result()
            following = order[start + chunk : start + 2 * chunk]
            if len(following):
                pending = pool.submit(features, following)
            yield start, order[start : start + chunk], ready


def _train_one_epoch(
    model: MLP,
    train: Split,
    order: np.ndarray,
    batch_size: int,
    learning_rate: float,
    bar,
    prefetch: bool,
    inked: InkOrder | None = None,
    ink: sparse_sgd.InkPixels | None = None,
) -> tuple[float, float]:
    """One pass over `train` in the order given; returns its mean batch loss and accuracy,
    each batch measured as it was trained on. With `ink` (train's pixels as sparse_sgd
    reads them), the compiled step trains. Else the NumPy engine does; with `inked` (its ink
    order of `train`, the first layer's rows reordered to match), its mini-batches skip
    their blank margins."""
    loss, loss_sum, correct = LOSSES[model.loss], 0.0, 0
    chunk = max(1, CHUNK_SAMPLES // batch_size) * batch_size

    def features(rows: np.ndarray) -> tuple[np.ndarray, BlankTail | None]:
        if inked:
            return inked.features(rows, batch_size)
        return train.features(rows), None

    if ink is None:
        chunks = _normalized_chunks(features, order, chunk, prefetch)
    else:  # the compiled step reads the pixels itself
        chunks = ((s, order[s : s + chunk], None) for s in range(0, len(order), chunk))
    threads = sparse_sgd.usable_cpus()
    for start, rows, prepared in chunks:
        y = train.y[rows]
        if ink is not None:
            trained = sparse_sgd.sgd_minibatches_on_ink(
                model, ink, rows, y, batch_size, learning_rate, threads
            )
            chunk_loss, chunk_correct = trained.loss, trained.correct
        else:
            if batch_size == 1:
                logits = sgd_per_sample(model, prepared[0], y, learning_rate)
            else:
                X, blank = prepared
                logits = sgd_minibatches(model, X, y, batch_size, learning_rate, blank)
            chunk_loss = loss.value(logits, y)
            chunk_correct = int((logits.argmax(axis=1) == y).sum())
        if not np.isfinite(chunk_loss):
            raise TrainingDiverged(
                f"training diverged: the loss became {chunk_loss} within samples "
                f"{start + 1}-{start + len(rows)}; "
                f"lower the learning rate (for example --lr {learning_rate / 10:g})"
            )
        loss_sum += chunk_loss * len(rows)
        correct += chunk_correct
        bar.update(-(-len(rows) // batch_size))
        interrupts.check()
    return loss_sum / len(order), correct / len(order)


def fit(
    model: MLP,
    train: Split,
    validation: Split | None,
    options: FitOptions,
    rng: np.random.Generator,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train `model` in place, then restore the weights of the epoch with the lowest
    validation loss (training loss when there is no validation data).

    Trains on the compiled step or the NumPy engine as options.engine asks (choose_engine;
    both take the same steps, to rounding), and says which in the result.
    Shuffles the sample indices from `rng` every epoch. Ctrl-C ends training within one
    chunk of samples; the result then says `interrupted` and holds the weights of the best
    epoch completed.
    """
    n = len(train.y)
    batch_size = n if options.batch_size <= 0 else min(options.batch_size, n)
    engine = choose_engine(options.engine, model.activation, model.loss, train)
    result = FitResult(model=model.copy(), engine=engine)
    best_loss, waited = np.inf, 0
    ink = sparse_sgd.InkPixels.of(train) if engine == "compiled" else None
    inked = InkOrder.of(train) if batch_size > 1 and ink is None else None
    try:
        with interrupts.at_safe_points():
            for epoch in range(1, options.epochs + 1):
                interrupts.check()
                record = _run_epoch(
                    model, train, validation, options, batch_size, epoch, rng, progress, inked, ink
                )
                result.history.append(record)
                if on_epoch:
                    on_epoch(record)
                watched = record.get("validation_loss", record["train_loss"])
                if watched < best_loss - options.min_delta:
                    best_loss, waited = watched, 0
                    result.model, result.best_epoch = model.copy(), epoch
                else:
                    waited += 1
                    if options.patience and waited >= options.patience:
                        result.stopped_early = True
                        break
    except KeyboardInterrupt:
        result.interrupted = True
    return result


def _run_epoch(
    model: MLP,
    train: Split,
    validation: Split | None,
    options: FitOptions,
    batch_size: int,
    epoch: int,
    rng: np.random.Generator,
    progress: bool,
    inked: InkOrder | None,
    ink: sparse_sgd.InkPixels | None,
) -> dict:
    """Train one epoch with a progress bar, then measure; returns the epoch's history record."""
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    started = time.perf_counter()
    n = len(train.y)
    bar = tqdm(
        total=-(-n // batch_size),
        desc=f"epoch {epoch}/{options.epochs}",
        unit="batch",
        file=sys.stderr,
        disable=not progress,
        leave=False,
        mininterval=0.2,
    )
    threads = blas_threads(model.layers, batch_size)
    # a diverging run overflows before its loss turns NaN, which is then reported
    with (
        bar,
        threadpool_limits(threads, user_api="blas"),
        np.errstate(over="ignore", invalid="ignore"),
        inked.first_layer_reordered(model) if inked else nullcontext(),
    ):
        train_loss, train_accuracy = _train_one_epoch(
            model,
            train,
            rng.permutation(n),
            batch_size,
            options.learning_rate,
            bar,
            prefetch=threads == 1,
            inked=inked,
            ink=ink,
        )
    record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy}
    if validation is not None and len(validation.y):
        figures = evaluate_split(model, validation)
        record.update(validation_loss=figures["loss"], validation_accuracy=figures["accuracy"])
    record["seconds"] = time.perf_counter() - started
    return record
