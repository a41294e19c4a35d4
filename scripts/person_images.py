"""Make digit images like a person would give, and measure `mlp predict` accuracy on them.

Kinds: MNIST test digits drawn dark on white paper, scaled up and moved off-centre (paper);
the same with a transparent background (rgba); on grey paper with noise, saved as JPEG
(jpeg); and digits rendered from the installed fonts (font).

    python scripts/person_images.py --checkpoint checkpoint.npz [--count 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mlpcli import load_checkpoint, load_mnist, predict_images

FONT_PATTERNS = ("/usr/share/fonts/**/*.ttf", "/Library/Fonts/*.ttf", "C:/Windows/Fonts/*.ttf")


def _enlarge(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """28x28 uint8 MNIST digit -> dark-on-white, 3 to 8 times larger."""
    side = int(28 * rng.uniform(3, 8))
    return Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BICUBIC)


def _off_centre(ink: Image.Image, rng: np.random.Generator, paper) -> Image.Image:
    """Paste on a larger canvas of colour `paper`, at a random place away from the centre."""
    width, height = (int(s * rng.uniform(1.3, 2.0)) for s in ink.size)
    canvas = Image.new(ink.mode, (width, height), paper)
    x = int(rng.integers(0, width - ink.width + 1))
    y = int(rng.integers(0, height - ink.height + 1))
    canvas.paste(ink, (x, y))
    return canvas


def paper_image(digit, rng, path: Path) -> Path:
    _off_centre(_enlarge(digit, rng), rng, 255).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def rgba_image(digit, rng, path: Path) -> Path:
    alpha = 255 - np.asarray(_enlarge(digit, rng))  # ink opaque, paper transparent
    rgba = np.zeros(alpha.shape + (4,), dtype=np.uint8)
    rgba[..., 2] = 90  # dark blue ink
    rgba[..., 3] = alpha
    _off_centre(Image.fromarray(rgba, "RGBA"), rng, (0, 0, 0, 0)).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def jpeg_image(digit, rng, path: Path) -> Path:
    ink = np.asarray(_off_centre(_enlarge(digit, rng), rng, 255), dtype=np.float32) / 255
    paper, pen = rng.uniform(190, 240), rng.uniform(20, 70)
    gray = pen + (paper - pen) * ink + rng.normal(0, 12, ink.shape)
    rgb = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    Image.fromarray(rgb).save(path.with_suffix(".jpg"), quality=60)
    return path.with_suffix(".jpg")


def font_files() -> list[str]:
    return sorted({f for pattern in FONT_PATTERNS for f in glob.glob(pattern, recursive=True)})


def draws_digits(font) -> bool:
    """Whether `font` has glyphs of its own for 0-9: a font without Latin digits draws one
    and the same fallback box for each, which no person would give as a digit."""
    shapes = {bytes(font.getmask(str(d))) for d in range(10)}
    return len(shapes) == 10


def font_image(digit_label: int, font, rng, path: Path) -> Path:
    size = (int(rng.integers(150, 300)), int(rng.integers(150, 300)))
    canvas = Image.new("L", size, 255)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit_label), font=font)
    x = rng.integers(0, max(1, size[0] - (right - left))) - left
    y = rng.integers(0, max(1, size[1] - (bottom - top))) - top
    draw.text((int(x), int(y)), str(digit_label), fill=0, font=font)
    canvas.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def make_images(out_dir: Path, count: int, seed: int, data_dir=None) -> dict[str, list]:
    """{kind: [(path, true label), ...]} for the MNIST-based kinds and the font kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mnist = load_mnist(data_dir, progress=False)
    chosen = rng.choice(len(mnist["test-labels"]), size=count, replace=False)
    made: dict[str, list] = {}
    for kind, make in (("paper", paper_image), ("rgba", rgba_image), ("jpeg", jpeg_image)):
        made[kind] = [
            (
                make(mnist["test-images"][i], rng, out_dir / f"{kind}-{n}"),
                int(mnist["test-labels"][i]),
            )
            for n, i in enumerate(chosen)
        ]
    fonts = [ImageFont.truetype(f, 160) for f in font_files()]
    fonts = [font for font in fonts if draws_digits(font)]
    fonts = fonts or [ImageFont.load_default(size=160)]
    made["font"] = [
        (font_image(d, font, rng, out_dir / f"font-{k}-{d}"), d)
        for k, font in enumerate(fonts)
        for d in range(10)
    ]
    return made


def measure(checkpoint_path: Path, made: dict[str, list]) -> dict[str, float]:
    checkpoint = load_checkpoint(checkpoint_path)
    accuracy = {}
    for kind, items in made.items():
        predictions = predict_images(checkpoint, [path for path, _ in items])
        accuracy[kind] = float(
            np.mean(
                [p.prediction == label for p, (_, label) in zip(predictions, items, strict=True)]
            )
        )
    return accuracy


def run(description: str, make, measure) -> int:
    """The command line of this script and of photo_images.py: make the images of each kind
    with make(folder, count, seed, data_dir), then print what measure(checkpoint, made)
    found."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoint.npz"))
    parser.add_argument("--count", type=int, default=500, help="MNIST test digits per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the images in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        made = make(args.keep or Path(scratch), args.count, args.seed, args.data_dir)
        accuracy = measure(args.checkpoint, made)
    print(f"{'kind':<16}{'images':>8}{'read right':>12}")
    for kind, value in accuracy.items():
        print(f"{kind:<16}{len(made[kind]):>8}{100 * value:>11.1f}%")
    return 0


def main() -> int:
    return run(__doc__.split("\n\n")[0], make_images, measure)


if __name__ == "__main__":
    sys.exit(main())
