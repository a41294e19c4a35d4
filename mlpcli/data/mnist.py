"""MNIST: its four files, their checksums, and parsing them into arrays."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import DataError
from .fetch import DEFAULT_MIRRORS  # noqa: F401  (the MNIST dataset's, in datasets.py)

# SHA-256 of each file after decompression.
MNIST_FILES = {
    "train-images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test-images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test-labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


def parse_idx(raw: bytes, source: str) -> np.ndarray:
    """IDX bytes (big-endian header: 0, 0, type 0x08, ndim, then ndim uint32 sizes) -> uint8."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(
            f"{source} is not an IDX file of unsigned bytes (magic {raw[:4].hex()}); "
            "delete it so that it is downloaded again"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source} is truncated inside its header; delete it and download again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(
            f"{source} holds {len(raw) - header} data bytes but its header "
            f"{dims} says {expected}; delete it and download again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = True,
    parts: tuple[str, ...] = ("train", "test"),
    **download_options,
) -> dict[str, np.ndarray]:
    """The MNIST arrays of `parts` as uint8: train-images (60000, 28, 28), train-labels
    (60000,), test-images (10000, 28, 28), test-labels (10000,). Downloads what the cache
    lacks. Evaluating on the test split reads the test files alone, a sixth of the bytes."""
    from .datasets import load_dataset, resolve

    arrays = load_dataset(resolve("mnist"), data_dir, mirrors, progress, parts, **download_options)
    for split in parts:
        if arrays[f"{split}-images"].shape[1:] != IMAGE_SHAPE:
            raise DataError(
                f"MNIST {split} images are not 28x28: {arrays[f'{split}-images'].shape}"
            )
    return arrays
