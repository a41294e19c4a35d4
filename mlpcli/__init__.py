"""mlpcli: a multilayer perceptron for MNIST, written by hand in NumPy.

The names below are imported on first use, so that `mlp predict` loads only what it needs.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "MLP": "nn.model",
    "Checkpoint": "io.checkpoint",
    "MlpError": "errors",
    "Prediction": "prediction",
    "TrainConfig": "api",
    "TrainResult": "api",
    "evaluate": "api",
    "load_checkpoint": "io.checkpoint",
    "load_mnist": "data",
    "predict_array": "prediction",
    "predict_images": "prediction",
    "save_checkpoint": "io.checkpoint",
    "train": "api",
}
__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
