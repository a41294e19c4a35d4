"""The Python API: everything the CLI does, as plain functions.

from mlpcli import TrainConfig, train, save_checkpoint, load_checkpoint, predict_images
result = train(TrainConfig(layers=[784, 64, 10], epochs=5, optimizer="adam", lr=1e-3))
save_checkpoint("checkpoint.npz", result.model, result.meta, result.resume)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .data import IMAGE_SHAPE, NUM_CLASSES, Split, make_splits
from .data.augment import Augmentation, parse_kinds
from .data.datasets import (
    CLASSES_FILE,
    Dataset,
    check_test_labels,
    class_count,
    load_dataset,
    resolve,
)
from .engines import ENGINE_CHOICES
from .errors import CheckpointError, ConfigError, DataError
from .io.checkpoint import Checkpoint
from .nn.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from .nn.initializers import DEFAULT_INIT_SCALE, INITIALIZERS, default_init
from .nn.losses import LOSSES
from .nn.model import MLP
from .nn.optim import OPTIMIZERS, default_learning_rate, make_optimizer
from .nn.schedules import SCHEDULES, Schedule

# predicting lives in prediction.py; its names are the API's too
from .prediction import (  # noqa: F401
    OVERFLOW,
    NumberReading,
    Prediction,
    predict_array,
    predict_images,
    read_number,
)
from .report.metrics import evaluate_split
from .training import MONITORS

if TYPE_CHECKING:  # the engines and the loop load when training starts, not for predict
    from .engines.base import StepOptions
    from .training import FitOptions, RunState

INPUT_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


DEFAULT_HIDDEN = 256  # the default network: pixels, 256 ReLU units, classes
DEFAULT_EPOCHS = 15
# The full batch takes one step an epoch: gradient descent needs about a hundred to pass 95%.
FULL_BATCH_EPOCHS = 150


@dataclass
class TrainConfig:
    dataset: str = "mnist"  # a name in data.datasets.named_datasets() or an IDX folder
    layers: list[int] | None = None  # None: [pixels, DEFAULT_HIDDEN, classes] of the dataset
    activation: str = "relu"
    init: str | None = None  # None: he-normal for the ReLU family, glorot-uniform otherwise
    init_scale: float = DEFAULT_INIT_SCALE  # std of the `normal` init
    leaky_slope: float = DEFAULT_LEAKY_SLOPE
    loss: str = "cross-entropy"
    lr: float | None = None  # None: nn.optim.default_learning_rate(optimizer, batch_size)
    epochs: int | None = None  # None: DEFAULT_EPOCHS, or FULL_BATCH_EPOCHS at batch_size 0
    batch_size: int = 128
    patience: int = 5
    min_delta: float = 0.0
    monitor: str = "loss"
    validation_size: int = 10_000
    seed: int = 0
    engine: str = "auto"
    threads: int = 0  # 0: every CPU this process may use, at most OMP_NUM_THREADS
    # optimizer (nn/optim.py); defaults are torch.optim's
    optimizer: str = "momentum"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    max_norm: float = 0.0
    # regularization (nn/dropout.py)
    dropout: float = 0.0
    input_dropout: float = 0.0
    # learning-rate schedule (nn/schedules.py)
    schedule: str = "cosine"
    warmup_epochs: int = 0
    lr_step_epochs: int = 10
    lr_factor: float = 0.1
    lr_patience: int = 2
    min_lr: float = 0.0
    # distortions of the training images, new every epoch (data/augment.py)
    augment: str = "elastic"  # comma-separated kinds of AUGMENTATIONS; "" or "none": none
    rotation: float = 10.0
    scale: float = 0.1
    shear: float = 10.0
    translate: float = 2.0
    elastic_alpha: float = 25.0
    elastic_sigma: float = 4.0
    # typed digits added to the training images (data/typed_digits.py), as a share of them;
    # None: typed_digits.SHARE for a dataset of digits (MNIST), none for any other
    typed_digits: float | None = None

    def validate(self) -> None:
        """Fill in the defaults that follow other options (resolve_defaults), then raise
        ConfigError naming the first option that is out of range."""
        self.resolve_defaults()
        try:
            dataset = resolve(self.dataset)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        if self.typed_digits and dataset.preparation != "digits":
            raise ConfigError(
                f"--typed-digits adds typed digits 0-9 to a dataset of handwritten digits, "
                f"and {self.dataset} is not one; leave it out, or give --typed-digits 0"
            )
        if self.layers is not None and (
            len(self.layers) < 2 or any(int(s) != s or s < 1 for s in self.layers)
        ):
            raise ConfigError(f"layers {self.layers} must be two or more positive sizes")
        choices = (
            ("activation", ACTIVATIONS),
            ("loss", LOSSES),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("engine", ENGINE_CHOICES),
            ("monitor", MONITORS),
        )
        for name, table in choices:
            if getattr(self, name) not in table:
                raise ConfigError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(table)}"
                )
        if self.init is not None and self.init not in INITIALIZERS:
            raise ConfigError(
                f"unknown init {self.init!r}; choose one of {', '.join(sorted(INITIALIZERS))}"
            )
        for name, low, high, high_open in RANGES:
            _check_range(name, getattr(self, name), low, high, high_open)
        self.augmentation()  # raises ConfigError for an unknown kind
        if self.typed_digits is not None:
            _check_range("typed_digits", self.typed_digits, 0, 1, False)
        for name in ("lr", "eps", "init_scale", "elastic_sigma"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"warmup_epochs {self.warmup_epochs} must be fewer than epochs {self.epochs}"
            )
        if self.min_lr >= self.lr and self.schedule in ("cosine", "plateau"):
            raise ConfigError(f"min_lr {self.min_lr} must be below lr {self.lr}")
        if self.schedule == "plateau" and self.patience and self.lr_patience >= self.patience:
            raise ConfigError(
                f"lr_patience {self.lr_patience} must be below patience {self.patience}, or "
                "early stopping ends the run before the plateau schedule lowers the rate; "
                "lower --lr-patience, or raise --patience (0: never stop early)"
            )
        from .engines.choice import choose_engine

        choose_engine(self.engine, self.step_options())

    def resolve_defaults(self) -> None:
        """Set lr and epochs where they were left to their defaults (None), which follow the
        optimizer and the batch size: the run records the values in force."""
        if self.lr is None and self.optimizer in OPTIMIZERS and self.batch_size >= 0:
            self.lr = default_learning_rate(self.optimizer, self.batch_size)
        if self.epochs is None:
            self.epochs = FULL_BATCH_EPOCHS if self.batch_size == 0 else DEFAULT_EPOCHS

    @property
    def resolved_init(self) -> str:
        return self.init or default_init(self.activation)

    def typed_share(self, digits: bool) -> float:
        """typed_digits, or when it was not given, its default for a dataset of `digits` or
        of anything else."""
        from .data.typed_digits import SHARE

        if self.typed_digits is not None:
            return self.typed_digits
        return SHARE if digits else 0.0

    def step_options(self) -> StepOptions:
        layers = self.layers or [INPUT_SIZE, DEFAULT_HIDDEN, NUM_CLASSES]  # sizes to come
        return self.fit_options().step_options(self.activation, self.loss, layers)

    def fit_data(
        self, image_shape: tuple[int, int], classes: int, dataset: str, digits: bool
    ) -> None:
        """Set layers for images of `image_shape` and `classes` classes (the default network
        when none were given; ConfigError saying what fits when the given ones do not), and
        typed_digits, when not given, for a dataset of `digits` or not."""
        self.typed_digits = self.typed_share(digits)
        pixels = image_shape[0] * image_shape[1]
        if self.layers is None:
            self.layers = [pixels, DEFAULT_HIDDEN, classes]
        elif self.layers[0] != pixels or self.layers[-1] != classes:
            hidden = ",".join(map(str, self.layers[1:-1])) or str(DEFAULT_HIDDEN)
            raise ConfigError(
                f"--layers {','.join(map(str, self.layers))} does not fit {dataset}: its "
                f"images have {pixels} pixels ({image_shape[0]}x{image_shape[1]}) and it has "
                f"{classes} classes, so the layers must start with {pixels} and end with "
                f"{classes}, e.g. --layers {pixels},{hidden},{classes} (or leave --layers out)"
            )

    def fit_options(self) -> FitOptions:
        from .training import FitOptions

        self.resolve_defaults()
        shared = {f.name for f in fields(FitOptions)} - {"learning_rate", "augmentation"}
        return FitOptions(
            learning_rate=self.lr,
            augmentation=self.augmentation(),
            **{name: getattr(self, name) for name in shared},
        )

    def augmentation(self) -> Augmentation:
        """The distortions `augment` names, with their ranges."""
        try:
            kinds = parse_kinds(self.augment)
        except ValueError as exc:
            raise ConfigError(f"augment {exc}") from None
        return Augmentation(
            kinds,
            self.rotation,
            self.scale,
            self.shear,
            self.translate,
            self.elastic_alpha,
            self.elastic_sigma,
        )


# (option, least, most, whether `most` itself is out): each must also be finite
RANGES = (
    ("epochs", 1, math.inf, True),
    ("leaky_slope", 0, 1, False),
    ("batch_size", 0, math.inf, True),
    ("patience", 0, math.inf, True),
    ("validation_size", 0, math.inf, True),
    ("seed", 0, math.inf, True),
    ("threads", 0, math.inf, True),
    ("min_delta", 0, math.inf, True),
    ("momentum", 0, 1, True),
    ("beta1", 0, 1, True),
    ("beta2", 0, 1, True),
    ("weight_decay", 0, math.inf, True),
    ("max_norm", 0, math.inf, True),
    ("dropout", 0, 1, True),
    ("input_dropout", 0, 1, True),
    ("warmup_epochs", 0, math.inf, True),
    ("lr_step_epochs", 1, math.inf, True),
    ("lr_factor", 0, 1, True),
    ("lr_patience", 0, math.inf, True),
    ("min_lr", 0, math.inf, True),
    ("rotation", 0, 180, False),
    ("scale", 0, 1, True),  # the smallest factor, 1 - scale, stays above 0
    ("shear", 0, 90, True),
    ("translate", 0, math.inf, True),
    ("elastic_alpha", 0, math.inf, True),
    ("elastic_sigma", 0, math.inf, True),
)


def _check_range(name: str, value, low: float, high: float, high_open: bool) -> None:
    inside = (
        math.isfinite(value) and low <= value and (value < high if high_open else value <= high)
    )
    if not inside:
        most = (
            ""
            if math.isinf(high)
            else f" and below {high}"
            if high_open
            else f" and at most {high}"
        )
        raise ConfigError(f"{name} must be at least {low}{most}, got {value}")


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
    options = {"typed_digits": 0.0, **meta["options"]}  # runs saved before it existed had none
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
    from .nn.losses import LOSSES
    from .report import plots
    from .report.metrics import score
    from .report.pages import run_report

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


def did_not_learn(config: TrainConfig, meta: dict) -> str | None:
    """Why a finished run looks like it learned nothing, with the option to change, or None.
    Near chance: validation accuracy (training accuracy without validation data) below 1.5
    times what guessing gives."""
    accuracy = meta.get("validation_accuracy", meta.get("train_accuracy"))
    chance = 1 / len(meta.get("classes", range(10)))
    if accuracy is None or accuracy >= 1.5 * chance:
        return None
    default = default_learning_rate(config.optimizer, config.batch_size)
    if config.batch_size == 1 and config.lr > 0.01:
        cause = (
            f"--lr {config.lr:g} is too high for per-sample steps; leave --lr out for "
            f"{config.optimizer}'s rate at batch 1, {default:.2g}"
        )
    elif config.optimizer in ("adam", "adamw") and config.lr > 0.01:
        cause = (
            f"--lr {config.lr:g} is too high for {config.optimizer}; leave --lr out for its "
            f"rate at this batch size, {default:.2g}"
        )
    elif config.init == "zeros":
        cause = "--init zeros gives every unit the same weights; leave --init out"
    else:
        cause = f"try a lower --lr than {config.lr:g}, e.g. --lr {config.lr / 10:g}"
    return (
        f"the best epoch's accuracy is {100 * accuracy:.1f}%, about what guessing gives "
        f"({100 * chance:.0f}%): this network did not learn. {cause}"
    )


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
