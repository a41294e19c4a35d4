"""fit(): the training loop and nothing else: epochs, shuffling, the learning-rate schedule,
early stopping on the validation loss, history. How a step is computed is the engine's job."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from .. import interrupts
from ..data import Split
from ..data.augment import Augmentation
from ..engines.base import Engine, StepOptions, free_cpus
from ..engines.choice import Choice, choose_engine, fastest_engine, time_engine
from ..errors import TrainingDiverged
from ..nn.dropout import Dropout
from ..report.metrics import evaluate_split
from .augmenting import AugmentedTraining
from .state import RunState


@dataclass
class FitOptions:
    """How to train; see `mlp train --help` for each option's meaning."""

    learning_rate: float = 0.1
    epochs: int = 20  # the run's total, counting epochs done before a resume
    batch_size: int = 32  # 1 = per-sample SGD; 0 (or >= n) = full batch
    patience: int = 3  # epochs without improvement before stopping; 0 = never stop early
    min_delta: float = 0.0  # how much the watched value must drop to count as improvement
    monitor: str = "loss"  # what early stopping and the best epoch watch: one of training.MONITORS
    engine: str = "auto"  # "auto" or a name of engines.ENGINES
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    max_norm: float = 0.0
    dropout: float = 0.0
    input_dropout: float = 0.0
    threads: int = 0  # 0: every CPU this process may use (engines.base.usable_cpus)
    augmentation: Augmentation = Augmentation()  # distortions of each epoch's images
    seed: int = 0  # the run's seed, from which each epoch's distortions are drawn

    def step_options(self, activation: str, loss: str, layers: list[int]) -> StepOptions:
        return StepOptions(
            activation,
            loss,
            self.optimizer,
            self.weight_decay,
            self.max_norm,
            self.dropout,
            self.input_dropout,
            tuple(layers),
        )


@dataclass
class FitResult:
    state: RunState  # at the end of the last completed epoch
    stopped_early: bool = False
    interrupted: bool = False
    engine: str = "reference"  # the name of the engine that trained
    choice: Choice | None = None  # with --engine auto: what it chose among, and how fast each

    @property
    def model(self):
        """The weights of the best epoch (the run's start when no epoch completed)."""
        return self.state.best_model or self.state.model

    @property
    def history(self) -> list[dict]:
        return self.state.history

    @property
    def best_epoch(self) -> int:
        return self.state.best_epoch


def fit(
    state: RunState,
    train: Split,
    validation: Split | None,
    options: FitOptions,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    on_engine: Callable[[Choice], None] | None = None,
) -> FitResult:
    """Train state.model in place from epoch state.epoch + 1 to options.epochs, keeping the
    weights of the best epoch in state.best_model: the lowest validation loss, or with
    options.monitor "accuracy" the highest validation accuracy (the training split's figures
    when there is no validation data).

    With options.engine "auto", each engine that can train the options is timed first on a
    copy of the model (engines.choice), and the fastest trains; on_engine is told the choice.
    Each epoch shuffles the sample indices from state.shuffle_rng and sets the optimizer's
    learning rate from state.schedule. Ctrl-C ends training within one chunk of samples;
    the result then says `interrupted`, and its state is that of the last completed epoch.
    """
    n = len(train.y)
    batch_size = n if options.batch_size <= 0 else min(options.batch_size, n)
    model = state.model
    step = options.step_options(model.activation, model.loss, model.layers)
    dropout = None
    if options.dropout or options.input_dropout:
        dropout = Dropout(options.dropout, options.input_dropout, state.dropout_rng)
    threads = options.threads or free_cpus()
    choice = None
    if options.engine == "auto":
        trial = (model, state.optimizer, dropout, train, batch_size, threads)
        choice = fastest_engine(step, train, lambda engine: time_engine(engine, *trial))
        if on_engine:
            on_engine(choice)
    chosen = choice.engine if choice else choose_engine(options.engine, step, train)
    engine = chosen(model, state.optimizer, dropout, train, batch_size, threads)
    result = FitResult(state.snapshot(), engine=engine.name, choice=choice)
    augmented = None
    if options.augmentation:
        augmented = AugmentedTraining(
            engine, train, options.augmentation, options.seed, options.epochs, threads
        )
    try:
        with interrupts.at_safe_points():
            for epoch in range(state.epoch + 1, options.epochs + 1):
                interrupts.check()
                waited = augmented.before(epoch) if augmented is not None else 0.0
                state.optimizer.learning_rate = state.schedule.learning_rate(epoch)
                record = _run_epoch(engine, state, validation, options, batch_size, epoch, progress)
                if augmented is not None:
                    augmented.after(record["seconds"])
                record["seconds"] += waited  # for the epoch's images
                watched = watched_value(record, options.monitor)
                state.schedule.observe(epoch, watched)
                state.epoch = epoch
                state.history.append(record)
                record["improved"] = watched < state.best_watched - options.min_delta
                if record["improved"]:
                    state.best_watched, state.waited = watched, 0
                    state.best_model, state.best_epoch = model.copy(), epoch
                else:
                    state.waited += 1
                result.state = state.snapshot()
                if on_epoch:
                    on_epoch(record)
                if options.patience and state.waited >= options.patience:
                    result.stopped_early = True
                    break
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if augmented is not None:
            augmented.close()
    return result


def watched_value(record: dict, monitor: str) -> float:
    """What early stopping, the best epoch and the plateau schedule watch in an epoch's
    record, lower being better: the validation loss, or its error rate 1 - accuracy (the
    training split's when there is no validation data)."""
    split = "validation" if "validation_loss" in record else "train"
    if monitor == "accuracy":
        return 1 - record[f"{split}_accuracy"]
    return record[f"{split}_loss"]


def _run_epoch(
    engine: Engine,
    state: RunState,
    validation: Split | None,
    options: FitOptions,
    batch_size: int,
    epoch: int,
    progress: bool,
) -> dict:
    """Train one epoch with a progress bar, then measure; returns the epoch's history record."""
    from tqdm import tqdm

    started = time.perf_counter()
    n = len(engine.train.y)
    bar = tqdm(
        total=-(-n // batch_size),
        desc=f"epoch {epoch}/{options.epochs}",
        unit="batch",
        file=sys.stderr,
        disable=not progress,
        leave=False,
        mininterval=0.2,
    )
    loss_sum, correct, done = 0.0, 0, 0
    learning_rate = state.optimizer.learning_rate
    # a diverging run overflows before its loss turns NaN, which is then reported
    with (
        bar,
        np.errstate(over="ignore", invalid="ignore"),
        closing(engine.run_epoch(state.shuffle_rng.permutation(n))) as chunks,
    ):
        for trained in chunks:
            if not np.isfinite(trained.loss):
                raise TrainingDiverged(
                    f"training diverged: the loss became {trained.loss} within samples "
                    f"{done + 1}-{done + trained.rows} of epoch {epoch}; "
                    f"lower the learning rate (for example --lr {learning_rate / 10:g})"
                )
            loss_sum += trained.loss * trained.rows
            correct += trained.correct
            done += trained.rows
            bar.update(-(-trained.rows // batch_size))
            interrupts.check()
    record = {
        "epoch": epoch,
        "learning_rate": learning_rate,
        "train_loss": loss_sum / n,
        "train_accuracy": correct / n,
    }
    if validation is not None and len(validation.y):
        figures = evaluate_split(state.model, validation)
        record.update(validation_loss=figures["loss"], validation_accuracy=figures["accuracy"])
    record["seconds"] = time.perf_counter() - started
    return record
