"""A training run's options: TrainConfig, each option's default and range, and how the
defaults that follow others (the network's size, the learning rate, the epochs, the init)
are resolved."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from .data import IMAGE_SHAPE, NUM_CLASSES
from .data.augment import Augmentation, parse_kinds
from .data.datasets import (
    resolve,
)
from .engines import ENGINE_CHOICES
from .errors import ConfigError, DataError
from .nn.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from .nn.initializers import DEFAULT_INIT_SCALE, INITIALIZERS, default_init
from .nn.losses import LOSSES
from .nn.optim import OPTIMIZERS, default_learning_rate
from .nn.schedules import SCHEDULES
from .training import MONITORS

if TYPE_CHECKING:  # the engines and the loop load when training starts, not for predict
    from .engines.base import StepOptions
    from .training import FitOptions

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
