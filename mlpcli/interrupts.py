"""Ctrl-C taken at safe points: long loops call `check()` where stopping is clean.

Python raises KeyboardInterrupt at whatever bytecode runs when the signal arrives. Landing
inside a library's constructor leaves a half-built object: tqdm's then fails again in its
`__del__` and prints a traceback after our tidy exit. Within `at_safe_points()` the first
Ctrl-C only sets a flag, which the next `check()` turns into KeyboardInterrupt; a second
Ctrl-C raises at once, so a stuck program can still be stopped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()


def _defer(signum, frame) -> None:
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()


@contextmanager
def at_safe_points() -> Iterator[None]:
    """Defer Ctrl-C to the next `check()` within this block; a pending one is raised on exit.

    Does nothing outside the main thread (only it receives signals) or when the program has
    its own SIGINT handler, which is then left in charge.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _requested.clear()
    signal.signal(signal.SIGINT, _defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    check()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since the block began."""
    if _requested.is_set():
        _requested.clear()
        raise KeyboardInterrupt
