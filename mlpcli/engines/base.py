"""What every engine offers the training loop, and what they share.

An engine trains a model for one epoch, a chunk of samples at a time, taking exactly the
steps of the reference (nn.model.train_step with an nn.optim optimizer): the fast ones may
fuse and reorder the arithmetic, never change it. `why_not(step, train)` says why an engine
cannot take a set of options, or None when it can: `--engine auto` times those that can and
takes the fastest (choice.py), and naming an engine that cannot is refused with its reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar

import numpy as np

from ..data import Split
from ..nn.dropout import Dropout
from ..nn.losses import LOSSES
from ..nn.model import MLP
from ..nn.optim import Optimizer

CHUNK_SAMPLES = 2048  # samples normalized at a time: a few MB of float32, not the whole split
# One BLAS thread below this many multiply-adds per layer product: OpenBLAS's second thread
# costs more than it gives on small products and pays on large ones (docs/performance.md).
ONE_THREAD_BELOW = 10_000_000


@dataclass(frozen=True)
class StepOptions:
    """The options that decide what one training step computes."""

    activation: str = "relu"
    loss: str = "cross-entropy"
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    max_norm: float = 0.0
    dropout: float = 0.0
    input_dropout: float = 0.0
    layers: tuple[int, ...] = (784, 256, 10)  # sizes from input to output

    @property
    def depth(self) -> int:
        """Layers of weights."""
        return len(self.layers) - 1

    def beyond_plain_sgd(self) -> str | None:
        """What of these options plain SGD (theta -= lr * gradient) does not cover, or None."""
        extras = [
            f"--optimizer {self.optimizer}" if self.optimizer != "sgd" else "",
            "--weight-decay" if self.weight_decay else "",
            "--max-norm" if self.max_norm else "",
            "--dropout" if self.dropout else "",
            "--input-dropout" if self.input_dropout else "",
        ]
        extras = [e for e in extras if e]
        return ", ".join(extras) or None


@dataclass(frozen=True)
class Trained:
    """What a chunk's rows gave as they were trained on, each measured before its step."""

    rows: int
    loss: float  # mean loss of the rows; NaN or inf when training diverged
    correct: int  # rows whose logits' argmax is their label


def measured(model: MLP, logits: np.ndarray, y: np.ndarray) -> Trained:
    """Trained figures of the logits (n, k) that the rows y (n,) had when trained on."""
    loss = LOSSES[model.loss].value(logits, y)
    return Trained(len(y), loss, int((logits.argmax(axis=1) == y).sum()))


def usable_cpus(limit: int = 0) -> int:
    """The threads to run on: the CPUs this process may use (a container or taskset may
    allow fewer than exist), no more than OMP_NUM_THREADS when it is set, nor than `limit`
    (--threads) when it is not 0."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    openmp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if openmp.isdigit() and int(openmp) > 0:
        cpus = min(cpus, int(openmp))
    return max(1, min(cpus, limit) if limit > 0 else cpus)


def idle_cpus(seconds: float = 0.1) -> int | None:
    """How many of the CPUs this process may use were mostly idle over `seconds`, from
    /proc/stat (Linux), or None where that cannot be read. Two threads that wait on each
    other crawl when another process holds one of two cores: a run then does better on one."""
    try:
        allowed = os.sched_getaffinity(0)

        def sample() -> dict[int, tuple[int, int]]:
            times = {}
            with open("/proc/stat") as stat:
                for line in stat:
                    name, *fields = line.split()
                    if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in allowed:
                        ticks = [int(f) for f in fields[:8]]
                        times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))  # idle, all
            return times

        before = sample()
        time.sleep(seconds)
        after = sample()
    except (AttributeError, OSError, ValueError, IndexError):
        return None
    idle = 0
    for cpu, (idle_then, total_then) in before.items():
        idle_now, total_now = after.get(cpu, (idle_then, total_then))
        spent = total_now - total_then
        idle += spent > 0 and (idle_now - idle_then) / spent > 0.5
    return idle if before else None


def free_cpus() -> int:
    """The CPUs this process may use that no other process keeps busy right now (at least
    one), or 0 (all of usable_cpus()) where that cannot be told: 0.1 s spent once a run."""
    idle = idle_cpus()
    return max(1, min(usable_cpus(), idle)) if idle is not None else 0


def blas_threads(layers: list[int], batch_size: int, threads: int = 0) -> int:
    """The BLAS threads for training `layers` at `batch_size`, at most usable_cpus(threads)."""
    largest = max(batch_size * fan_in * fan_out for fan_in, fan_out in pairwise(layers))
    return 1 if largest < ONE_THREAD_BELOW else usable_cpus(threads)


class Engine:
    """Trains `model` in place with `optimizer` (and `dropout`) on `train`, in batches of
    `batch_size` rows (the last of an epoch may be short), on at most usable_cpus(threads)
    threads."""

    name: ClassVar[str]
    # whether run_epoch reads the split's pixels, or only what prepare() made of them
    reads_split_while_training: ClassVar[bool] = True

    def __init__(
        self,
        model: MLP,
        optimizer: Optimizer,
        dropout: Dropout | None,
        train: Split,
        batch_size: int,
        threads: int = 0,
    ):
        self.model, self.optimizer, self.dropout = model, optimizer, dropout
        self.batch_size, self.threads = batch_size, threads
        self.use(train)

    def use(self, train: Split) -> None:
        """Train on `train` from the next epoch on: the same rows and labels, other pixels
        (an augmented epoch). Engines that index the pixels ahead do it in prepare(), once
        an epoch starts on them: a split replaced before it trained is never indexed."""
        self.train = train
        self._prepared_for = None

    def prepare(self, train: Split) -> None:
        """Index `train`'s pixels ahead of its epochs (the fast engines do); run_epoch calls
        ready() for it."""

    def ready(self) -> None:
        """prepare() the split this engine trains on, unless it has been."""
        if self._prepared_for is not self.train:
            self.prepare(self.train)
            self._prepared_for = self.train

    @staticmethod
    def why_not(step: StepOptions, train: Split | None = None) -> str | None:
        """Why this engine cannot train with `step` (on `train`, when given), or None."""
        raise NotImplementedError

    def chunks(self, order: np.ndarray) -> Iterator[np.ndarray]:
        """The rows of `order` a chunk at a time: whole batches of about CHUNK_SAMPLES rows."""
        chunk = max(1, CHUNK_SAMPLES // self.batch_size) * self.batch_size
        for start in range(0, len(order), chunk):
            yield order[start : start + chunk]

    def run_epoch(self, order: np.ndarray) -> Iterator[Trained]:
        """Train on the rows `order` (a permutation of the split's rows) and yield each
        chunk's figures as it is done, so the caller can report progress and stop between
        chunks. The learning rate is the optimizer's."""
        raise NotImplementedError
