"""Training on distorted images: where the distortions are made, and on which cores.

The first epoch's images are made before it trains, and the epoch trains on every thread.
Both are timed, and decide the rest: with t threads, making the next epoch's images in the
background on a core of their own, while training runs on t - 1, takes about
max(train * t / (t - 1), make) an epoch against train + make one after the other; the first
is shorter when train < (t - 1) * make. Sharing a core instead is the worst of both: the
training threads wait on each other (engines.base.idle_cpus).
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
        self.epochs = AugmentedEpochs(train, augmentation, seed, last_epoch)
        self.making = 0.0  # seconds the first epoch's images took
        self.decided = False
        self.limits = ExitStack()

    def before(self, epoch: int) -> float:
        """Give the engine epoch's images; returns the seconds spent waiting for them."""
        started = time.perf_counter()
        self.engine.use(self.epochs.epoch(epoch))
        waited = time.perf_counter() - started
        if not self.decided:
            self.making = waited
        return waited

    def after(self, training: float) -> None:
        """After the first epoch, which trained in `training` seconds: go on in the
        background, on a core taken from training, when that is faster (module docstring)."""
        if self.decided:
            return
        self.decided = True
        if self.threads > 1 and training < (self.threads - 1) * self.making:
            self.engine.threads = self.threads - 1
            # OpenBLAS's thread count is the process's: the images' matrix products would
            # otherwise spread over the training threads' cores too
            self.limits.enter_context(threadpool_limits(self.threads - 1, "blas"))
            self.epochs.background = True

    def close(self) -> None:
        self.epochs.close()
        self.limits.close()
