"""The Python API: everything the CLI does, as plain functions.

from mlpcli import TrainConfig, train, save_checkpoint, load_checkpoint, predict_images
result = train(TrainConfig(layers=[784, 64, 10], epochs=5))
save_checkpoint("checkpoint.npz", result.model, result.meta)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from .checkpoint import Checkpoint
from .data import IMAGE_SHAPE, NUM_CLASSES, load_mnist, make_splits, normalize
from .errors import CheckpointError, ConfigError
from .image import PreparedImage, prepare_image
from .initializers import DEFAULT_INIT_SCALE, INITIALIZERS, default_init
from .losses import LOSSES
from .metrics import evaluate_split
from .model import MLP
from .training import ENGINES, FitOptions, choose_engine, fit

INPUT_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


@dataclass
class TrainConfig:
    layers: list[int] = field(default_factory=lambda: [784, 256, 10])
    activation: str = "relu"
    init: str | None = None  # None: he-normal for the ReLU family, glorot-uniform otherwise
    init_scale: float = DEFAULT_INIT_SCALE  # std of the `normal` init
    leaky_slope: float = DEFAULT_LEAKY_SLOPE
    loss: str = "cross-entropy"
    lr: float = 0.1
    epochs: int = 30
    batch_size: int = 64
    patience: int = 5
    min_delta: float = 0.0
    validation_size: int = 10_000
    seed: int = 0
    engine: str = "auto"

    def validate(self) -> None:
        """Raise ConfigError naming the first option that is out of range."""
        if len(self.layers) < 2 or any(int(s) != s or s < 1 for s in self.layers):
            raise ConfigError(f"layers {self.layers} must be two or more positive sizes")
        if self.layers[0] != INPUT_SIZE or self.layers[-1] != NUM_CLASSES:
            raise ConfigError(
                f"layers must start with {INPUT_SIZE} (28x28 pixels) and end with "
                f"{NUM_CLASSES} (digits), got {','.join(map(str, self.layers))}; "
                f"for example --layers {INPUT_SIZE},64,{NUM_CLASSES}"
            )
        for name, table in (("activation", ACTIVATIONS), ("loss", LOSSES)):
            if getattr(self, name) not in table:
                raise ConfigError(
                    f"unknown {name} {getattr(self, name)!r}; "
                    f"choose one of {', '.join(sorted(table))}"
                )
        if self.init is not None and self.init not in INITIALIZERS:
            raise ConfigError(
                f"unknown init {self.init!r}; choose one of {', '.join(sorted(INITIALIZERS))}"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        checks = (("epochs", 1), ("batch_size", 0), ("patience", 0), ("validation_size", 0))
        for name, least in checks:
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ConfigError(f"min_delta must be zero or positive, got {self.min_delta}")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        choose_engine(self.engine, self.activation, self.loss)

    @property
    def resolved_init(self) -> str:
        return self.init or default_init(self.activation)


@dataclass
class TrainResult:
    model: MLP
    meta: dict  # everything the checkpoint records besides the weights
    interrupted: bool


def train(
    config: TrainConfig,
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Load MNIST, train an MLP by `config`, and measure the best epoch on every split."""
    config.validate()
    mnist = load_mnist(data_dir, mirrors, progress=progress)
    splits, (mean, std) = make_splits(mnist, config.validation_size, config.seed)
    del mnist  # the splits hold copies; the raw arrays would only add to peak memory
    init_rng, shuffle_rng = np.random.default_rng(config.seed).spawn(2)
    model = MLP.initialize(
        config.layers,
        init_rng,
        config.activation,
        config.resolved_init,
        config.loss,
        config.init_scale,
        config.leaky_slope,
    )
    options = FitOptions(
        config.lr,
        config.epochs,
        config.batch_size,
        config.patience,
        config.min_delta,
        config.engine,
    )
    result = fit(
        model, splits["train"], splits["validation"], options, shuffle_rng, progress, on_epoch
    )
    figures = {
        name: evaluate_split(result.model, split) for name, split in splits.items() if len(split.y)
    }
    meta = {
        "init": config.resolved_init,
        "normalization": {"mean": mean, "std": std},
        "dataset": "mnist",
        "classes": list(range(NUM_CLASSES)),
        "options": {**asdict(config), "init": config.resolved_init},
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "interrupted": result.interrupted,
        "engine": result.engine,
        **{f"{name}_accuracy": f["accuracy"] for name, f in figures.items()},
        **{f"{name}_loss": f["loss"] for name, f in figures.items()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mlpcli_version": __version__,
    }
    return TrainResult(result.model, meta, result.interrupted)


SPLITS = ("test", "validation", "train")


def evaluate(
    checkpoint: Checkpoint,
    split: str = "test",
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = False,
) -> dict:
    """Accuracy, loss, confusion matrix and per-class figures of a checkpoint on one split,
    rebuilt exactly as training made it (same seed, same validation size, same normalization)."""
    if checkpoint.model.layers[0] != INPUT_SIZE or checkpoint.model.layers[-1] != NUM_CLASSES:
        raise CheckpointError(
            f"this checkpoint's layers {checkpoint.model.layers} do not fit MNIST "
            f"({INPUT_SIZE} inputs, {NUM_CLASSES} classes)"
        )
    options = checkpoint.meta.get("options", {})
    mnist = load_mnist(data_dir, mirrors, progress=progress)
    splits, _ = make_splits(
        mnist,
        int(options.get("validation_size", 0)),
        int(options.get("seed", 0)),
        checkpoint.normalization,
    )
    chosen = splits[split]
    if not len(chosen.y):
        raise ConfigError(
            f"this checkpoint was trained with no {split} split "
            "(--validation-size 0); choose --split test or train"
        )
    return {"split": split, **evaluate_split(checkpoint.model, chosen)}


@dataclass
class Prediction:
    file: str
    prediction: int
    probabilities: list[float]
    image: PreparedImage


def predict_images(checkpoint: Checkpoint, paths: list[str | Path]) -> list[Prediction]:
    """Prepare each image like MNIST, normalize it as in training, and classify it."""
    if checkpoint.model.layers[0] != INPUT_SIZE:
        raise CheckpointError(
            f"this checkpoint expects {checkpoint.model.layers[0]} inputs, "
            f"not the {INPUT_SIZE} pixels of a 28x28 image"
        )
    images = [prepare_image(path) for path in paths]
    pixels = np.stack([image.pixels for image in images]) * 255
    mean, std = checkpoint.normalization
    probabilities = checkpoint.model.predict_proba(normalize(pixels, mean, std))
    return [
        Prediction(str(path), int(p.argmax()), p.astype(float).tolist(), image)
        for path, p, image in zip(paths, probabilities, images, strict=True)
    ]


def predict_array(checkpoint: Checkpoint, images: np.ndarray) -> np.ndarray:
    """MNIST-like images (n, 28, 28) with pixel values 0..255 -> probabilities (n, 10)."""
    mean, std = checkpoint.normalization
    return checkpoint.model.predict_proba(normalize(np.asarray(images), mean, std))
