"""Training on distorted images: where the distortions are made, and on which cores.

The first epoch's images are made before it trains, and the epoch trains on every thread:
it takes make + train. With more than one thread, the second epoch then tries the other
way: the next epoch's images are made in the background on a core of their own while
training runs on the others, which takes about the training alone, slower on fewer
threads. The run keeps whichever was quicker. (Sharing a core instead is the worst of
both: the training threads wait on each other; engines.base.idle_cpus.) A small network
on the compiled step gains from the background; a large one on BLAS needs every core.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from threadpoolctl import threadpool_limits

from ..data import Split
from ..data.augment import Augmentation, AugmentedEpochs
from ..engines.base import Engine, usable_cpus


class AugmentedTraining:
    """Feeds `engine` each epoch's distortions of `train`, drawn from `seed`."""

    def __init__(
        self,
        engine: Engine,
        train: Split,
        augmentation: Augmentation,
        seed: int,
        last_epoch: int,
        threads: int,
    ):
        self.engine, self.threads = engine, usable_cpus(threads)
        # an engine that indexes each epoch's pixels ahead needs one buffer: the next epoch's
        # images may be written over it as soon as the index is made
        buffers = 2 if engine.reads_split_while_training else 1
        self.epochs = AugmentedEpochs(train, augmentation, seed, last_epoch, buffers)
        self.in_turn = None  # seconds of the first epoch, images made then trained
        self.trial = False  # the second epoch, with images made in the background
        self.decided = False
        self.waited = 0.0
        self.limits = ExitStack()

    def before(self, epoch: int) -> float:
        """Give the engine epoch's images; returns the seconds spent waiting for them."""
        started = time.perf_counter()
        self.engine.use(self.epochs.epoch(epoch))
        if not self.engine.reads_split_while_training:
            self.engine.ready()  # indexed: its images may now be written over
            self.epochs.ahead(epoch)
        self.waited = time.perf_counter() - started
        return self.waited

    def after(self, training: float) -> None:
        """After each epoch, which trained in `training` seconds: the first decides on a
        trial of the background, the second whether to keep it (module docstring)."""
        if self.decided:
            return
        if self.in_turn is None:
            self.in_turn = training + self.waited
            if self.threads > 1:
                self._background(True)
                self.trial = True
            else:
                self.decided = True
            return
        self.decided = True
        if training >= self.in_turn:  # the background did not pay: back to taking turns
            self._background(False)

    def _background(self, on: bool) -> None:
        self.epochs.background = on
        self.engine.threads = self.threads - 1 if on else self.threads
        if on:  # OpenBLAS's thread count is the process's: the images' matrix products
            # would otherwise spread over the training threads' cores too
            self.limits.enter_context(threadpool_limits(self.threads - 1, "blas"))
        else:
            self.limits.close()
            self.limits = ExitStack()

    def close(self) -> None:
        self.epochs.close()
        self.limits.close()
