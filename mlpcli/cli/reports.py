"""`mlp report` and `mlp compare`: pages and curves of runs."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    bars,
    check_out,
    checkpoint_option,
    data_dir_option,
    dataset_option,
    mirror_option,
    one_checkpoint,
    quiet_option,
    say,
    write_text,
)


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write: one self-contained page, images embedded.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@dataset_option
@data_dir_option
@mirror_option
@quiet_option
def report(
    checkpoint, checkpoint_option, out: Path, force: bool, dataset, data_dir, mirrors, quiet
):
    """A run's report as one HTML page: loss and accuracy curves (best epoch marked, the
    learning rate when scheduled), the test confusion matrix as a heatmap, precision and
    recall by class, the most confident mistakes, the first layer's weights as images, and
    the options. Needs matplotlib: pip install "mlpcli[plot]"."""
    from ..api import report_page
    from ..io.checkpoint import load_checkpoint

    loaded = load_checkpoint(one_checkpoint(checkpoint, checkpoint_option))
    check_out(out, may_replace=force)
    page = report_page(loaded, data_dir, list(mirrors) or None, bars(quiet), dataset)
    write_text(out, page, replace=force)
    click.echo(f"wrote {out} ({len(page.encode()) / 1024:.0f} KiB)")


@click.command()
@click.argument(
    "checkpoints", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the comparison as one HTML page, the curves drawn as SVG.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def compare(checkpoints: tuple[Path, ...], out: Path | None, force: bool):
    """Several runs side by side: a table (dataset, layers, optimizer, epochs, best epoch,
    validation and test accuracy, seconds) and their validation accuracy by epoch."""
    from ..api import describe
    from ..io.checkpoint import load_checkpoint
    from ..report.pages import COMPARISON_HEADER, comparison_page, comparison_rows

    if out is not None:
        if any(out.resolve() == path.resolve() for path in checkpoints):
            raise click.UsageError(f"--out {out} is one of the runs compared; give another name")
        check_out(out, may_replace=force)
    loaded = [load_checkpoint(path) for path in checkpoints]
    abouts = [describe(c) for c in loaded]
    paths = [str(p) for p in checkpoints]
    shown = comparison_rows(paths, abouts)
    widths = [max(len(h), *(len(r[i]) for r in shown)) for i, h in enumerate(COMPARISON_HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COMPARISON_HEADER, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in shown]
    histories = [c.meta["history"] for c in loaded]
    lines += ["", *_text_curves(paths, histories)]
    say("\n".join(lines))
    if out is not None:
        page = comparison_page(paths, abouts, histories)
        write_text(out, page, replace=force)
        click.echo(f"wrote {out}")


CURVE_ROWS = 12
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # one a run; more runs than letters go undrawn


def _text_curves(paths: list[str], histories: list[list[dict]]) -> list[str]:
    """Validation accuracy by epoch, one letter per run, in a chart of text."""
    series = [[r.get("validation_accuracy") for r in h] for h in histories]
    values = [v for s in series for v in s if v is not None]
    if not values:
        return ["(no validation figures to draw)"]
    low, high = min(values), max(values)
    span = (high - low) or 1e-3
    epochs = max(len(s) for s in series)
    grid = [[" "] * epochs for _ in range(CURVE_ROWS)]
    for letter, values_of_run in zip(LETTERS, series, strict=False):
        for epoch, value in enumerate(values_of_run):
            if value is not None:
                row = CURVE_ROWS - 1 - round((value - low) / span * (CURVE_ROWS - 1))
                grid[row][epoch] = letter if grid[row][epoch] in (" ", letter) else "*"
    lines = ["validation accuracy by epoch (* where runs meet)"]
    for i, row in enumerate(grid):
        value = high - span * i / (CURVE_ROWS - 1)
        lines.append(f"{100 * value:7.2f}% |" + "".join(row))
    lines.append(" " * 9 + "+" + "-" * epochs + f" epochs 1..{epochs}")
    lines += [f"  {letter}: {path}" for letter, path in zip(LETTERS, paths, strict=False)]
    if len(paths) > len(LETTERS):
        lines.append(
            f"  (the first {len(LETTERS)} of {len(paths)} runs are drawn; the table lists all)"
        )
    return lines
