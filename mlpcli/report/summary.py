"""A checkpoint's run at a glance (`mlp info`, `compare`) and its HTML report page."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data import Split
from ..errors import CheckpointError
from ..evaluation import _measured_data
from ..io.checkpoint import Checkpoint
from ..prediction import OVERFLOW


def describe(checkpoint: Checkpoint) -> dict:
    """A checkpoint's run at a glance: its data, network, options that differ from the
    defaults, epochs, best epoch, figures, engine and when it was made."""
    meta = checkpoint.meta
    options = meta["options"]
    default = TrainConfig(activation=options.get("activation", "relu"))
    follows = TrainConfig(  # the rate and epochs left to their defaults follow these two
        optimizer=options.get("optimizer", default.optimizer),
        batch_size=options.get("batch_size", default.batch_size),
    )
    follows.resolve_defaults()
    defaults = {
        **asdict(default),
        "lr": follows.lr,
        "epochs": follows.epochs,
        "init": default.resolved_init,
        "typed_digits": default.typed_share(checkpoint.preparation == "digits"),
    }
    return {
        "dataset": checkpoint.dataset,
        "image_shape": list(checkpoint.image_shape),
        "classes": checkpoint.class_names,
        "layers": checkpoint.model.layers,
        "activation": checkpoint.model.activation,
        "loss": checkpoint.model.loss,
        "options": {
            k: v for k, v in options.items() if k in defaults and k != "layers" and v != defaults[k]
        },
        # every option as the run had it: the recorded ones, today's defaults for the rest
        "options_in_force": {k: options.get(k, v) for k, v in defaults.items() if k != "layers"},
        "epochs": len(meta["history"]),
        "best_epoch": meta["best_epoch"],
        "ended": "interrupted"
        if meta["interrupted"]
        else "stopped early"
        if meta["stopped_early"]
        else "finished",
        **{
            f"{split}_{figure}": meta[f"{split}_{figure}"]
            for split in ("train", "validation", "test")
            for figure in ("accuracy", "loss")
        },
        "seconds": round(sum(r.get("seconds", 0) for r in meta["history"]), 1),
        "engine": meta["engine"],
        "created": meta["created"],
        "mlpcli_version": meta["mlpcli_version"],
        "can_resume": bool(checkpoint.resume),
    }


def report_page(
    checkpoint: Checkpoint,
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
    dataset: str | None = None,
) -> str:
    """The HTML report of a checkpoint (report/pages.py), measured on the test split of the
    dataset it was trained on, or of `dataset` when its images and classes fit the network.
    Needs matplotlib: MlpError saying how to install it."""
    from ..nn.losses import LOSSES
    from . import plots
    from .metrics import score
    from .pages import run_report

    plots.require()  # before any download
    _, arrays = _measured_data(checkpoint, dataset, data_dir, mirrors, progress, ("test",))
    images, labels = arrays["test-images"], arrays["test-labels"].astype(np.int64)
    split = Split(images.reshape(len(images), -1), labels, checkpoint.normalization)
    with np.errstate(over="ignore", invalid="ignore"):
        logits = checkpoint.model.logits(split)
    if not np.isfinite(logits).all():
        raise CheckpointError(OVERFLOW)
    test = {
        "images": images,
        "labels": labels,
        "probabilities": LOSSES[checkpoint.model.loss].probabilities(logits),
        "figures": score(logits, labels, checkpoint.model.loss),
    }
    return run_report(describe(checkpoint), checkpoint.meta, checkpoint.model.weights[0], test)
