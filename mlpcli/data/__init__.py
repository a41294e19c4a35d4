"""Datasets: download and verify (fetch.py), MNIST's files (mnist.py), splits (splits.py).

The names below are imported on first use, as in mlpcli/__init__.py: `mlp predict` needs
normalize() and not the downloading code.
"""

from importlib import import_module

_EXPORTS = {
    "STALE_PART_SECONDS": "..io.files",
    "DATA_DIR_ENV": ".fetch",
    "DEFAULT_MIRRORS": ".fetch",
    "MIRROR_ENV": ".fetch",
    "default_data_dir": ".fetch",
    "default_mirrors": ".fetch",
    "download": ".fetch",
    "read_cached": ".fetch",
    "IMAGE_SHAPE": ".mnist",
    "MNIST_FILES": ".mnist",
    "NUM_CLASSES": ".mnist",
    "load_mnist": ".mnist",
    "parse_idx": ".mnist",
    "Split": ".splits",
    "make_splits": ".splits",
    "normalization_coefficients": ".splits",
    "normalization_stats": ".splits",
    "normalize": ".splits",
    "train_validation_split": ".splits",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
