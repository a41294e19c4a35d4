"""python -m mlpcli: the same as the `mlp` command."""

from .cli import cli

cli(prog_name="mlp")
