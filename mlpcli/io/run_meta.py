"""What a checkpoint records of its run, checked once when it loads: the fields `info`,
`compare`, `report` and `--resume` read, each of the type they read it as.

A field a checkpoint lacks is left out (checkpoints from before it existed); one it holds
with the wrong type, or with a value no run could have made, is named by `first_problem`,
and the checkpoint is refused in one line rather than failing later with a traceback.
"""

from __future__ import annotations

import math

# the figures of an epoch's record in a run's history (training.loop makes it), in order
EPOCH_FIGURES = (
    "train_loss",
    "train_accuracy",
    "validation_loss",
    "validation_accuracy",
    "learning_rate",
    "seconds",
)
FIGURES = [
    f"{split}_{figure}"
    for split in ("train", "validation", "test")
    for figure in ("accuracy", "loss")
]
# the options the commands read, by the type they read them as (api.TrainConfig declares them
# all; a spec of them both reads from is issue 30's)
_NUMBER = (int, float)
OPTION_TYPES = {
    **dict.fromkeys(("optimizer", "activation", "loss", "schedule", "engine", "monitor"), str),
    **dict.fromkeys(("augment", "dataset", "init"), str),
    **dict.fromkeys(("epochs", "batch_size", "patience", "seed", "validation_size"), int),
    **dict.fromkeys(("lr", "momentum", "weight_decay", "dropout", "typed_digits"), _NUMBER),
    "layers": list,
}
_KIND_NAMES = {str: "text", int: "a whole number", _NUMBER: "a number", list: "a list"}


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value) -> bool:
    """A whole number from 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def first_problem(meta: dict) -> str | None:
    """What is wrong in `meta`'s record of the run, or None."""
    for check in (_history, _figures, _flags, _options, _resume):
        problem = check(meta)
        if problem:
            return problem
    return None


def _history(meta: dict) -> str | None:
    history = meta.get("history", [])
    if not isinstance(history, list):
        return "'history' must be a list of epochs"
    for i, record in enumerate(history, 1):
        if not isinstance(record, dict) or record.get("epoch") != i:
            return f"'history' record {i} must be an object for epoch {i}"
        for name in EPOCH_FIGURES:
            if record.get(name) is not None and not _number(record[name]):
                return f"'history' record {i}: {name} must be a number"
    best = meta.get("best_epoch", 0)
    if not _count(best) or best > len(history):
        return f"'best_epoch' must be an epoch of the history, not {best!r}"
    return None


def _figures(meta: dict) -> str | None:
    for name in FIGURES:
        value = meta.get(name)
        if value is not None and (not _number(value) or math.isnan(value)):
            return f"'{name}' must be a number"
    return None


def _flags(meta: dict) -> str | None:
    for name in ("stopped_early", "interrupted"):
        if not isinstance(meta.get(name, False), bool):
            return f"'{name}' must be true or false"
    for name in ("engine", "created", "mlpcli_version"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            return f"'{name}' must be text"
    return None


def _options(meta: dict) -> str | None:
    options = meta.get("options", {})
    if not isinstance(options, dict):
        return "'options' must be an object"
    for name, kind in OPTION_TYPES.items():
        value = options.get(name)
        if value is None:
            continue  # absent, or left to a default that follows others
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"options.{name} must be {_KIND_NAMES[kind]}, not {value!r}"
        if kind is int and value < 0:
            return f"options.{name} must be a whole number from 0, not {value}"
    return None


def _resume(meta: dict) -> str | None:
    resume = meta.get("resume")
    if resume is None:
        return None
    if not isinstance(resume, dict):
        return "'resume' must be an object"
    epoch, waited = resume.get("epoch"), resume.get("waited")
    if not _count(epoch) or not _count(waited):
        return "resume: epoch and waited must be whole numbers from 0"
    if len(meta.get("history", [])) != epoch:
        return f"resume: the history holds {len(meta.get('history', []))} epochs, not {epoch}"
    best = resume.get("best_watched")
    if best is not None and (not _number(best) or math.isnan(best)):
        return "resume: best_watched must be a number"
    epochs = meta.get("options", {}).get("epochs")
    if epochs is not None and epoch > epochs:
        return f"resume: {epoch} epochs done, more than the run's {epochs}"
    return None
