"""Datasets: download and verify (fetch.py), MNIST's files (mnist.py), splits (splits.py)."""

from ..io.files import STALE_PART_SECONDS
from .fetch import (
    DATA_DIR_ENV,
    DEFAULT_MIRRORS,
    MIRROR_ENV,
    default_data_dir,
    default_mirrors,
    download,
    read_cached,
)
from .mnist import IMAGE_SHAPE, MNIST_FILES, NUM_CLASSES, load_mnist, parse_idx
from .splits import (
    Split,
    make_splits,
    normalization_coefficients,
    normalization_stats,
    normalize,
    train_validation_split,
)

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_MIRRORS",
    "IMAGE_SHAPE",
    "MIRROR_ENV",
    "MNIST_FILES",
    "NUM_CLASSES",
    "STALE_PART_SECONDS",
    "Split",
    "default_data_dir",
    "default_mirrors",
    "download",
    "load_mnist",
    "make_splits",
    "normalization_coefficients",
    "normalization_stats",
    "normalize",
    "parse_idx",
    "read_cached",
    "train_validation_split",
]
