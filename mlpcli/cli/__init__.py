"""The `mlp` command: parse options, make one library call, print the result.

Progress (bars, per-epoch lines, warnings) goes to stderr; results go to stdout.
Library errors exit 1 with a one-line message; usage errors exit 2, as click does.

Each command lives in a module of its own, imported only when it is run (or listed by
--help), as click's documentation shows for large programs: `mlp predict` starts without
loading the training code.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__
from ..errors import MlpError

COMMANDS = {  # name: module in this package, and the command's function in it
    "train": ("train", "train"),
    "augment-preview": ("train", "augment_preview"),
    "evaluate": ("evaluate", "evaluate"),
    "info": ("evaluate", "info"),
    "report": ("reports", "report"),
    "compare": ("reports", "compare"),
    "serve": ("serve", "serve"),
    "predict": ("predict", "predict"),
}


class Cli(click.Group):
    """Loads each command when it is asked for, and turns the library's errors into one-line
    messages with exit code 1."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, function = COMMANDS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)

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


def main() -> None:
    cli(prog_name="mlp")
