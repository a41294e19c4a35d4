"""Which engine trains: the one asked for, or with `auto` the fastest that can, by measurement.

Which engine is fastest depends on the machine as much as on the options (one CPU has
AVX-512, the next not; BLAS threads help a wide layer and cost a narrow one), so `auto` does
not rank them: it times each engine that can take the options on a few batches of the run's
own data, on a throwaway copy of the model, and trains on the quickest (time_engine).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..data import Split
from ..errors import ConfigError
from ..nn.dropout import Dropout
from ..nn.model import MLP
from ..nn.optim import Optimizer
from .base import CHUNK_SAMPLES, Engine, StepOptions
from .compiled import CompiledEngine
from .fast_numpy import FastNumpyEngine
from .reference import ReferenceEngine

# in engines.ENGINE_CHOICES' order: without a measurement, `auto` takes the first that can
ENGINES: dict[str, type[Engine]] = {
    engine.name: engine for engine in (CompiledEngine, FastNumpyEngine, ReferenceEngine)
}
# samples a trial round takes: a training chunk, so that what an engine pays once a call
# (the compiled step copies the weights in and out) weighs as it does in training; each
# engine takes 3 rounds
TRIAL_SAMPLES = CHUNK_SAMPLES


def choose_engine(wanted: str, step: StepOptions, train: Split | None = None) -> type[Engine]:
    """The engine `wanted` ('auto' or a name of ENGINES) for `step`; ConfigError with its
    reason when the named engine cannot take them. Without `train`, only the options are
    checked (as config validation does). With 'auto', the first that can: fit() measures
    instead (fastest_engine) where more than one can."""
    if wanted != "auto":
        reason = ENGINES[wanted].why_not(step, train)
        if reason is not None:
            raise ConfigError(f"--engine {wanted} cannot train this: {reason}; use --engine auto")
        return ENGINES[wanted]
    return next(iter(usable_engines(step, train).values()))


def usable_engines(step: StepOptions, train: Split | None = None) -> dict[str, type[Engine]]:
    """The engines that can train `step` (on `train`), by name; the reference always can."""
    return {name: engine for name, engine in ENGINES.items() if not engine.why_not(step, train)}


def fallback_reasons(step: StepOptions, train: Split | None = None) -> dict[str, str]:
    """Why `auto` cannot take each engine that it passes over, by name."""
    reasons = {name: engine.why_not(step, train) for name, engine in ENGINES.items()}
    return {name: reason for name, reason in reasons.items() if reason is not None}


@dataclass(frozen=True)
class Choice:
    """The engine `auto` took, and the seconds per sample each candidate was timed at."""

    engine: type[Engine]
    seconds_per_sample: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """'compiled, 2.41x as fast as reference' or just the name when nothing was timed."""
        name = self.engine.name
        others = {n: s for n, s in self.seconds_per_sample.items() if n != name}
        if not others:
            return name
        mine = self.seconds_per_sample[name]
        faster = (f"{seconds / mine:.2f}x as fast as {other}" for other, seconds in others.items())
        return f"{name}, " + ", ".join(faster)


def fastest_engine(
    step: StepOptions, train: Split, seconds_per_sample: Callable[[type[Engine]], float]
) -> Choice:
    """The engine that can train `step` on `train` with the fewest `seconds_per_sample`
    (time_engine, or timings a test makes up); no timing where only one can."""
    usable = usable_engines(step, train)
    if len(usable) == 1:
        return Choice(next(iter(usable.values())))
    timings = {name: seconds_per_sample(engine) for name, engine in usable.items()}
    return Choice(usable[min(timings, key=timings.get)], timings)


def time_engine(
    engine: type[Engine],
    model: MLP,
    optimizer: Optimizer,
    dropout: Dropout | None,
    train: Split,
    batch_size: int,
    threads: int,
) -> float:
    """Seconds per sample of `engine` training copies of `model`, `optimizer` and `dropout`
    on the first rows of `train`: one round to warm up (the compiled step indexes the ink,
    BLAS starts its threads), then the quicker of two. Nothing of the run is touched: not its
    weights, buffers, step count, nor its random streams."""
    model, optimizer, dropout = copy.deepcopy((model, optimizer, dropout))
    samples = max(1, min(TRIAL_SAMPLES, len(train) // 3))
    rows = np.arange(min(3 * samples, len(train)))
    trial = Split(train.X[rows], train.y[rows], train.normalization, train.image_shape)
    trainer = engine(model, optimizer, dropout, trial, min(batch_size, samples), threads)
    seconds = []
    for start in range(0, len(rows), samples):
        started = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is fit()'s to tell
            for _ in trainer.run_epoch(rows[start : start + samples]):
                pass
        seconds.append((time.perf_counter() - started) / len(rows[start : start + samples]))
    return min(seconds[1:] or seconds)
