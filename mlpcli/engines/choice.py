"""Which engine trains: the one asked for, or with `auto` the fastest that can."""

from __future__ import annotations

from ..data import Split
from ..errors import ConfigError
from .base import Engine, StepOptions
from .compiled import CompiledEngine
from .fast_numpy import FastNumpyEngine
from .reference import ReferenceEngine

# fastest first, as engines.ENGINE_CHOICES lists them: `auto` takes the first that can
ENGINES: dict[str, type[Engine]] = {
    engine.name: engine for engine in (CompiledEngine, FastNumpyEngine, ReferenceEngine)
}


def choose_engine(wanted: str, step: StepOptions, train: Split | None = None) -> type[Engine]:
    """The engine `wanted` ('auto' or a name of ENGINES) for `step`; ConfigError with its
    reason when the named engine cannot take them. Without `train`, only the options are
    checked (as config validation does)."""
    if wanted != "auto":
        reason = ENGINES[wanted].why_not(step, train)
        if reason is not None:
            raise ConfigError(f"--engine {wanted} cannot train this: {reason}; use --engine auto")
        return ENGINES[wanted]
    passed_over = fallback_reasons(step, train)
    return next(engine for name, engine in ENGINES.items() if name not in passed_over)


def fallback_reasons(step: StepOptions, train: Split | None = None) -> dict[str, str]:
    """Why `auto` passes over each engine faster than the one it takes, by name: one that
    cannot train `step`, or one that would be slower on it than the next."""
    reasons = {}
    for name, engine in ENGINES.items():
        reason = engine.why_not(step, train) or engine.why_slow(step)
        if reason is None or name == "reference":
            break
        reasons[name] = reason
    return reasons
