"""The `mlp` command: parse options, make one library call, print the result.

Progress (bars, per-epoch lines, warnings) goes to stderr; results go to stdout.
Library errors exit 1 with a one-line message; usage errors exit 2, as click does.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

import click

from . import __version__
from .api import TrainConfig
from .data.augment import parse_kinds
from .engines import ENGINE_CHOICES
from .errors import ConfigError, MlpError
from .io.files import is_regular_file
from .nn.activations import ACTIVATIONS
from .nn.initializers import INITIALIZERS
from .nn.losses import LOSSES
from .nn.optim import OPTIMIZERS
from .nn.schedules import SCHEDULES
from .training import MONITORS

DEFAULT_CHECKPOINT = "checkpoint.npz"


class LayersType(click.ParamType):
    """'784,64,10' (or a TOML list) -> [784, 64, 10]."""

    name = "SIZES"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            parts = value
        else:
            parts = str(value).split(",")
        try:
            sizes = [int(str(p).strip()) for p in parts]
        except ValueError:
            self.fail(
                f"{value!r} is not a comma-separated list of sizes, e.g. 784,64,10", param, ctx
            )
        if len(sizes) < 2 or min(sizes) < 1:
            self.fail(
                f"{value!r} needs at least an input and an output size, all positive, "
                "e.g. 784,64,10",
                param,
                ctx,
            )
        return sizes


class AugmentType(click.ParamType):
    """'affine,elastic' (or a TOML list of them, or none) -> 'affine,elastic', checked."""

    name = "KINDS"

    def convert(self, value, param, ctx):
        try:
            kinds = parse_kinds(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return ",".join(kinds)


# Options a config file may not set: they decide what is replaced or resumed, which a
# shared file should never do on its own.
NOT_IN_CONFIGS = ("force", "resume")
TRAIN_ONLY = {f.name for f in fields(TrainConfig)}


def _load_config(ctx: click.Context, param: click.Parameter, path: str | None) -> str | None:
    """Read a TOML config into click's default_map, so flags on the command line still win."""
    if path is None:
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    def refuse(why: str) -> click.BadParameter:
        return click.BadParameter(why, ctx, param)

    if not is_regular_file(path):
        raise refuse(f"{path} is not a regular file (a FIFO or device would never end)")
    try:
        with open(path, "rb") as file:
            table = tomllib.loads(file.read().decode("utf-8"))
    except OSError as exc:
        raise refuse(f"cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise refuse(f"{path} is not UTF-8 text, which TOML must be") from None
    except tomllib.TOMLDecodeError as exc:
        raise refuse(f"{path} is not valid TOML ({exc})") from None
    except RecursionError:
        raise refuse(f"{path} is nested too deeply to be a config") from None
    options = {p.name: p for p in ctx.command.params if p.name not in ("config", "help")}
    defaults = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in NOT_IN_CONFIGS:
            raise refuse(f"{key} cannot be set in {path}; give --{key} on the command line")
        if name not in options and name in TRAIN_ONLY and ctx.command.name != "train":
            continue  # a training config read for its distortions (augment-preview)
        if name not in options or isinstance(value, dict):
            known = ", ".join(
                sorted(n.replace("_", "-") for n in options if n not in NOT_IN_CONFIGS)
            )
            raise refuse(f"unknown key {key!r} in {path}; known keys: {known}")
        wrong = _wrong_toml_type(options[name], value)
        if wrong:
            raise refuse(f"{key} = {value!r} in {path}: {wrong}")
        try:
            defaults[name] = options[name].type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise refuse(f"{key} = {value!r} in {path}: {exc.message}") from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def _wrong_toml_type(param: click.Parameter, value) -> str | None:
    """Why a TOML value cannot stand for the option, or None. click would coerce 1.9 to an
    integer 1 and true to 1: a config file says what it means or is refused."""
    kind = param.type
    if isinstance(value, bool) and not (
        isinstance(kind, click.types.BoolParamType) or param.is_flag
    ):
        return "expected a number or text, not true/false"
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        wanted = int if isinstance(kind, click.types.IntParamType) else (int, float)
        if not isinstance(value, wanted):
            return "expected a whole number" if wanted is int else "expected a number"
    elif isinstance(kind, click.Choice) and not isinstance(value, str):
        return f"expected one of {', '.join(map(str, kind.choices))}, in quotes"
    elif isinstance(value, list) and not isinstance(kind, (LayersType, AugmentType)):
        return "expected a single value, not a list"
    return None


DEFAULTS = TrainConfig()


def train_option(flag: str, type, help: str, show_default=True):
    """An option of `mlp train` whose default comes from TrainConfig, the one source of them."""
    default = getattr(DEFAULTS, flag.lstrip("-").replace("-", "_"))
    if isinstance(default, list):
        default = ",".join(map(str, default))  # as it would be typed
    return click.option(flag, type=type, default=default, show_default=show_default, help=help)


def augment_options(command):
    """The options of the distortions, shared by `train` and `augment-preview`."""
    options = [
        train_option(
            "--augment",
            AugmentType(),
            "Distort the training images anew each epoch, drawn from --seed: affine (rotation, "
            "scale, shear, translation), elastic (a random displacement field smoothed by a "
            "Gaussian, as Simard et al. 2003), or affine,elastic. See `mlp augment-preview`. "
            "[default: none]",
            show_default=False,
        ),
        train_option(
            "--rotation", click.FloatRange(0, 180), "affine: most degrees of rotation, either way."
        ),
        train_option(
            "--scale",
            click.FloatRange(0, 1, max_open=True),
            "affine: most relative change of size: 0.1 scales by 0.9 to 1.1.",
        ),
        train_option(
            "--shear",
            click.FloatRange(0, 90, max_open=True),
            "affine: most degrees of horizontal shear.",
        ),
        train_option(
            "--translate", click.FloatRange(0), "affine: most pixels of shift, in x and in y."
        ),
        train_option(
            "--elastic-alpha",
            click.FloatRange(0),
            "elastic: the strength of the smoothed field, in pixels.",
        ),
        train_option(
            "--elastic-sigma",
            click.FloatRange(0, min_open=True),
            "elastic: the width in pixels of the Gaussian that smooths the field; smaller is more "
            "local and wilder.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


class Cli(click.Group):
    """Turns the library's errors into one-line messages with exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MlpError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(
    cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="mlpcli")
def cli():
    """Train, evaluate and run a multilayer perceptron on MNIST, written in plain NumPy.

    \b
    Typical session:
      mlp train                     # downloads MNIST once, writes checkpoint.npz
      mlp evaluate checkpoint.npz   # accuracy, confusion matrix, per-class figures
      mlp predict my-digit.png      # the digit in your own image
    """


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


def config_option(help: str):
    """--config FILE.toml: its keys become the command's defaults (see _load_config)."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        callback=_load_config,
        is_eager=True,
        expose_value=False,
        help=help,
    )


@cli.command()
@config_option(
    "TOML file of options (keys are the option names, e.g. batch-size = 32); "
    "options given on the command line win."
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
    "Learning rate: the step size (the schedule's starting rate). Adam and AdamW want about "
    "0.001, SGD about 0.1.",
)
@train_option(
    "--epochs",
    click.IntRange(1),
    "Most passes over the training data (early stopping may end sooner).",
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
      mlp train --optimizer momentum --schedule cosine --epochs 40 --patience 0
      mlp train --resume checkpoint.npz --epochs 50
    """
    from .api import resume_config
    from .api import train as train_model
    from .io.checkpoint import load_checkpoint, save_checkpoint

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
    _check_out(out, may_replace=force or replacing_the_resumed)
    if not quiet:
        _say_engine(config)
    if config.resolved_init == "zeros":
        _echo_err(
            "warning: --init zeros gives every hidden unit the same weights, so they all "
            "get the same updates and stay identical: this network cannot learn"
        )
    if log_path is not None and resume is None and log_path.exists() and not force:
        raise click.UsageError(f"{log_path} exists; give --force to replace it, or another --log")
    log = _open_log(log_path, append=resume is not None)

    def on_epoch(record: dict) -> None:
        if log is not None:
            log.write(record)
        if not quiet:
            _echo_err(_epoch_line(record))

    try:
        result = train_model(
            config, data_dir, list(mirrors) or None, _bars(quiet), on_epoch, resumed
        )
    except ConfigError as exc:  # the layers do not fit the dataset, known once it is loaded
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:  # while loading data or measuring the final figures
        _echo_err("interrupted; nothing was saved")
        sys.exit(_interrupted_exit())
    finally:
        if log is not None:
            log.close()
    meta = result.meta
    if result.epochs_run == 0:
        _echo_err("interrupted before an epoch finished; nothing was saved")
        sys.exit(_interrupted_exit())
    written = save_checkpoint(
        out, result.model, meta, result.resume, replace=force or replacing_the_resumed
    )
    if written != out:
        _echo_err(f"warning: {out} appeared while training ran; saved to {written} instead")
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
        f"validation accuracy {_pct(meta.get('validation_accuracy'))}, "
        f"test accuracy {_pct(meta['test_accuracy'])}"
    )
    click.echo(f"saved {written}")
    from .api import did_not_learn

    warning = did_not_learn(config, meta)
    if warning:
        _echo_err(f"warning: {warning}")
    if result.interrupted:
        _echo_err("interrupted: the best weights so far were saved")
        sys.exit(_interrupted_exit())


@cli.command("augment-preview")
@config_option("A training config (TOML) whose distortions to show; its other keys are ignored.")
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
      mlp augment-preview --config configs/fast99.toml --show
    """
    from .api import augment_preview as preview
    from .io.image import render_text, write_grid_png

    config = TrainConfig(**options)
    try:
        config.validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if not config.augmentation():
        raise click.UsageError("no distortion chosen; give --augment affine, elastic or both")
    if not show:
        _check_out(out, may_replace=force)
    grid = preview(
        config, 1 if show else images, variants, data_dir, list(mirrors) or None, _bars(quiet)
    )
    if show:
        for column, image in enumerate(grid[0]):
            click.echo("original:" if column == 0 else f"distortion {column}:")
            click.echo(render_text(image / 255))
        return
    write_grid_png(out, grid, zoom=2)
    click.echo(f"wrote {out}: {images} training images (left), {variants} distortions each")


def _open_log(path: Path | None, append: bool):
    """The EpochLog of --log, or None; a folder that cannot take it is a usage error."""
    if path is None:
        return None
    from .report.log import EpochLog

    try:
        return EpochLog(path, append)
    except OSError as exc:
        raise click.UsageError(f"cannot write the log {path} ({exc.strerror})") from None


def _bars(quiet: bool) -> bool:
    """Progress bars only on a terminal: in a log file their frames would be noise (the
    per-epoch lines are still written)."""
    return not quiet and sys.stderr.isatty()


def _interrupted_exit() -> int:
    """The shell's code for a process stopped by a signal: 128 + its number (130 for Ctrl-C,
    143 for SIGTERM)."""
    from . import interrupts

    return 128 + interrupts.stopped_by()


def _check_out(out: Path, may_replace: bool) -> None:
    """UsageError unless the checkpoint can be written at `out` when training ends: checked
    before training, so that no run is trained only to be lost. Only a regular file is ever
    replaced, and only when `may_replace`."""
    import tempfile

    if not str(out) or out.name in ("", ".", ".."):
        raise click.UsageError(f"--out {str(out)!r} is not a file name; give one, e.g. model.npz")
    if not out.parent.is_dir():
        raise click.UsageError(f"the folder of --out {out} does not exist; create it first")
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise click.UsageError(
            f"cannot write in the folder of --out {out} ({exc.strerror}); choose another --out"
        ) from None
    if out.is_symlink():
        raise click.UsageError(
            f"--out {out} is a symbolic link; give the file it points to, or another name "
            "(mlpcli replaces only regular files)"
        )
    if out.exists() and not out.is_file():
        raise click.UsageError(
            f"--out {out} is not a regular file (a folder, FIFO or device); mlpcli replaces "
            "only regular files, even with --force"
        )
    if out.exists() and not may_replace:
        raise click.UsageError(
            f"{out} already exists; choose another file with --out, or replace it with --force"
        )


def _say_engine(config: TrainConfig) -> None:
    """Say on stderr which engine trains, and why `auto` passed over the faster ones."""
    from .engines.choice import choose_engine, fallback_reasons

    if config.engine != "auto":
        return
    step = config.step_options()
    passed_over = fallback_reasons(step)
    if passed_over:
        why = "; ".join(f"{name}: {reason}" for name, reason in passed_over.items())
        _echo_err(f"engine: {choose_engine('auto', step).name} ({why})")


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _epoch_line(record: dict) -> str:
    line = (
        f"epoch {record['epoch']:3d}  lr {record['learning_rate']:.3g}  "
        f"train loss {record['train_loss']:.4f} acc {_pct(record['train_accuracy'])}"
    )
    if "validation_loss" in record:
        line += (
            f"  validation loss {record['validation_loss']:.4f} "
            f"acc {_pct(record['validation_accuracy'])}"
        )
    return line + f"  {record['seconds']:.1f}s" + ("  *best" if record.get("improved") else "")


checkpoint_option = click.option(
    "--checkpoint",
    "checkpoint_option",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Trained weights to use. [default: {DEFAULT_CHECKPOINT}]",
)


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option(
    "--split",
    type=click.Choice(["test", "validation", "train"]),
    default="test",
    show_default=True,
    help="Which images to measure on; validation and train are rebuilt with the checkpoint's seed.",
)
@click.option(
    "--dataset",
    default=None,
    help="Measure on this dataset (as mlp train takes it) instead of the one trained on; "
    "its images and classes must fit the network.",
)
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
    from .api import evaluate as evaluate_checkpoint
    from .io.checkpoint import load_checkpoint

    checkpoint = _one_checkpoint(checkpoint, checkpoint_option)
    loaded = load_checkpoint(checkpoint)
    report = evaluate_checkpoint(
        loaded, split, data_dir, list(mirrors) or None, _bars(quiet), dataset
    )
    names = loaded.class_names
    click.echo(json.dumps(report) if as_json else _report_text(checkpoint, report, names))


def _report_text(checkpoint: Path, report: dict, names: list[str]) -> str:
    lines = [
        f"{checkpoint} on {report['dataset']}, {report['split']} split "
        f"({report['samples']} images)",
        f"accuracy {_pct(report['accuracy'])}   loss {report['loss']:.4f}",
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


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(checkpoint: Path | None, checkpoint_option: Path | None, as_json: bool):
    """A checkpoint's run at a glance: dataset, layers, the options that differ from the
    defaults, epochs, best epoch, accuracies and losses, engine, when it was made."""
    from .api import describe, typed
    from .io.checkpoint import load_checkpoint

    path = _one_checkpoint(checkpoint, checkpoint_option)
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
                f"{split:<11}accuracy {_pct(run[f'{split}_accuracy'])}  "
                f"loss {run[f'{split}_loss']:.4f}"
            )
    lines.append(
        f"engine     {run['engine']}, created {run['created']}, mlpcli {run['mlpcli_version']}"
    )
    click.echo("\n".join(lines))


@cli.command()
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
@data_dir_option
@mirror_option
@quiet_option
def report(checkpoint, checkpoint_option, out: Path, force: bool, data_dir, mirrors, quiet):
    """A run's report as one HTML page: loss and accuracy curves (best epoch marked, the
    learning rate when scheduled), the test confusion matrix as a heatmap, precision and
    recall by class, the most confident mistakes, the first layer's weights as images, and
    the options. Needs matplotlib: pip install "mlpcli[plot]"."""
    from .api import report_page
    from .io.checkpoint import load_checkpoint

    loaded = load_checkpoint(_one_checkpoint(checkpoint, checkpoint_option))
    _check_out(out, may_replace=force)
    page = report_page(loaded, data_dir, list(mirrors) or None, _bars(quiet))
    _write_text(out, page, replace=force)
    click.echo(f"wrote {out} ({len(page.encode()) / 1024:.0f} KiB)")


@cli.command()
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
    from .api import describe
    from .io.checkpoint import load_checkpoint
    from .report.pages import COMPARISON_HEADER, comparison_page, comparison_rows

    if out is not None:
        _check_out(out, may_replace=force)
    loaded = [load_checkpoint(path) for path in checkpoints]
    abouts = [describe(c) for c in loaded]
    paths = [str(p) for p in checkpoints]
    shown = comparison_rows(paths, abouts)
    widths = [max(len(h), *(len(r[i]) for r in shown)) for i, h in enumerate(COMPARISON_HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COMPARISON_HEADER, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in shown]
    histories = [c.meta.get("history", []) for c in loaded]
    lines += ["", *_text_curves(paths, histories)]
    click.echo("\n".join(lines))
    if out is not None:
        page = comparison_page(paths, abouts, histories)
        _write_text(out, page, replace=force)
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
    lines += [
        f"  {letter}: {path}"
        for letter, path in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", paths, strict=False)
    ]
    return lines


def _write_text(path: Path, text: str, replace: bool) -> None:
    """Write `text` atomically; a file that appeared meanwhile is kept (a free name taken)."""
    from .io.files import atomic_write

    try:
        with atomic_write(path, replace) as written:
            written.file.write(text.encode("utf-8"))
    except OSError as exc:
        raise click.ClickException(f"cannot write {path} ({exc.strerror})") from None


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=False)
@checkpoint_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on; 0 takes a free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on: 127.0.0.1 is this machine alone; 0.0.0.0 opens it to the network.",
)
def serve(checkpoint, checkpoint_option, port: int, host: str):
    """A local page for drawing a digit with the mouse or a finger: as you draw, it shows the
    image the network sees and the probability of each class. POST /predict with a PNG or
    JPEG body answers with the JSON of `mlp predict --json`, so the page is a small API too.
    Ctrl-C stops it."""
    from .io.checkpoint import load_checkpoint
    from .web.server import PredictServer

    loaded = load_checkpoint(_one_checkpoint(checkpoint, checkpoint_option))
    try:
        server = PredictServer(loaded, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
        ) from None
    click.echo(f"serving {server.url} (Ctrl-C to stop)", err=False)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        _echo_err("stopped")
    finally:
        server.server_close()


def _one_checkpoint(checkpoint: Path | None, checkpoint_option: Path | None) -> Path:
    """CHECKPOINT or --checkpoint (not both), else checkpoint.npz."""
    if checkpoint and checkpoint_option:
        raise click.UsageError("give the checkpoint once: as CHECKPOINT or as --checkpoint")
    return checkpoint or checkpoint_option or Path(DEFAULT_CHECKPOINT)


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@checkpoint_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object per image and line: {"file", "prediction", "label", '
    "\"probabilities\"}: the class's index, its name, and each class's probability.",
)
@click.option("--show", is_flag=True, help="Draw the input the network saw, as text.")
@click.option(
    "--number",
    is_flag=True,
    help="Read a row of digits (a number) in each image: prints the number and each "
    "digit's probability; --json gives each digit's probabilities and box. An image with no "
    'digits prints "(none)" ("number": "" in JSON) and a warning, and exits 0.',
)
def predict(
    images: tuple[Path, ...],
    checkpoint_option: Path | None,
    as_json: bool,
    show: bool,
    number: bool,
):
    """The digit (or the class, for other datasets) in each image (PNG, JPEG, ... any size,
    dark ink on light paper or the reverse), with its probability and the next two
    candidates; with --number, the row of digits in it. IMAGES may be files, folders (their
    images, in name order) or quoted globs such as 'scans/*.png'."""
    from .api import predict_images, read_number
    from .errors import ImageError
    from .io.checkpoint import load_checkpoint
    from .io.image import image_files

    files = image_files(images)
    loaded, failed = load_checkpoint(checkpoint_option or Path(DEFAULT_CHECKPOINT)), 0
    if number and loaded.preparation != "digits":
        raise click.UsageError(
            f"--number reads rows of digits; this checkpoint classifies {loaded.dataset}"
        )
    for image in files:  # one at a time: a bad file costs its own answer, not the others'
        try:
            if number:
                _say_number(read_number(loaded, image), as_json, show)
            else:
                (p,) = predict_images(loaded, [image])
                _say_prediction(p, loaded, as_json, show)
        except ImageError as exc:
            _echo_err(f"Error: {exc}")
            failed += 1
    if failed:
        raise click.exceptions.Exit(1)  # each failure has had its line already


def _say_prediction(p, loaded, as_json: bool, show: bool) -> None:
    from .io.image import render_text

    if not p.image.has_digit:
        what = "digit" if loaded.preparation == "digits" else "object"
        _echo_err(
            f"warning: {p.file} holds no {what} (nothing stands out from the paper); "
            "the guess below means nothing"
        )
    if as_json:
        click.echo(json.dumps(p.record()))
    else:
        ranked = sorted(range(len(p.probabilities)), key=lambda k: -p.probabilities[k])
        names = loaded.class_names
        others = ", ".join(f"{names[k]} ({_pct(p.probabilities[k])})" for k in ranked[1:3])
        click.echo(f"{p.file}: {p.label} ({_pct(p.probabilities[p.prediction])}); next {others}")
    if show:
        click.echo(render_text(p.image.pixels))


def _say_number(reading, as_json: bool, show: bool) -> None:
    from .io.image import render_text

    if not reading.digits:
        _echo_err(f"warning: {reading.file} holds no digits (nothing stands out from the paper)")
    if as_json:
        click.echo(json.dumps(reading.record()))
    else:
        sure = " ".join(_pct(d.probabilities[d.prediction]) for d in reading.digits)
        click.echo(f"{reading.file}: {reading.number or '(none)'} (digits {sure})")
    if show:
        for digit in reading.digits:
            click.echo(f"{digit.label}:\n{render_text(digit.image.pixels)}")


def main() -> None:
    cli(prog_name="mlp")
