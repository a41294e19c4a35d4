"""Starting, training and resuming a run: the config in, the trained network and what its
checkpoint records out (training/ runs the epochs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .data import make_splits
from .data.datasets import (
    CLASSES_FILE,
    Dataset,
    check_test_labels,
    class_count,
    load_dataset,
    resolve,
)
from .errors import CheckpointError, ConfigError, DataError
from .io.checkpoint import Checkpoint
from .nn.model import MLP
from .nn.optim import make_optimizer
from .nn.schedules import Schedule
from .report.metrics import evaluate_split

if TYPE_CHECKING:  # the engines and the loop load when training starts, not for predict
    from .training import RunState

from .config import TrainConfig

# Options a resumed run may change: how long and how it runs, not what it computes.
RESUMABLE_CHANGES = ("epochs", "patience", "engine", "threads")


@dataclass
class TrainResult:
    model: MLP  # the best epoch's weights
    meta: dict  # everything the checkpoint records besides the weights
    interrupted: bool
    resume: dict[str, np.ndarray]  # the arrays a resumed run needs (RunState.arrays())
    epochs_run: int  # epochs completed by this call (a resumed run counts only its own)


def resume_config(checkpoint: Checkpoint, changes: dict) -> TrainConfig:
    """The config of the run `checkpoint` saved, with `changes` (options given again, by
    TrainConfig field name) applied: ConfigError when it cannot be resumed or a change
    conflicts with the run."""
    meta = checkpoint.meta
    if meta["version"] < 2 or "resume" not in meta or not checkpoint.resume:
        raise ConfigError(
            "this checkpoint holds no resume state (it is format version "
            f"{meta['version']}, written before resuming existed); it still works for "
            "evaluate and predict, but to train more, start a new run"
        )
    try:
        return _resumed_config(meta, changes)
    except (KeyError, TypeError, ValueError) as exc:  # a damaged or hand-made checkpoint
        raise ConfigError(
            f"this checkpoint's options or resume state are damaged ({type(exc).__name__}: "
            f"{exc}); start a new run"
        ) from None


def _resumed_config(meta: dict, changes: dict) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    options = meta["options"]  # with the legacy defaults (io/run_meta.py)
    config = TrainConfig(**{k: v for k, v in options.items() if k in known})
    for name, value in changes.items():
        if name not in RESUMABLE_CHANGES and value != getattr(config, name):
            raise ConfigError(
                f"--{name.replace('_', '-')} {typed(value)} conflicts with the run being "
                f"resumed, which has {typed(getattr(config, name))}; leave it out, or start a "
                f"new run (a resumed run may change only {', '.join(RESUMABLE_CHANGES)})"
            )
        setattr(config, name, value)
    done = int(meta["resume"]["epoch"])
    if config.epochs <= done:
        raise ConfigError(
            f"this run has completed {done} epochs; give --epochs above {done} "
            "(the total, counting those) to train more"
        )
    if config.patience and int(meta["resume"]["waited"]) >= config.patience:
        raise ConfigError(
            f"this run stopped early: its validation figure has not improved for "
            f"{meta['resume']['waited']} epochs; resume it with a larger --patience "
            "(or 0: never stop early)"
        )
    config.validate()
    return config


def typed(value) -> str:
    """An option's value as it is typed on the command line."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def start_run(config: TrainConfig, resume: Checkpoint | None = None) -> RunState:
    """A new run's state from the seed, or, with `resume`, the state that checkpoint saved."""
    from .training import RunState

    config.resolve_defaults()
    init_rng, shuffle_rng, dropout_rng = np.random.default_rng(config.seed).spawn(3)
    model = MLP.initialize(
        config.layers,
        init_rng,
        config.activation,
        config.resolved_init,
        config.loss,
        config.init_scale,
        config.leaky_slope,
    )
    optimizer = make_optimizer(
        config.optimizer,
        model.params,
        config.lr,
        config.weight_decay,
        config.max_norm,
        momentum=config.momentum,
        beta1=config.beta1,
        beta2=config.beta2,
        eps=config.eps,
    )
    schedule = Schedule(
        config.schedule,
        config.lr,
        config.epochs,
        config.warmup_epochs,
        config.lr_step_epochs,
        config.lr_factor,
        config.lr_patience,
        config.min_lr,
    )
    state = RunState(model, optimizer, schedule, shuffle_rng, dropout_rng)
    if resume is not None:
        try:
            state.restore(resume.resume, resume.meta["resume"])
            state.best_epoch = int(resume.meta["best_epoch"])
            state.history = list(resume.meta["history"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"the checkpoint's resume state does not fit its options ({exc}); start a new run"
            ) from None
        state.best_model = resume.model.copy()
    return state


def train(
    config: TrainConfig,
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    resume: Checkpoint | None = None,
    on_engine: Callable | None = None,
    on_note: Callable[[str], None] | None = None,
) -> TrainResult:
    """Load config's dataset, train an MLP by `config` (its layers set to fit the data when
    not given), and measure the best epoch on every split. With `resume` (a checkpoint that
    resume_config() accepted with this config), the run it saved goes on from its last
    completed epoch to config.epochs. `on_engine` is told which engine `auto` chose
    (engines.choice.Choice) before the first epoch, `on_note` what a person should know of
    the data before it trains."""
    from .data.typed_digits import typed_share
    from .training import fit

    config.validate()
    dataset = resolve(config.dataset)
    arrays = load_data(dataset, data_dir, mirrors, progress)
    classes = class_count(dataset, arrays)
    unused = classes - len(np.unique(arrays["train-labels"]))
    if dataset.class_names is not None and unused and on_note is not None:
        on_note(
            f"{CLASSES_FILE} names {classes} classes, and {unused} of them label no training "
            "image: the network has an output for each all the same"
        )
    config.fit_data(
        arrays["train-images"].shape[1:], classes, config.dataset, dataset.preparation == "digits"
    )
    config.validate()  # the engine again, for the layers now known
    typed = None  # to learn from only: validation and test stay the dataset's own
    if config.typed_digits:
        train_size = max(0, len(arrays["train-images"]) - config.validation_size)
        typed = typed_share(config.typed_digits, train_size, config.seed)
    splits, (mean, std) = make_splits(arrays, config.validation_size, config.seed, extra=typed)
    del arrays, typed  # the splits hold copies; these would only add to peak memory
    if resume is not None and not np.allclose((mean, std), resume.normalization, rtol=1e-9, atol=0):
        raise DataError(
            "the training data no longer matches the run being resumed (its pixel statistics "
            "differ); resume with the data it was trained on, or start a new run"
        )
    state = start_run(config, resume)
    started_at = state.epoch
    result = fit(
        state,
        splits["train"],
        splits["validation"],
        config.fit_options(),
        progress,
        on_epoch,
        on_engine,
    )
    best = result.model
    figures = {name: evaluate_split(best, split) for name, split in splits.items() if len(split.y)}
    meta = {
        "init": config.resolved_init,
        "normalization": {"mean": mean, "std": std},
        "dataset": dataset.name,
        **({"dataset_sha256": dataset.sha256} if dataset.folder else {}),
        "image_shape": list(splits["train"].image_shape),
        "classes": list(range(classes)),
        "class_names": dataset.names(classes),
        "preparation": dataset.preparation,
        "options": {**asdict(config), "init": config.resolved_init},
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "interrupted": result.interrupted,
        "engine": result.engine,
        **({"engine_timings": result.choice.seconds_per_sample} if result.choice else {}),
        **{f"{name}_accuracy": f["accuracy"] for name, f in figures.items()},
        **{f"{name}_loss": f["loss"] for name, f in figures.items()},
        "resume": result.state.meta(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mlpcli_version": __version__,
    }
    return TrainResult(
        best, meta, result.interrupted, result.state.arrays(), result.state.epoch - started_at
    )


def load_data(
    dataset: Dataset,
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
    parts: tuple[str, ...] = ("train", "test"),
) -> dict[str, np.ndarray]:
    """The arrays of `parts` of `dataset` (data.datasets.resolve), checked: DataError naming
    the file when they do not make a dataset."""
    arrays = load_dataset(dataset, data_dir, mirrors, progress, parts)
    if "train" in parts:
        check_test_labels(dataset, arrays, class_count(dataset, arrays))
    return arrays


def augment_preview(
    config: TrainConfig,
    images: int = 8,
    variants: int = 7,
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """The first `images` training images of config's split, each beside `variants`
    distortions by config's augmentation, drawn from its seed as training draws them (the
    same distribution, not the very draws of an epoch): (images, 1 + variants, h, w) uint8."""
    from .data.augment import epoch_rng

    config.validate()
    augmentation = config.augmentation()
    if not augmentation:
        raise ConfigError("no distortion chosen; give --augment affine, elastic or both")
    arrays = load_data(resolve(config.dataset), data_dir, mirrors, progress)
    splits, _ = make_splits(arrays, config.validation_size, config.seed)
    train = splits["train"]
    originals = train.X[:images].reshape(-1, *train.image_shape)
    repeated = np.repeat(originals, variants, axis=0)
    distorted = augmentation.distort(repeated, epoch_rng(config.seed, 1))
    shape = (len(originals), variants, *train.image_shape)
    return np.concatenate([originals[:, None], distorted.reshape(shape)], axis=1)
