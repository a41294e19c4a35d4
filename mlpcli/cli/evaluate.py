"""`mlp evaluate` and `mlp info`: a checkpoint's figures."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (
    bars,
    checkpoint_option,
    data_dir_option,
    dataset_option,
    mirror_option,
    one_checkpoint,
    pct,
    quiet_option,
    say,
)


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option(
    "--split",
    type=click.Choice(["test", "validation", "train"]),
    default="test",
    show_default=True,
    help="Which images to measure on; validation and train are rebuilt with the checkpoint's seed.",
)
@dataset_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@data_dir_option
@mirror_option
@quiet_option
def evaluate(
    checkpoint: Path | None,
    checkpoint_option: Path | None,
    split: str,
    dataset: str | None,
    as_json: bool,
    data_dir,
    mirrors,
    quiet: bool,
):
    """Accuracy, loss, confusion matrix and per-class figures of a checkpoint, given as
    CHECKPOINT or --checkpoint, as mlp predict takes it (default: checkpoint.npz), on the
    dataset it was trained on (or --dataset)."""
    from ..api import evaluate as evaluate_checkpoint
    from ..io.checkpoint import load_checkpoint

    checkpoint = one_checkpoint(checkpoint, checkpoint_option)
    loaded = load_checkpoint(checkpoint)
    report = evaluate_checkpoint(
        loaded, split, data_dir, list(mirrors) or None, bars(quiet), dataset
    )
    names = loaded.class_names
    if as_json:
        click.echo(json.dumps(report))
    else:
        say(_report_text(checkpoint, report, names))


def _report_text(checkpoint: Path, report: dict, names: list[str]) -> str:
    lines = [
        f"{checkpoint} on {report['dataset']}, {report['split']} split "
        f"({report['samples']} images)",
        f"accuracy {pct(report['accuracy'])}   loss {report['loss']:.4f}",
        "",
        "confusion matrix (rows: true class, columns: predicted class)",
        "      " + "".join(f"{k:>6d}" for k in range(len(report["confusion_matrix"]))),
    ]
    lines += [
        f"{k:>6d}" + "".join(f"{n:>6d}" for n in row)
        for k, row in enumerate(report["confusion_matrix"])
    ]
    lines += ["", " class  precision  recall      f1  support  name"]
    lines += [
        f"{c['class']:>6d}  {c['precision']:>9.4f}  {c['recall']:>6.4f}  {c['f1']:>6.4f}"
        f"  {c['support']:>7d}  {names[c['class']]}"
        for c in report["per_class"]
    ]
    return "\n".join(lines)


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(checkpoint: Path | None, checkpoint_option: Path | None, as_json: bool):
    """A checkpoint's run at a glance: dataset, layers, the options that differ from the
    defaults, epochs, best epoch, accuracies and losses, engine, when it was made."""
    from ..api import describe, typed
    from ..io.checkpoint import load_checkpoint

    path = one_checkpoint(checkpoint, checkpoint_option)
    run = describe(load_checkpoint(path))
    if as_json:
        click.echo(json.dumps(run))
        return
    shape = "x".join(map(str, run["image_shape"]))
    options = " ".join(f"--{k.replace('_', '-')} {typed(v)}" for k, v in run["options"].items())
    lines = [
        f"{path}: {run['dataset']} ({shape} images, {len(run['classes'])} classes: "
        f"{', '.join(run['classes'][:4])}{', ...' if len(run['classes']) > 4 else ''})",
        f"network    {','.join(map(str, run['layers']))} {run['activation']}, {run['loss']}",
        f"options    {options or '(the defaults)'}",
        f"epochs     {run['epochs']} ({run['ended']}), best epoch {run['best_epoch']}"
        + ("; can be resumed" if run["can_resume"] else ""),
    ]
    for split in ("train", "validation", "test"):
        if run[f"{split}_accuracy"] is not None:
            lines.append(
                f"{split:<11}accuracy {pct(run[f'{split}_accuracy'])}  "
                f"loss {run[f'{split}_loss']:.4f}"
            )
    lines.append(
        f"engine     {run['engine']}, created {run['created']}, mlpcli {run['mlpcli_version']}"
    )
    say("\n".join(lines))
