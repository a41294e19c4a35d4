"""The options of training (their defaults from config.TrainConfig, the one source of them) and
--config, the TOML file whose keys become a command's defaults."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click

from .. import presets
from ..config import TrainConfig
from ..data.augment import parse_kinds
from ..io.files import is_regular_file


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

    if path == "list":
        _list_presets()
        ctx.exit(0)
    if not Path(path).exists() and "/" not in path and "\\" not in path:
        found = presets.path(path)
        if found is None:
            shipped = ", ".join(presets.names()) or "none here"
            raise refuse(
                f"no config file {path} and no shipped config of that name ({shipped}); "
                "give a .toml file's path, or `--config list`"
            )
        path = str(found)
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


def _list_presets() -> None:
    """The shipped configs, a line each: the name `--config` takes and what it trains."""
    shipped = presets.names()
    width = max(map(len, shipped), default=0)
    for name in shipped:
        click.echo(f"{name:<{width}}  {presets.summary(name, 78 - width)}")
    if shipped:
        click.echo(f"(in {presets.folder()}; `mlp train --config NAME` trains with one)")
    else:
        click.echo("no shipped configs are installed here")


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
            "Gaussian, as Simard et al. 2003), affine,elastic, or none. See `mlp "
            "augment-preview`.",
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


def config_option(help: str):
    """--config FILE.toml or a shipped config's NAME: its keys become the command's defaults
    (see _load_config); `--config list` lists the shipped ones."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        metavar="FILE|NAME",
        callback=_load_config,
        is_eager=True,
        expose_value=False,
        help=help,
    )
