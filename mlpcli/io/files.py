"""Atomic file writing: a temporary file beside the target, fsync, then rename over it.

A crash, a kill or Ctrl-C at any moment leaves either the old file or the new one, never half
of one; the temporary file is removed on every error path.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _kept_mode(target: Path) -> int:
    """The permission bits of `target` if it is there, else what open() would give."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return _default_mode()


@dataclass
class AtomicFile:
    file: BinaryIO  # write here
    path: Path  # where the bytes are once the block ends: the target, or a free name beside it


@contextlib.contextmanager
def atomic_write(target: Path, replace: bool = True) -> Iterator[AtomicFile]:
    """Yields a binary file; on normal exit its bytes replace `target` in one rename. With
    `replace` False an existing file is never replaced, even one that appeared while the
    bytes were written: they go to the first free name of target, target-1, target-2 ...
    (AtomicFile.path says which), claimed in one step that fails if the name is taken.

    Raises OSError when the folder is not writable, before anything else happens.
    """
    target = Path(target)
    import tempfile  # here: a tenth of `mlp predict`'s imports, and it writes nothing

    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    written = AtomicFile(handle, target)
    try:
        with handle:
            yield written
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600: give what open() would, or the mode of the file replaced
        os.chmod(handle.name, _kept_mode(target) if replace else _default_mode())
        if replace:
            os.replace(handle.name, target)
        else:
            written.path = _place_without_replacing(Path(handle.name), target)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def _free_names(target: Path) -> Iterator[Path]:
    yield target
    for number in range(1, 1000):
        yield target.with_name(f"{target.stem}-{number}{target.suffix}")


def _place_without_replacing(source: Path, target: Path) -> Path:
    """Link `source` at the first free name for `target`: a hard link fails, rather than
    replace, when the name exists, with no moment between looking and placing. Where the
    file system has no hard links, the name is claimed by creating it exclusively first."""
    for name in _free_names(target):
        try:
            os.link(source, name)
            return name
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some network and FAT file systems)
            try:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                continue
            os.replace(source, name)
            return name
    raise FileExistsError(f"{target} and the 999 names after it are all taken")


STALE_PART_SECONDS = 3600  # older temporary files were left by a killed process


def remove_stale_temporaries(target: Path) -> None:
    """Delete the temporary files of atomic_write(target) that a killed process left behind
    (kill -9 runs no clean-up); a younger one may belong to a write still running in another
    process."""
    for part in Path(target).parent.glob(f".{Path(target).name}.*.part"):
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()


def is_regular_file(path: str | Path) -> bool:
    """True for a regular file (after symlinks), or for a missing one, which open() reports;
    False for a FIFO, device or folder, which reading would block on or fail."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False
