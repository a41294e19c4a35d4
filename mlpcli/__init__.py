"""mlpcli: a multilayer perceptron for MNIST, written by hand in NumPy."""

__version__ = "0.1.0"

from .api import (  # noqa: E402  (the API needs __version__ defined first)
    Prediction,
    TrainConfig,
    TrainResult,
    evaluate,
    predict_array,
    predict_images,
    train,
)
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .data import load_mnist  # noqa: E402
from .errors import MlpError  # noqa: E402
from .model import MLP  # noqa: E402

__all__ = [
    "MLP",
    "Checkpoint",
    "MlpError",
    "Prediction",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_checkpoint",
    "load_mnist",
    "predict_array",
    "predict_images",
    "save_checkpoint",
    "train",
    "__version__",
]
