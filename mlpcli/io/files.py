"""Atomic file writing: a temporary file beside the target, fsync, then rename over it.

A crash, a kill or Ctrl-C at any moment leaves either the old file or the new one, never half
of one; the temporary file is removed on every error path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(target: Path) -> Iterator[BinaryIO]:
    """Yields a binary file; on normal exit its bytes replace `target` in one rename.

    Raises OSError when the folder is not writable, before anything else happens.
    """
    target = Path(target)
    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _default_mode())  # mkstemp makes 0600; give what open() would
        os.replace(handle.name, target)
    finally:
        Path(handle.name).unlink(missing_ok=True)
