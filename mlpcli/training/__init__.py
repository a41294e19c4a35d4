"""Training: the loop (loop.py) and the state a run carries between epochs (state.py)."""

from .loop import FitOptions, FitResult, fit
from .state import RunState

__all__ = ["FitOptions", "FitResult", "RunState", "fit"]
