"""`mlp predict`: the class of each image, or the row of digits in it. Imports only what
predicting needs, for a quick start."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import DEFAULT_CHECKPOINT, checkpoint_option, echo_err, pct, say


@click.command()
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
    from ..errors import ImageError
    from ..io.checkpoint import load_checkpoint
    from ..io.image import image_files
    from ..prediction import predict_images, read_number

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
            echo_err(f"Error: {exc}")
            failed += 1
    if failed:
        raise click.exceptions.Exit(1)  # each failure has had its line already


def _say_prediction(p, loaded, as_json: bool, show: bool) -> None:
    from ..io.image import render_text

    if not p.image.has_digit:
        what = "digit" if loaded.preparation == "digits" else "object"
        echo_err(
            f"warning: {p.file} holds no {what} (nothing stands out from the paper); "
            "the guess below means nothing"
        )
    if as_json:
        click.echo(json.dumps(p.record()))
    else:
        ranked = sorted(range(len(p.probabilities)), key=lambda k: -p.probabilities[k])
        names = loaded.class_names
        others = ", ".join(f"{names[k]} ({pct(p.probabilities[k])})" for k in ranked[1:3])
        say(f"{p.file}: {p.label} ({pct(p.probabilities[p.prediction])}); next {others}")
    if show:
        click.echo(render_text(p.image.pixels))


def _say_number(reading, as_json: bool, show: bool) -> None:
    from ..io.image import render_text

    if not reading.digits:
        echo_err(f"warning: {reading.file} holds no digits (nothing stands out from the paper)")
    if as_json:
        click.echo(json.dumps(reading.record()))
    else:
        sure = " ".join(pct(d.probabilities[d.prediction]) for d in reading.digits)
        say(f"{reading.file}: {reading.number or '(none)'} (digits {sure})")
    if show:
        for digit in reading.digits:
            say(f"{digit.label}:\n{render_text(digit.image.pixels)}")
