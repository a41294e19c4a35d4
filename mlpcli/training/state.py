"""A run's state between epochs: everything that resuming it needs, and nothing else.

A checkpoint keeps the state at the end of the last completed epoch (io/checkpoint.py saves
what `arrays()` and `meta()` give), so `mlp train --resume` continues as if never stopped:
the same weights, optimizer buffers, random streams, schedule and early-stopping counters.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from ..nn.model import MLP
from ..nn.optim import Optimizer
from ..nn.schedules import Schedule


@dataclass
class RunState:
    model: MLP  # the weights now, at the end of epoch `epoch`
    optimizer: Optimizer  # over model.params
    schedule: Schedule
    shuffle_rng: np.random.Generator  # draws each epoch's order of the samples
    dropout_rng: np.random.Generator  # draws the dropout masks
    epoch: int = 0  # epochs completed
    best_model: MLP | None = None  # the weights of the epoch with the lowest watched loss
    best_epoch: int = 0
    best_watched: float = math.inf  # the lowest value of what is watched (loop.watched)
    waited: int = 0  # epochs since the best one
    history: list[dict] = field(default_factory=list)

    def snapshot(self) -> RunState:
        """A copy that later epochs do not change."""
        return copy.deepcopy(self)

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights now and the optimizer's buffers, named for the checkpoint."""
        named = {f"W{i}": W for i, W in enumerate(self.model.weights, 1)}
        named |= {f"b{i}": b for i, b in enumerate(self.model.biases, 1)}
        named |= {f"optimizer.{name}": a for name, a in self.optimizer.state().items()}
        return named

    def meta(self) -> dict:
        """The rest, as JSON-ready values."""
        return {
            "epoch": self.epoch,
            "best_watched": None if math.isinf(self.best_watched) else self.best_watched,
            "waited": self.waited,
            "schedule": {
                k: (None if isinstance(v, float) and math.isinf(v) else v)
                for k, v in self.schedule.state().items()
            },
            "rng": {
                "shuffle": self.shuffle_rng.bit_generator.state,
                "dropout": self.dropout_rng.bit_generator.state,
            },
        }

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Take back what arrays() and meta() gave (KeyError, TypeError or ValueError when
        they do not fit this run's model and optimizer)."""
        for i, (W, b) in enumerate(zip(self.model.weights, self.model.biases, strict=True), 1):
            W[...], b[...] = arrays[f"W{i}"], arrays[f"b{i}"]
        self.optimizer.load_state(
            {
                k.removeprefix("optimizer."): a
                for k, a in arrays.items()
                if k.startswith("optimizer.")
            }
        )
        schedule = dict(meta["schedule"])
        schedule["best"] = math.inf if schedule.get("best") is None else schedule["best"]
        self.schedule.load_state(schedule)
        self.shuffle_rng.bit_generator.state = meta["rng"]["shuffle"]
        self.dropout_rng.bit_generator.state = meta["rng"]["dropout"]
        self.epoch, self.waited = int(meta["epoch"]), int(meta["waited"])
        self.best_watched = (
            math.inf if meta["best_watched"] is None else float(meta["best_watched"])
        )
