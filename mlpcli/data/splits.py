"""Training, validation and test splits of uint8 images, and their normalization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError


def train_validation_split(
    n: int, validation_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of a seeded shuffle of range(n); the same seed, the same split.

    Its generator is derived from the seed alone, so evaluate can rebuild the split exactly.
    """
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return np.sort(order[validation_size:]), np.sort(order[:validation_size])


def normalization_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and std of pixel/255 over all pixels of `images` (uint8, any shape).

    Computed exactly from the 256-bin histogram, so no float copy of the images is made; the
    histogram is counted a million pixels at a time, as bincount widens its input to int64."""
    pixels = images.reshape(-1)
    counts = sum(
        (
            np.bincount(pixels[start : start + (1 << 20)], minlength=256)
            for start in range(0, len(pixels), 1 << 20)
        ),
        np.zeros(256, np.int64),
    ).astype(np.float64)
    values = np.arange(256) / 255
    mean = counts @ values / counts.sum()
    return float(mean), float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))


def normalization_coefficients(mean: float, std: float) -> tuple[np.float32, np.float32]:
    """(scale, shift) such that the normalized pixel is pixel * scale + shift in float32."""
    return np.float32(1 / (255 * std)), np.float32(-mean / std)


def normalize(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 images (n, 28, 28) or (n, 784) -> float32 rows (n, 784) of (pixel/255 - mean) / std,
    computed as pixel * scale + shift: two passes, as training does this every epoch."""
    scale, shift = normalization_coefficients(mean, std)
    pixels = images.reshape(len(images), int(np.prod(images.shape[1:])))
    X = np.multiply(pixels, scale, dtype=np.float32)
    X += shift
    return X


@dataclass
class Split:
    """Samples X (n, d) with labels y (n,) int64, kept as stored: MNIST's as uint8 pixels
    (n, 784), a quarter of the memory of float32, which `features` normalizes a few rows at a
    time. With no `normalization`, X is already the network's float input."""

    X: np.ndarray
    y: np.ndarray
    normalization: tuple[float, float] | None = None  # (mean, std) of pixel/255
    image_shape: tuple[int, int] | None = None  # (h, w) of each row's image, h w = d

    def __len__(self) -> int:
        return len(self.y)

    def features(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """The network's float32 input (m, d) for `rows` (a slice or an index array)."""
        if self.normalization is None:
            return self.X[rows]
        return normalize(self.X[rows], *self.normalization)

    __getitem__ = features  # so MLP.logits can take a split as it takes an array


def make_splits(
    mnist: dict[str, np.ndarray],
    validation_size: int,
    seed: int,
    normalization: tuple[float, float] | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, Split], tuple[float, float]]:
    """Splits "train", "validation" (from the 60k training images) and "test" as uint8 rows,
    normalized by `normalization` or, when None, by the statistics of the training split's
    own images. `extra` (images (m, h, w) uint8, labels (m,)) go after them in "train",
    written into the one array the split is made in (no second copy of the split)."""
    images, labels = mnist["train-images"], mnist["train-labels"].astype(np.int64)
    if not 0 <= validation_size < len(images):
        raise DataError(
            f"validation size {validation_size} must be between 0 and {len(images) - 1}"
        )
    rows = images.reshape(len(images), -1)
    train_idx, val_idx = train_validation_split(len(images), validation_size, seed)
    extra_images, extra_labels = extra if extra is not None else (rows[:0], labels[:0])
    train_rows = np.empty((len(train_idx) + len(extra_images), rows.shape[1]), rows.dtype)
    np.take(rows, train_idx, axis=0, out=train_rows[: len(train_idx)])
    train_rows[len(train_idx) :] = extra_images.reshape(len(extra_images), rows.shape[1])
    stats = normalization or normalization_stats(train_rows[: len(train_idx)])
    train_labels = np.concatenate([labels[train_idx], extra_labels.astype(np.int64)])
    test = mnist["test-images"]
    shape = images.shape[1:]
    splits = {
        "train": Split(train_rows, train_labels, stats, shape),
        "validation": Split(rows[val_idx], labels[val_idx], stats, shape),
        "test": Split(
            test.reshape(len(test), -1), mnist["test-labels"].astype(np.int64), stats, shape
        ),
    }
    return splits, stats
