"""Learning-rate schedules: the rate for each epoch (1-based), set once per epoch.

- constant: the base rate throughout.
- step:     the rate times `factor` every `step_epochs` epochs (torch's StepLR).
- cosine:   from the base rate down to `min_lr` along half a cosine over the epochs after
            warm-up (torch's CosineAnnealingLR with T_max the remaining epochs).
- plateau:  the rate times `factor` whenever the validation loss has not improved for more
            than `patience` epochs (torch's ReduceLROnPlateau), never below `min_lr`.

With `warmup_epochs` W, epoch e <= W runs at base * e / (W + 1), a straight ramp that reaches
the base rate in the epoch after it, where the schedule proper starts (its first epoch).
A Schedule's `state()` is what a resumed run needs: plateau's reductions and its patience.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "step", "cosine", "plateau")


@dataclass
class Schedule:
    name: str
    base: float
    epochs: int  # the run's total epochs: cosine ends at the last
    warmup_epochs: int = 0
    step_epochs: int = 10
    factor: float = 0.1
    patience: int = 2
    min_lr: float = 0.0
    # plateau's memory, all a resumed run needs
    reductions: int = 0
    waited: int = 0
    best: float = math.inf

    def learning_rate(self, epoch: int) -> float:
        if epoch <= self.warmup_epochs:
            return self.base * epoch / (self.warmup_epochs + 1)
        e = epoch - self.warmup_epochs  # 1 for the first epoch after warm-up
        if self.name == "step":
            return self.base * self.factor ** ((e - 1) // self.step_epochs)
        if self.name == "cosine":
            span = max(1, self.epochs - self.warmup_epochs)
            cosine = (1 + math.cos(math.pi * (e - 1) / span)) / 2
            return self.min_lr + (self.base - self.min_lr) * cosine
        if self.name == "plateau":
            return max(self.min_lr, self.base * self.factor**self.reductions)
        return self.base

    def observe(self, epoch: int, validation_loss: float) -> None:
        """Tell the schedule how epoch `epoch` ended; only plateau listens, after warm-up."""
        if self.name != "plateau" or epoch <= self.warmup_epochs:
            return
        if validation_loss < self.best:
            self.best, self.waited = validation_loss, 0
        else:
            self.waited += 1
            if self.waited > self.patience:
                self.reductions, self.waited = self.reductions + 1, 0

    def state(self) -> dict:
        return {"reductions": self.reductions, "waited": self.waited, "best": self.best}

    def load_state(self, state: dict) -> None:
        self.reductions, self.waited = int(state["reductions"]), int(state["waited"])
        self.best = float(state["best"])
