"""Ctrl-C and SIGTERM taken at safe points: long loops call `check()` where stopping is clean.

Python raises KeyboardInterrupt at whatever bytecode runs when the signal arrives. Landing
inside a library's constructor leaves a half-built object: tqdm's then fails again in its
`__del__` and prints a traceback after our tidy exit. Within `at_safe_points()` the first
Ctrl-C only sets a flag, which the next `check()` turns into KeyboardInterrupt; a second
Ctrl-C raises at once, so a stuck program can still be stopped. SIGTERM (what `kill`,
systemd, Docker and batch schedulers send) is taken the same way, so that a run asked to
stop saves what it has; `stopped_by()` says which signal it was.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()
_last_signal = signal.SIGINT
TAKEN = (signal.SIGINT, signal.SIGTERM)
_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def _defer(signum, frame) -> None:
    global _last_signal
    _last_signal = signal.Signals(signum)
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()


def stopped_by() -> signal.Signals:
    """The signal behind the last stop: SIGINT (Ctrl-C) or SIGTERM."""
    return _last_signal


@contextmanager
def at_safe_points() -> Iterator[None]:
    """Defer Ctrl-C and SIGTERM to the next `check()` within this block; a pending one is
    raised on exit.

    Does nothing outside the main thread (only it receives signals), and leaves a signal
    alone when the program has its own handler for it, which is then left in charge.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [signum for signum in TAKEN if signal.getsignal(signum) is _DEFAULTS[signum]]
    _requested.clear()
    for signum in taken:
        signal.signal(signum, _defer)
    try:
        yield
    finally:
        for signum in taken:
            signal.signal(signum, _DEFAULTS[signum])
    check()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since the block began."""
    if _requested.is_set():
        _requested.clear()
        raise KeyboardInterrupt
