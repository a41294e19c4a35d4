"""Inverted dropout: in training, each unit is dropped with probability p and the kept ones
are scaled by 1 / (1 - p), so that a unit's expected output is unchanged and prediction runs
the network as it is, with no dropout and no rescaling.

Masks come from the Dropout's own Generator, so that a seed makes them repeatable and a
resumed run continues the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dropout:
    """Drop probabilities for the input pixels (A_0) and for every hidden activation."""

    hidden: float
    input: float
    rng: np.random.Generator

    def mask(self, shape: tuple[int, ...], layer: int) -> np.ndarray | None:
        """A float32 mask of `shape` for A_layer (layer 0 is the input): 0 where a unit is
        dropped, 1 / (1 - p) where it is kept; None when p is 0."""
        p = self.input if layer == 0 else self.hidden
        if p == 0:
            return None
        kept = self.rng.random(shape, dtype=np.float32) >= np.float32(p)
        return kept * np.float32(1 / (1 - p))
