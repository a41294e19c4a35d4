"""The reference engine: nn.model.train_step, batch after batch, and nothing else.

It takes every option, and it is what the other engines are tested against. It is the one
to read (or to run with `--engine reference`) to see what training computes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..data import Split
from ..nn.model import train_step
from .base import Engine, StepOptions, Trained, blas_threads, measured


class ReferenceEngine(Engine):
    name = "reference"

    @staticmethod
    def why_not(step: StepOptions, train: Split | None = None) -> str | None:
        return None

    def run_epoch(self, order: np.ndarray) -> Iterator[Trained]:
        from threadpoolctl import threadpool_limits

        self.ready()
        threads = blas_threads(self.model.layers, self.batch_size, self.threads)
        with threadpool_limits(threads, "blas"):
            for rows in self.chunks(order):
                X, y = self.train.features(rows), self.train.y[rows]
                logits = np.empty((len(y), self.model.layers[-1]), self.model.weights[-1].dtype)
                for start in range(0, len(y), self.batch_size):
                    batch = slice(start, start + self.batch_size)
                    logits[batch] = train_step(
                        self.model, self.optimizer, X[batch], y[batch], self.dropout
                    )
                yield measured(self.model, logits, y)
