"""Accuracy, loss, confusion matrix and per-class precision, recall and F1."""

from __future__ import annotations

import numpy as np

from ..data import Split
from ..nn.losses import LOSSES
from ..nn.model import MLP


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true label, column = predicted label."""
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_report(confusion: np.ndarray) -> list[dict]:
    """Precision, recall, F1 and support per class; 0 where a ratio has nothing to divide."""
    hits = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return [
        {
            "class": k,
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(actual[k]),
        }
        for k in range(len(confusion))
    ]


def score(logits: np.ndarray, y: np.ndarray, loss: str) -> dict:
    """Accuracy, mean loss, confusion matrix (list of rows, true label first) and per-class
    figures of logits (n, k) against labels y (n,)."""
    num_classes = logits.shape[1]
    confusion = confusion_matrix(y, logits.argmax(axis=1), num_classes)
    return {
        "samples": int(len(y)),
        "accuracy": float(np.trace(confusion) / max(len(y), 1)),
        "loss": LOSSES[loss].value(logits, y) if len(y) else float("nan"),
        "confusion_matrix": confusion.tolist(),
        "per_class": per_class_report(confusion),
    }


def evaluate_split(model: MLP, split: Split) -> dict:
    """The figures of `score` for `model` on a split (`Split(X, y)` for plain float arrays);
    `model.logits` normalizes it a chunk at a time, to save memory. Training reports its
    validation figures through this too."""
    return score(model.logits(split), split.y, model.loss)
