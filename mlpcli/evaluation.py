"""Measuring a checkpoint on a split of its dataset, or of another that fits its network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .data import Split, make_splits
from .data.datasets import (
    Dataset,
    resolve,
)
from .errors import CheckpointError, ConfigError, DataError
from .io.checkpoint import Checkpoint
from .prediction import OVERFLOW
from .report.metrics import evaluate_split
from .run import load_data

SPLITS = ("test", "validation", "train")


def _measured_data(
    checkpoint: Checkpoint,
    dataset: str | None,
    data_dir: str | Path | None,
    mirrors: list[str] | None,
    progress: bool,
    parts: tuple[str, ...],
) -> tuple[Dataset, dict[str, np.ndarray]]:
    """`dataset`, or the dataset `checkpoint` was trained on, and the arrays of its `parts`,
    checked to fit its network (before any download where the dataset says its shape)."""
    spec = dataset or checkpoint.dataset
    try:
        data = resolve(spec)
    except DataError:
        if dataset is not None:
            raise
        raise DataError(
            f"this checkpoint was trained on {spec}, which is not there now (moved or "
            "deleted?); give --dataset with where its files are"
        ) from None
    if data.image_shape is not None:  # refused before a download that could not help
        _check_shape(checkpoint, data.image_shape, spec)
        _check_classes(checkpoint, data.names(checkpoint.model.layers[-1]), spec)
    arrays = load_data(data, data_dir, mirrors, progress, parts)
    _check_fits(checkpoint, data, arrays, spec, given=dataset is not None)
    return data, arrays


def evaluate(
    checkpoint: Checkpoint,
    split: str = "test",
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
    dataset: str | None = None,
) -> dict:
    """Accuracy, loss, confusion matrix and per-class figures of a checkpoint on one split of
    the dataset it was trained on, rebuilt exactly as training made it (same seed, same
    validation size, same normalization), or of `dataset`, when its images and classes fit
    the network."""
    options = checkpoint.meta["options"]
    parts = ("test",) if split == "test" else ("train", "test")  # test: a sixth of the bytes
    data, arrays = _measured_data(checkpoint, dataset, data_dir, mirrors, progress, parts)
    if split == "test":
        images, labels = arrays["test-images"], arrays["test-labels"].astype(np.int64)
        rows = images.reshape(len(images), -1)
        chosen = Split(rows, labels, checkpoint.normalization, images.shape[1:])
    else:
        splits, _ = make_splits(
            arrays,
            options["validation_size"],
            options["seed"],
            checkpoint.normalization,
        )
        chosen = splits[split]
    if not len(chosen.y):
        raise ConfigError(
            f"this checkpoint was trained with no {split} split "
            "(--validation-size 0); choose --split test or train"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # refused just below
        figures = evaluate_split(checkpoint.model, chosen)
    if not math.isfinite(figures["loss"]):
        raise CheckpointError(OVERFLOW)
    return {"split": split, "dataset": data.name, **figures}


def _check_shape(checkpoint: Checkpoint, shape: tuple[int, ...], spec: str) -> None:
    if tuple(shape) != checkpoint.image_shape:
        raise ConfigError(
            f"this checkpoint's layers {checkpoint.model.layers} do not fit {spec}: its "
            f"images are {shape[0]}x{shape[1]} pixels, the network takes "
            f"{checkpoint.image_shape[0]}x{checkpoint.image_shape[1]}; evaluate it on the "
            "data it was trained on"
        )


def _check_classes(checkpoint: Checkpoint, names: list[str], spec: str) -> None:
    if names != checkpoint.class_names:
        raise ConfigError(
            f"{spec}'s classes ({', '.join(names[:4])}, ...) are not this checkpoint's "
            f"({', '.join(checkpoint.class_names[:4])}, ...); evaluate it on the data it was "
            "trained on"
        )


def _check_fits(checkpoint: Checkpoint, data: Dataset, arrays: dict, spec: str, given: bool):
    """ConfigError when the network cannot take `data`'s images or classes, or when the
    folder it was trained on has other files now (unless another dataset was asked for)."""
    _check_shape(checkpoint, next(a.shape[1:] for k, a in arrays.items() if "images" in k), spec)
    classes = checkpoint.model.layers[-1]
    labels = [a for k, a in arrays.items() if k.endswith("labels") and len(a)]
    if any(a.max() >= classes for a in labels):
        raise ConfigError(
            f"{spec} has labels up to {max(a.max() for a in labels)}, beyond this "
            f"checkpoint's {classes} classes; evaluate it on the data it was trained on"
        )
    _check_classes(checkpoint, data.names(classes), spec)
    recorded = checkpoint.meta["dataset_sha256"]
    changed = [k for k, digest in data.sha256.items() if recorded.get(k, digest) != digest]
    if changed and not given:
        raise ConfigError(
            f"{data.files[changed[0]][0]} in {spec} changed since this checkpoint was trained "
            f"(its SHA-256 differs); to measure on the files as they are now, give "
            f"--dataset {spec}"
        )
