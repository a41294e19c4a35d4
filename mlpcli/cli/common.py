"""What several commands share: the common options, messages and output checks. Light to
import: `mlp predict` loads it, and not the training code."""

from __future__ import annotations

import sys
from pathlib import Path

import click

DEFAULT_CHECKPOINT = "checkpoint.npz"


# Characters a terminal acts on rather than shows: C0 controls but the newline (escape
# sequences move the cursor, recolour the screen or retitle the window), DEL and C1
# controls, and the bidirectional overrides that reorder what follows them.
_CONTROLS = [*range(0x0A), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]
_VISIBLE = {c: f"\\x{c:02x}" for c in _CONTROLS}
_VISIBLE |= {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def visible(text: str) -> str:
    """`text` as a terminal should show it: its control characters written out as escapes
    (a class name from a file could otherwise recolour or retitle the user's terminal)."""
    return text.translate(_VISIBLE)


def say(text: str) -> None:
    """A result on stdout, as text for a person (JSON output escapes its controls itself)."""
    click.echo(visible(text))


def echo_err(message: str) -> None:
    click.echo(visible(message), err=True)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where MNIST is cached (or a folder that already holds the four files). "
    "[default: $MLP_DATA_DIR, else $XDG_CACHE_HOME/mlpcli or ~/.cache/mlpcli]",
)
mirror_option = click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    metavar="URL",
    help="Base URL to download the dataset's files from, instead of its public mirrors; "
    "repeat for fallbacks. [default: $MLP_<DATASET>_MIRROR (MLP_MNIST_MIRROR, "
    "MLP_FASHION_MNIST_MIRROR), else the public mirrors]",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")


def bars(quiet: bool) -> bool:
    """Progress bars only on a terminal: in a log file their frames would be noise (the
    per-epoch lines are still written)."""
    return not quiet and sys.stderr.isatty()


def check_out(out: Path, may_replace: bool, flag: str = "--out") -> None:
    """UsageError unless the file `flag` names (the checkpoint, a log) can be written at
    `out` when training needs it: checked before training, so that no run is trained only to
    be lost. Only a regular file is ever replaced or added to, and only when `may_replace`."""
    import tempfile

    example = "model.npz" if flag == "--out" else "run.csv"
    if not str(out) or out.name in ("", ".", ".."):
        raise click.UsageError(f"{flag} {str(out)!r} is not a file name; give one, e.g. {example}")
    if not out.parent.is_dir():
        raise click.UsageError(f"the folder of {flag} {out} does not exist; create it first")
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise click.UsageError(
            f"cannot write in the folder of {flag} {out} ({exc.strerror}); choose another {flag}"
        ) from None
    if out.is_symlink():
        raise click.UsageError(
            f"{flag} {out} is a symbolic link; give the file it points to, or another name "
            "(mlpcli writes only regular files)"
        )
    if out.exists() and not out.is_file():
        raise click.UsageError(
            f"{flag} {out} is not a regular file (a folder, FIFO or device); mlpcli writes "
            "only regular files, even with --force"
        )
    if out.exists() and not may_replace:
        raise click.UsageError(
            f"{out} already exists; choose another file with {flag}, or replace it with --force"
        )


dataset_option = click.option(
    "--dataset",
    default=None,
    help="Measure on this dataset (as mlp train takes it) instead of the one trained on, say "
    "where a folder the run was trained on has moved; its images and classes must fit the "
    "network.",
)


def pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


checkpoint_option = click.option(
    "--checkpoint",
    "checkpoint_option",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Trained weights to use. [default: {DEFAULT_CHECKPOINT}]",
)


def write_text(path: Path, text: str, replace: bool) -> None:
    """Write `text` atomically; a file that appeared meanwhile is kept (a free name taken)."""
    from ..io.files import atomic_write

    try:
        with atomic_write(path, replace) as written:
            written.file.write(text.encode("utf-8"))
    except OSError as exc:
        raise click.ClickException(f"cannot write {path} ({exc.strerror})") from None


def one_checkpoint(checkpoint: Path | None, checkpoint_option: Path | None) -> Path:
    """CHECKPOINT or --checkpoint (not both), else checkpoint.npz."""
    if checkpoint and checkpoint_option:
        raise click.UsageError("give the checkpoint once: as CHECKPOINT or as --checkpoint")
    return checkpoint or checkpoint_option or Path(DEFAULT_CHECKPOINT)
