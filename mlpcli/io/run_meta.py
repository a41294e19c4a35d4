"""What a checkpoint records of its run: one schema, checked once when it loads. It names
the fields `info`, `compare`, `report`, `evaluate`, `predict` and `--resume` read, the type
each is read as, and what a checkpoint from before a field existed meant by leaving it out.

`filled` gives every field its legacy default, here and nowhere else, so that readers take
`meta[name]` as it is; `first_problem` names a field of the wrong type, or with a value no
run could have made, and the checkpoint is refused in one line rather than failing later
with a traceback.
"""

from __future__ import annotations

import math

MAX_NAME_LENGTH = 200  # characters of a class name: what a label needs, and what a line shows

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
# the options the commands read, by the type they read them as (config.TrainConfig declares them
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


def legacy_defaults(inputs: int) -> dict:
    """Each field's meaning when a checkpoint leaves it out, for a network of `inputs`."""
    return {
        "dataset": "mnist",  # before 0.3 every run was on MNIST
        "image_shape": [28, 28] if inputs == 784 else [1, inputs],
        "class_names": [],  # "0", "1", ... (Checkpoint.class_names)
        "preparation": "digits",
        "dataset_sha256": {},
        "activation_params": {},
        "options": {},
        "history": [],
        "best_epoch": None,
        "stopped_early": False,
        "interrupted": False,
        **dict.fromkeys(("engine", "created", "mlpcli_version")),
        **dict.fromkeys(FIGURES),
    }


# the options a run before them had in effect: evaluate and report rebuild its splits with
# the first two; a run from before typed digits had none, and resumes without them
LEGACY_OPTIONS = {"validation_size": 0, "seed": 0, "typed_digits": 0.0}


def filled(meta: dict, inputs: int) -> dict:
    """`meta` with the legacy default of each field it leaves out (an `options` that is no
    object is left to first_problem)."""
    meta = {**legacy_defaults(inputs), **meta}
    if isinstance(meta["options"], dict):
        meta["options"] = {**LEGACY_OPTIONS, **meta["options"]}
    return meta


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value) -> bool:
    """A whole number from 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def first_problem(meta: dict, layers: list[int]) -> str | None:
    """What is wrong in `meta` (filled) for a network of `layers`, or None."""
    for check in (_data, _history, _figures, _flags, _options, _resume):
        problem = check(meta, layers)
        if problem:
            return problem
    return None


def _data(meta: dict, layers: list[int]) -> str | None:
    """What predict and evaluate read of the data trained on must fit the network."""
    from .image import PREPARATIONS

    if not isinstance(meta["dataset"], str):
        return "'dataset' must be a name or a folder's path"
    shape = meta["image_shape"]
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(_count(s) and s > 0 for s in shape)
        or shape[0] * shape[1] != layers[0]
    ):
        return f"'image_shape' {shape!r} is not (h, w) of the {layers[0]} inputs"
    names = meta["class_names"]
    if not isinstance(names, list) or len(names) > layers[-1]:
        return f"'class_names' must be a list of at most {layers[-1]} names"
    if not all(isinstance(name, str) and len(name) <= MAX_NAME_LENGTH for name in names):
        return f"'class_names' must be strings of at most {MAX_NAME_LENGTH} characters"
    if meta["preparation"] not in PREPARATIONS:
        return f"unknown 'preparation' {meta['preparation']!r}"
    digests = meta["dataset_sha256"]
    if not isinstance(digests, dict) or not all(isinstance(d, str) for d in digests.values()):
        return "'dataset_sha256' must map file names to SHA-256 digests"
    return None


def _history(meta: dict, layers: list[int]) -> str | None:
    history = meta["history"]
    if not isinstance(history, list):
        return "'history' must be a list of epochs"
    for i, record in enumerate(history, 1):
        if not isinstance(record, dict) or record.get("epoch") != i:
            return f"'history' record {i} must be an object for epoch {i}"
        for name in EPOCH_FIGURES:
            if record.get(name) is not None and not _number(record[name]):
                return f"'history' record {i}: {name} must be a number"
    best = meta["best_epoch"]
    if best is not None and (not _count(best) or best > len(history)):
        return f"'best_epoch' must be an epoch of the history, not {best!r}"
    return None


def _figures(meta: dict, layers: list[int]) -> str | None:
    for name in FIGURES:
        value = meta[name]
        if value is not None and (not _number(value) or math.isnan(value)):
            return f"'{name}' must be a number"
    return None


def _flags(meta: dict, layers: list[int]) -> str | None:
    for name in ("stopped_early", "interrupted"):
        if not isinstance(meta[name], bool):
            return f"'{name}' must be true or false"
    for name in ("engine", "created", "mlpcli_version"):
        if meta[name] is not None and not isinstance(meta[name], str):
            return f"'{name}' must be text"
    return None


def _options(meta: dict, layers: list[int]) -> str | None:
    options = meta["options"]
    if not isinstance(options, dict):
        return "'options' must be an object"
    for name, kind in OPTION_TYPES.items():
        value = options.get(name)
        if value is None and name not in LEGACY_OPTIONS:
            continue  # left to a default that follows others
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"options.{name} must be {_KIND_NAMES[kind]}, not {value!r}"
        if kind is int and value < 0:
            return f"options.{name} must be a whole number from 0, not {value}"
    return None


def _resume(meta: dict, layers: list[int]) -> str | None:
    resume = meta.get("resume")  # None: a run that cannot be resumed (format version 1)
    if resume is None:
        return None
    if not isinstance(resume, dict):
        return "'resume' must be an object"
    epoch, waited = resume.get("epoch"), resume.get("waited")
    if not _count(epoch) or not _count(waited):
        return "resume: epoch and waited must be whole numbers from 0"
    if len(meta["history"]) != epoch:
        return f"resume: the history holds {len(meta['history'])} epochs, not {epoch}"
    best = resume.get("best_watched")
    if best is not None and (not _number(best) or math.isnan(best)):
        return "resume: best_watched must be a number"
    epochs = meta["options"].get("epochs")
    if epochs is not None and epoch > epochs:
        return f"resume: {epoch} epochs done, more than the run's {epochs}"
    schedule, rng = resume.get("schedule"), resume.get("rng")
    if not isinstance(schedule, dict) or not all(
        value is None or _number(value) for value in schedule.values()
    ):
        return "resume: schedule must be an object of numbers"
    if not isinstance(rng, dict) or not all(
        isinstance(rng.get(name), dict) for name in ("shuffle", "dropout")
    ):
        return "resume: rng must hold the shuffle and dropout generators' states"
    return None
