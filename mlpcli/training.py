"""fit(): mini-batch SGD (batch 1 = per-sample) with early stopping on validation loss."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .data import Split
from .errors import TrainingDiverged
from .metrics import evaluate_model
from .model import MLP
from .optim import sgd_step


@dataclass
class FitOptions:
    learning_rate: float = 0.1
    epochs: int = 20
    batch_size: int = 32  # 1 = per-sample SGD; 0 (or >= n) = full batch
    patience: int = 3  # epochs without improvement before stopping; 0 = never stop early
    min_delta: float = 0.0  # how much the validation loss must drop to count as improvement


@dataclass
class FitResult:
    model: MLP  # holds the best epoch's weights
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0  # 0 when no epoch completed
    stopped_early: bool = False
    interrupted: bool = False


def _train_one_epoch(
    model: MLP, train: Split, order: np.ndarray, batch_size: int, learning_rate: float, bar
) -> tuple[float, float]:
    """One pass over `train` in the order given; returns its mean batch loss and accuracy."""
    loss_sum, correct = 0.0, 0
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        y = train.y[rows]
        loss, logits, dWs, dbs = model.loss_and_gradients(train.X[rows], y)
        if not np.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged: the loss became {loss} at sample {start + 1}; "
                f"lower the learning rate (for example --lr {learning_rate / 10:g})"
            )
        sgd_step(model.weights, dWs, learning_rate)
        sgd_step(model.biases, dbs, learning_rate)
        loss_sum += loss * len(rows)
        correct += int((logits.argmax(axis=1) == y).sum())
        bar.update(1)
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

    Shuffles the sample indices from `rng` every epoch. Ctrl-C ends training at once; the
    result then says `interrupted` and holds the weights of the best epoch completed.
    """
    n = len(train.y)
    batch_size = n if options.batch_size <= 0 else min(options.batch_size, n)
    result = FitResult(model=model.copy())
    best_loss, waited = np.inf, 0
    try:
        for epoch in range(1, options.epochs + 1):
            record = _run_epoch(model, train, validation, options, batch_size, epoch, rng, progress)
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
) -> dict:
    """Train one epoch with a progress bar, then measure; returns the epoch's history record."""
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
    # a diverging run overflows before its loss turns NaN, which is then reported
    with bar, np.errstate(over="ignore", invalid="ignore"):
        train_loss, train_accuracy = _train_one_epoch(
            model, train, rng.permutation(n), batch_size, options.learning_rate, bar
        )
    record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy}
    if validation is not None and len(validation.y):
        figures = evaluate_model(model, validation.X, validation.y)
        record.update(validation_loss=figures["loss"], validation_accuracy=figures["accuracy"])
    record["seconds"] = time.perf_counter() - started
    return record
