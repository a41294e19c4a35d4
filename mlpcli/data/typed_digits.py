"""Typed digits to learn from beside MNIST's handwriting.

A network that has seen only handwriting misreads many typed digits: a 1 with a flag and no
foot, as Roboto, Open Sans and Arial draw it, looks like a 7 in MNIST's hand (docs/predict.md
has the figures). Training adds digits typed in Pillow's built-in font (Aileron, so no font
need be installed, and the fonts people's images are measured on stay unseen), each at a
random size, slant, width, small turn and weight, and prepared as `mlp predict` prepares an
image (io.image.digit_input), so each reaches the network as a typed digit in a photo would.

Shapes: images (n, 28, 28) uint8, ink bright, as MNIST's; labels (n,) int64.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

SHARE = 0.08  # typed digits added per training image when the option is left to its default
STREAM = 4  # the run's fifth random stream (data/augment.py has the fourth)
FONT_SIZES = (28, 44)  # px; small is enough, as every digit is scaled into a 20 px box
SLANT = (-0.1, 0.3)  # horizontal shear: from leaning back a little to italic
WIDTH = (0.7, 1.25)  # horizontal scale: from condensed to extended
TURN = 4.0  # degrees either way: a page not quite straight
THIN_SHARE = 0.25  # share of digits eroded toward a light weight; the rest are regular or bold


def typed_share(share: float, train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """round(share * train_size) typed digits to go after a training split of `train_size`
    images (data.make_splits' `extra`), drawn from `seed` alone, so that a resumed run makes
    the same ones."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM,)))
    return typed_digits(round(share * train_size), rng)


def typed_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` typed digits, each of the ten about equally often, in a random order."""
    from ..io.image import FIELD

    labels = rng.permutation(np.arange(count) % 10)
    if not count:
        return np.zeros((0, FIELD, FIELD), np.uint8), labels
    fonts = _fonts()
    images = np.stack([_typed(int(digit), fonts, rng) for digit in labels])
    return images, labels


def _fonts() -> dict:
    """Pillow's built-in font at each of FONT_SIZES, by size."""
    from PIL import ImageFont

    fonts = {size: ImageFont.load_default(size) for size in range(*FONT_SIZES)}
    if not isinstance(fonts[FONT_SIZES[0]], ImageFont.FreeTypeFont):
        raise DataError(
            "typed digits need Pillow built with FreeType (its built-in font is then "
            "scalable); reinstall Pillow from its wheels, or train with --typed-digits 0"
        )
    return fonts


def _typed(digit: int, fonts: dict, rng: np.random.Generator) -> np.ndarray:
    """One typed digit as the network's 28x28 uint8 input."""
    from PIL import Image, ImageDraw, ImageFilter

    from ..io.image import digit_input

    size = int(rng.integers(*FONT_SIZES))
    page = Image.new("L", (2 * size, 2 * size), 0)
    bold = int(rng.integers(0, 1 + size // 20))  # px of outline: regular or bold
    draw = ImageDraw.Draw(page)
    draw.text((size // 2, size // 3), str(digit), fill=255, font=fonts[size], stroke_width=bold)
    page = page.transform(page.size, Image.Transform.AFFINE, _slant(rng, size), Image.BILINEAR)
    if rng.random() < THIN_SHARE:
        thinner = page.filter(ImageFilter.MinFilter(3))
        page = thinner if thinner.getbbox() else page
    ink = np.asarray(page, np.float32) / 255
    return np.round(digit_input(ink) * 255).astype(np.uint8)


def _slant(rng: np.random.Generator, size: int) -> tuple[float, ...]:
    """Pillow's affine data (output pixel -> source pixel) of a random width, slant and
    turn about the page's centre (size, size)."""
    turn = np.deg2rad(rng.uniform(-TURN, TURN))
    cos, sin = np.cos(turn), np.sin(turn)
    narrowing = np.array([[1 / rng.uniform(*WIDTH), rng.uniform(*SLANT)], [0.0, 1.0]])
    matrix = narrowing @ np.array([[cos, sin], [-sin, cos]])
    shift = size - matrix @ np.array([size, size])
    return (*matrix[0], shift[0], *matrix[1], shift[1])
