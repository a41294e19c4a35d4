"""Predicting: each image prepared as the checkpoint's dataset was made (io/image.py), or a
row of digits split into its digits (io/number.py), then classified by the network. Apart
from the training code (run.py), so that `mlp predict` does not load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.splits import normalize
from .errors import CheckpointError, ConfigError
from .io.checkpoint import Checkpoint
from .io.image import PreparedImage, prepare_image

OVERFLOW = (
    "this checkpoint's outputs overflow to NaN or infinity: its weights are too large to use; "
    "train it again with a lower --lr"
)


@dataclass
class Prediction:
    file: str
    prediction: int  # the class's index
    probabilities: list[float]
    image: PreparedImage
    label: str = ""  # the class's name: the digit, or "Ankle boot"

    def record(self) -> dict:
        """What `mlp predict --json` prints, and POST /predict answers: "blank" says the
        image held no ink, when the prediction means nothing."""
        return {
            "file": self.file,
            "prediction": self.prediction,
            "label": self.label,
            "probabilities": self.probabilities,
            "blank": not self.image.has_digit,
        }


def predict_images(
    checkpoint: Checkpoint, paths: list[str | Path | bytes], names: list[str] | None = None
) -> list[Prediction]:
    """Prepare each image (a file, or an image file's bytes) as the checkpoint's dataset
    was made (io/image.py: a digit like MNIST's, an object like Fashion-MNIST's), normalize
    it as in training, and classify it. `names` name the images in the answers (default:
    their paths)."""
    shape, how = checkpoint.image_shape, checkpoint.preparation
    images = [prepare_image(path, how, shape) for path in paths]
    return _predictions(checkpoint, [str(name) for name in names or paths], images)


def _predictions(
    checkpoint: Checkpoint, names: list[str], images: list[PreparedImage]
) -> list[Prediction]:
    """The network's Prediction of each prepared image, named by `names`."""
    probabilities = _probabilities(checkpoint, np.stack([image.pixels for image in images]) * 255)
    classes = checkpoint.class_names
    return [
        Prediction(name, int(p.argmax()), p.astype(float).tolist(), image, classes[p.argmax()])
        for name, p, image in zip(names, probabilities, images, strict=True)
    ]


@dataclass
class NumberReading:
    file: str
    digits: list[Prediction]  # left to right
    boxes: list[tuple[int, int, int, int]]  # each digit's (x0, y0, x1, y1) in the image

    @property
    def number(self) -> str:
        return "".join(d.label for d in self.digits)

    def record(self) -> dict:
        """What `mlp predict --number --json` prints."""
        return {
            "file": self.file,
            "number": self.number,
            "digits": [
                {"prediction": d.prediction, "probabilities": d.probabilities, "box": list(box)}
                for d, box in zip(self.digits, self.boxes, strict=True)
            ],
        }


def read_number(checkpoint: Checkpoint, path: str | Path | bytes, name: str = "") -> NumberReading:
    """The row of digits in an image, each classified as predict_images does one
    (io/number.py); no digits for an image with no ink. A mark as wide as digits that
    touch is cut where the network reads both sides more surely than the whole."""
    from .io.image import read_grayscale
    from .io.number import digit_marks

    if checkpoint.preparation != "digits":
        raise ConfigError(
            f"--number reads rows of digits; this checkpoint classifies {checkpoint.dataset}"
        )
    marks = digit_marks(read_grayscale(path))
    name = name or str(path)
    if not marks:
        return NumberReading(name, [], [])
    tallest = max(mark.ink.shape[0] for mark in marks)
    marks = [part for mark in marks for part in _digits_in(checkpoint, mark, tallest)]
    digits = _predictions(checkpoint, [name] * len(marks), [m.image for m in marks])
    return NumberReading(name, digits, [m.box for m in marks])


def _digits_in(checkpoint: Checkpoint, mark, tallest: int) -> list:
    """`mark` as one digit, or as the digits its best cut makes (each side cut again in
    turn): when the network is surer of both sides (the product of their probabilities)
    than of the whole, or when the mark is too wide to be one digit."""
    from .io.number import TOO_WIDE, cut, cut_columns

    pairs = [cut(mark, column) for column in cut_columns(mark, tallest)]
    if not pairs:
        return [mark]
    sureness = _sureness(checkpoint, [mark, *(side for pair in pairs for side in pair)])
    whole, sides = sureness[0], sureness[1:].reshape(len(pairs), 2).prod(axis=1)
    if sides.max() <= whole and mark.ink.shape[1] <= TOO_WIDE * tallest:
        return [mark]
    left, right = pairs[int(sides.argmax())]
    return [*_digits_in(checkpoint, left, tallest), *_digits_in(checkpoint, right, tallest)]


def _sureness(checkpoint: Checkpoint, marks: list) -> np.ndarray:
    """The network's probability of its answer for each mark's image."""
    pixels = np.stack([mark.image.pixels for mark in marks]) * 255
    return _probabilities(checkpoint, pixels).max(axis=1)


def _probabilities(checkpoint: Checkpoint, pixels: np.ndarray) -> np.ndarray:
    """Images (n, h, w), values 0..255 -> the network's probabilities (n, k)."""
    mean, std = checkpoint.normalization
    with np.errstate(over="ignore", invalid="ignore"):  # refused just below
        probabilities = checkpoint.model.predict_proba(normalize(pixels, mean, std))
    if not np.isfinite(probabilities).all():
        raise CheckpointError(OVERFLOW)
    return probabilities


def predict_array(checkpoint: Checkpoint, images: np.ndarray) -> np.ndarray:
    """Images (n, h, w) like the dataset's, pixel values 0..255 -> probabilities (n, k)."""
    return _probabilities(checkpoint, np.asarray(images))
