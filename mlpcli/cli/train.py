"""`mlp train` and `mlp augment-preview`."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import click

from ..config import TrainConfig
from ..data.typed_digits import SHARE as TYPED_SHARE
from ..engines import ENGINE_CHOICES
from ..errors import ConfigError
from ..nn.activations import ACTIVATIONS
from ..nn.initializers import INITIALIZERS
from ..nn.losses import LOSSES
from ..nn.optim import BASE_LEARNING_RATES, LARGEST_SCALED_BATCH, OPTIMIZERS, REFERENCE_BATCH
from ..nn.schedules import SCHEDULES
from ..training import MONITORS
from .common import (
    DEFAULT_CHECKPOINT,
    bars,
    check_out,
    data_dir_option,
    echo_err,
    mirror_option,
    pct,
    quiet_option,
)
from .options import LayersType, augment_options, config_option, train_option


@click.command()
@config_option(
    "TOML file of options (keys are the option names, e.g. batch-size = 32), or the name of "
    "a shipped one (fast99, record, ...: `--config list` lists them); options given on the "
    "command line win."
)
@train_option(
    "--dataset",
    click.STRING,
    "mnist, fashion-mnist, or a folder holding the four IDX files (train-images-idx3-ubyte, "
    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not; "
    "an optional classes.txt names the classes, one a line).",
)
@train_option(
    "--layers",
    LayersType(),
    "Layer sizes from input to output: the images' pixels in (784 for 28x28), one output "
    "per class. [default: pixels,256,classes of the dataset]",
    show_default=False,
)
@train_option("--activation", click.Choice(sorted(ACTIVATIONS)), "Activation of the hidden layers.")
@train_option("--leaky-slope", click.FloatRange(0, 1), "Slope of leaky-relu for negative inputs.")
@train_option(
    "--init",
    click.Choice(sorted(INITIALIZERS)),
    "Weight init scheme; 'zeros' shows why symmetric weights cannot learn. "
    "[default: he-normal for relu/leaky-relu, glorot-uniform otherwise]",
    show_default=False,
)
@train_option(
    "--init-scale", click.FloatRange(0, min_open=True), "Standard deviation of the 'normal' init."
)
@train_option(
    "--loss",
    click.Choice(sorted(LOSSES)),
    "cross-entropy on softmax, mse on the "
    "raw outputs, or mse-softmax on the softmax probabilities.",
)
@train_option(
    "--lr",
    click.FloatRange(0, min_open=True),
    "Learning rate: the step size (the schedule's starting rate). Default: the optimizer's "
    f"own ({', '.join(f'{name} {rate:g}' for name, rate in BASE_LEARNING_RATES.items())} at "
    f"--batch-size {REFERENCE_BATCH}), scaled with the batch size: in proportion for SGD, by "
    f"its square root for Adam, up to batch {LARGEST_SCALED_BATCH} "
    "(docs/training.md#learning-rate).",
    show_default=False,
)
@train_option(
    "--epochs",
    click.IntRange(1),
    "Most passes over the training data (early stopping may end sooner). Default: 15, or "
    "150 at --batch-size 0, whose epoch is a single step.",
    show_default=False,
)
@train_option(
    "--batch-size", click.IntRange(0), "Samples per update: 1 = per-sample SGD, 0 = the full batch."
)
@train_option(
    "--patience",
    click.IntRange(0),
    "Stop after this many epochs without improvement (see --monitor); 0 = never.",
)
@train_option(
    "--min-delta",
    click.FloatRange(0),
    "How much the watched figure must improve to count (see --monitor).",
)
@train_option(
    "--monitor",
    click.Choice(MONITORS),
    "What early stopping and the saved best epoch watch on the validation split: its loss, "
    "or its accuracy (--min-delta then counts in accuracy, 0.001 = 0.1%).",
)
@train_option(
    "--validation-size",
    click.IntRange(0),
    "Training images held out (by the seeded shuffle) for early stopping.",
)
@train_option(
    "--seed",
    click.IntRange(0),
    "Seed of the split, the init, the shuffles and dropout: same seed, same checkpoint.",
)
@train_option(
    "--optimizer",
    click.Choice(list(OPTIMIZERS)),
    "sgd: theta -= lr * gradient; momentum and nesterov add a velocity (--momentum); adam "
    "and adamw scale each step by running moments of the gradient (--beta1, --beta2, --eps). "
    "Each takes the steps of torch.optim's.",
)
@train_option("--momentum", click.FloatRange(0, 1, max_open=True), "Momentum (momentum, nesterov).")
@train_option(
    "--beta1", click.FloatRange(0, 1, max_open=True), "Decay of Adam's mean of the gradient."
)
@train_option(
    "--beta2", click.FloatRange(0, 1, max_open=True), "Decay of Adam's mean squared gradient."
)
@train_option(
    "--eps", click.FloatRange(0, min_open=True), "Adam's term that keeps /sqrt(.) finite."
)
@train_option(
    "--weight-decay",
    click.FloatRange(0),
    "L2 penalty added to every gradient as wd * theta (biases too, as torch.optim does); "
    "adamw instead shrinks the weights by lr * wd each step (decoupled).",
)
@train_option(
    "--max-norm",
    click.FloatRange(0),
    "After each step, scale every unit's incoming weights back to this L2 norm if longer; 0 = off.",
)
@train_option(
    "--dropout",
    click.FloatRange(0, 1, max_open=True),
    "Probability of dropping each hidden unit in training (inverted dropout).",
)
@train_option(
    "--input-dropout",
    click.FloatRange(0, 1, max_open=True),
    "Probability of dropping each input pixel in training.",
)
@train_option(
    "--schedule",
    click.Choice(SCHEDULES),
    "Learning rate by epoch: constant; step (times --lr-factor every --lr-step-epochs); "
    "cosine (down to --min-lr by the last epoch); plateau (times --lr-factor when the "
    "validation loss has not improved for more than --lr-patience epochs).",
)
@train_option(
    "--warmup-epochs",
    click.IntRange(0),
    "Ramp the rate up linearly over this many first epochs, before the schedule.",
)
@train_option("--lr-step-epochs", click.IntRange(1), "Epochs between the step schedule's cuts.")
@train_option(
    "--lr-factor",
    click.FloatRange(0, 1, min_open=True, max_open=True),
    "What the step and plateau schedules multiply the rate by.",
)
@train_option(
    "--lr-patience",
    click.IntRange(0),
    "Epochs without improvement the plateau schedule tolerates; below --patience.",
)
@train_option("--min-lr", click.FloatRange(0), "The lowest rate of cosine and plateau.")
@augment_options
@train_option(
    "--typed-digits",
    click.FloatRange(0, 1),
    "Typed digits to learn from beside the handwriting, as a share of the training images: "
    "0-9 in Pillow's built-in font at random sizes, slants, widths and weights, drawn from "
    "--seed; validation and test stay the dataset's own. Without them the network reads many "
    "fonts' 1 as a 7. 0 = none (as the literature's MNIST figures were made). "
    f"[default: {TYPED_SHARE} for MNIST, 0 for other datasets]",
    show_default=False,
)
@train_option(
    "--engine",
    click.Choice(ENGINE_CHOICES),
    "How the steps are computed: compiled (C that multiplies by the ink alone: "
    "cross-entropy, no input dropout), numpy (fused NumPy: plain SGD only), reference (the "
    "readable NumPy of mlpcli/nn: everything); auto: the fastest that takes the options, "
    "saying why it passed the others over. All take the same steps, to float rounding.",
)
@train_option(
    "--threads",
    click.IntRange(0),
    "Threads to train on; 0 = every core this process may use (its affinity mask), at most "
    "OMP_NUM_THREADS when that is set. One thread is often faster on a busy machine.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint file to write. [default: checkpoint.npz; with --resume, the resumed file]",
)
@click.option("--force", is_flag=True, help="Replace --out (and --log) if it exists.")
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a row per epoch to this file as training goes: epoch, train and validation "
    "loss and accuracy, learning rate, seconds. CSV, or JSON Lines if it ends in .jsonl; "
    "with --resume, rows are appended.",
)
@click.option(
    "--resume",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Continue the run this checkpoint saved, from its last completed epoch, with its "
    "options; --epochs is the total. Only --epochs, --patience, --engine and --threads may "
    "change.",
)
@data_dir_option
@mirror_option
@quiet_option
@click.pass_context
def train(
    ctx,
    out: Path | None,
    force: bool,
    log_path: Path | None,
    resume: Path | None,
    data_dir,
    mirrors,
    quiet: bool,
    **options,
):
    """Train an MLP on MNIST and save the best epoch's weights.

    Training stops early when the validation loss (or accuracy: --monitor) has not improved
    for --patience epochs, and the weights of the best epoch are saved, with what --resume
    needs to go on. Ctrl-C or SIGTERM stops training and saves the best weights so far.

    \b
    Examples:
      mlp train --optimizer adam --lr 0.001 --dropout 0.2
      mlp train --config plain    # a shipped config (--config list: all of them)
      mlp train --resume checkpoint.npz --epochs 20
    """
    from ..api import resume_config
    from ..api import train as train_model
    from ..io.checkpoint import load_checkpoint, save_checkpoint

    resumed = None
    if resume is not None:
        resumed = load_checkpoint(resume)
        given = {
            name: value
            for name, value in options.items()
            if ctx.get_parameter_source(name)
            in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.DEFAULT_MAP)
        }
        try:
            config = resume_config(resumed, given)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        out = resume if out is None else out
    else:
        config = TrainConfig(**{f.name: options[f.name] for f in fields(TrainConfig)})
        try:
            config.validate()
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    out = Path(DEFAULT_CHECKPOINT) if out is None else out
    replacing_the_resumed = resume is not None and out.resolve() == resume.resolve()
    check_out(out, may_replace=force or replacing_the_resumed)
    if not quiet:
        if resume is None and options["lr"] is None:
            batch = "the full batch" if config.batch_size == 0 else f"batch {config.batch_size}"
            echo_err(f"learning rate {config.lr:.3g}: {config.optimizer}'s default at {batch}")
    if config.resolved_init == "zeros":
        echo_err(
            "warning: --init zeros gives every hidden unit the same weights, so they all "
            "get the same updates and stay identical: this network cannot learn"
        )
    if log_path is not None:
        if log_path.resolve() == out.resolve():
            raise click.UsageError(f"--log {log_path} is --out too; give the log another name")
        check_out(log_path, may_replace=force or resume is not None, flag="--log")
    log = _open_log(log_path, append=resume is not None)

    def on_epoch(record: dict) -> None:
        nonlocal log
        if log is not None:
            try:
                log.write(record)
            except OSError as exc:  # a log is worth less than the run: it goes on without
                echo_err(
                    f"warning: cannot write the log {log_path} ({exc.strerror or exc}); "
                    "training goes on without it"
                )
                _close_quietly(log)
                log = None
        if not quiet:
            echo_err(_epoch_line(record))

    try:
        result = train_model(
            config,
            data_dir,
            list(mirrors) or None,
            bars(quiet),
            on_epoch,
            resumed,
            on_engine=None if quiet else _engine_teller(config),
            on_note=lambda text: echo_err(f"note: {text}"),
        )
    except ConfigError as exc:  # the layers do not fit the dataset, known once it is loaded
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:  # while loading data or measuring the final figures
        echo_err("interrupted; nothing was saved")
        sys.exit(_interrupted_exit())
    finally:
        if log is not None:
            _close_quietly(log)
    meta = result.meta
    if result.epochs_run == 0:
        echo_err("interrupted before an epoch finished; nothing was saved")
        sys.exit(_interrupted_exit())
    written = save_checkpoint(
        out, result.model, meta, result.resume, replace=force or replacing_the_resumed
    )
    if written != out:
        echo_err(f"warning: {out} appeared while training ran; saved to {written} instead")
    ran = len(meta["history"])
    why = (
        "interrupted"
        if result.interrupted
        else "stopped early"
        if meta["stopped_early"]
        else "finished"
    )
    seconds = sum(record["seconds"] for record in meta["history"])
    click.echo(
        f"{why} after {ran} epoch{'s' * (ran != 1)} ({seconds:.1f}s of training); "
        f"best epoch {meta['best_epoch']}: "
        f"validation accuracy {pct(meta.get('validation_accuracy'))}, "
        f"test accuracy {pct(meta['test_accuracy'])}"
    )
    click.echo(f"saved {written}")
    from ..api import did_not_learn

    warning = did_not_learn(config, meta)
    if warning:
        echo_err(f"warning: {warning}")
    if result.interrupted:
        echo_err("interrupted: the best weights so far were saved")
        sys.exit(_interrupted_exit())


@click.command("augment-preview")
@config_option(
    "A training config (TOML, or a shipped one's name) whose distortions to show; its other "
    "keys are ignored."
)
@augment_options
@train_option("--seed", click.IntRange(0), "Seed of the split and of the distortions.")
@train_option("--validation-size", click.IntRange(0), "As for mlp train.")
@train_option("--dataset", click.STRING, "As for mlp train.")
@click.option(
    "--images", type=click.IntRange(1, 100), default=8, show_default=True, help="Rows: images."
)
@click.option(
    "--variants",
    type=click.IntRange(1, 100),
    default=7,
    show_default=True,
    help="Distortions of each image, beside it.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("augment-preview.png"),
    show_default=True,
    help="PNG grid to write: each row an original training image, then its distortions.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--show", is_flag=True, help="Print the first row as text instead of a PNG.")
@data_dir_option
@mirror_option
@quiet_option
def augment_preview(images, variants, out, force, show, data_dir, mirrors, quiet, **options):
    """See what --augment feeds the network: training images beside distortions of them,
    drawn as `mlp train` draws them with the same options.

    \b
    Examples:
      mlp augment-preview --augment affine,elastic
      mlp augment-preview --config fast99 --show
    """
    from ..api import augment_preview as preview
    from ..io.image import render_text, write_grid_png

    config = TrainConfig(**options)
    try:
        config.validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if not config.augmentation():
        raise click.UsageError("no distortion chosen; give --augment affine, elastic or both")
    if not show:
        check_out(out, may_replace=force)
    grid = preview(
        config, 1 if show else images, variants, data_dir, list(mirrors) or None, bars(quiet)
    )
    if show:
        for column, image in enumerate(grid[0]):
            click.echo("original:" if column == 0 else f"distortion {column}:")
            click.echo(render_text(image / 255))
        return
    write_grid_png(out, grid, zoom=2)
    click.echo(f"wrote {out}: {images} training images (left), {variants} distortions each")


def _open_log(path: Path | None, append: bool):
    """The EpochLog of --log (check_out has checked that it can be written), or None."""
    if path is None:
        return None
    from ..report.log import EpochLog

    return EpochLog(path, append)


def _close_quietly(log) -> None:
    """Close a log whose last rows may not reach the disk: the run matters more."""
    try:
        log.close()
    except OSError:
        pass


def _interrupted_exit() -> int:
    """The shell's code for a process stopped by a signal: 128 + its number (130 for Ctrl-C,
    143 for SIGTERM)."""
    from .. import interrupts

    return 128 + interrupts.stopped_by()


def _engine_teller(config: TrainConfig):
    """What says on stderr, once `auto` has timed the engines, which won, by how much, and
    why it could not use the others."""
    from ..engines.choice import fallback_reasons

    passed_over = fallback_reasons(config.step_options())

    def tell(choice) -> None:
        why = "".join(f"; not {name}: {reason}" for name, reason in passed_over.items())
        echo_err(f"engine: {choice.summary()}{why}")

    return tell


def _epoch_line(record: dict) -> str:
    line = (
        f"epoch {record['epoch']:3d}  lr {record['learning_rate']:.3g}  "
        f"train loss {record['train_loss']:.4f} acc {pct(record['train_accuracy'])}"
    )
    if "validation_loss" in record:
        line += (
            f"  validation loss {record['validation_loss']:.4f} "
            f"acc {pct(record['validation_accuracy'])}"
        )
    return line + f"  {record['seconds']:.1f}s" + ("  *best" if record.get("improved") else "")
