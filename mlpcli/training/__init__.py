"""Training: the loop (loop.py) and the state a run carries between epochs (state.py).

The names below are imported on first use, so that the CLI can offer MONITORS without
loading the engines.
"""

from importlib import import_module

MONITORS = ("loss", "accuracy")  # what early stopping and the best epoch may watch

_EXPORTS = {"FitOptions": "loop", "FitResult": "loop", "fit": "loop", "RunState": "state"}
__all__ = ["MONITORS", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
