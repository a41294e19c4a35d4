"""Make images a person might give `mlp predict` (scans, phone photos, typed digits, whole
numbers) and measure how many it reads right.

    python scripts/photo_images.py --checkpoint checkpoint.npz [--count 500] [--keep DIR]

Kinds (single digits come from MNIST's test set, typed ones from every installed font that
draws its own digits):
  scan          a digit in dark ink on white paper, 3-8x larger, off-centre, with paper noise,
                a few specks of dirt away from it, saved as JPEG at quality 50-85
  photo         a phone photo of paper (the light on each point times what it reflects):
                light falling off across the page (grey 150 to 200 and the like), often a
                shadow over part of it, sometimes ruled lines, pencil (light, thin strokes)
                or pen, a little blur, a tilt of a few degrees with a table around, JPEG
  typed         a digit in a font, random size and place, on slightly noisy paper
  hand-number   2 to 6 MNIST test digits side by side, a scan of them
  typed-number  2 to 6 digits typed in a font
  touching-number  2 to 4 MNIST test digits that touch or overlap (-3 to 0 px apart)
  tight         a scan cropped to the digit's ink, 2-6x larger: the strokes run off the frame
                on every side (paper grey 170 to 250)
  frame-filling a digit drawn small (7 to 12 px) filling its frame, scaled up 5-8x with
                hard pixel edges, as a small icon or a thumbnail enlarged
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mlpcli import load_checkpoint, load_mnist, predict_images
from mlpcli.api import read_number

FONT_PATTERNS = ("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/**/*.otf")
SYMBOL_FONTS = ("d050000l", "dingbat", "symbol", "standardsymbols")  # no digits in them


def ink_of(digit: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """28x28 MNIST digit -> its ink (0..1, 1 = ink) enlarged to `side` px."""
    big = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big, np.float32) / 255, 0, 1)


def place(ink: np.ndarray, rng: np.random.Generator, grow=(1.4, 2.2)) -> np.ndarray:
    """The ink on a larger page of nothing, at a random place."""
    h, w = ink.shape
    page = np.zeros((int(h * rng.uniform(*grow)), int(w * rng.uniform(*grow))), np.float32)
    y = int(rng.integers(0, page.shape[0] - h + 1))
    x = int(rng.integers(0, page.shape[1] - w + 1))
    page[y : y + h, x : x + w] = ink
    return page


def save_jpeg(gray: np.ndarray, path: Path, quality: int) -> Path:
    rgb = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    Image.fromarray(rgb).save(path.with_suffix(".jpg"), quality=quality)
    return path.with_suffix(".jpg")


def scan(ink_page: np.ndarray, rng: np.random.Generator, path: Path) -> Path:
    paper, pen = rng.uniform(200, 245), rng.uniform(15, 70)
    gray = paper + (pen - paper) * ink_page + rng.normal(0, rng.uniform(4, 12), ink_page.shape)
    for _ in range(int(rng.integers(2, 8))):  # specks of dirt, a few px wide, anywhere
        y, x = (int(rng.integers(0, s)) for s in gray.shape)
        r = int(rng.integers(1, 4))
        gray[max(0, y - r) : y + r, max(0, x - r) : x + r] = pen + rng.uniform(0, 60)
    return save_jpeg(gray, path, int(rng.integers(50, 86)))


def photo(ink_page: np.ndarray, rng: np.random.Generator, path: Path) -> Path:
    """A photo of paper: what the camera sees is the light falling on each point times how
    much of it the point reflects (paper about 0.9, pen 0.1-0.3, pencil 0.45-0.65)."""
    h, w = ink_page.shape
    if rng.random() < 0.4:  # pencil: light grey and thinner strokes
        ink_page = np.asarray(
            Image.fromarray(ink_page).filter(ImageFilter.MinFilter(3)), np.float32
        )
        pen = rng.uniform(0.45, 0.65)
    else:
        pen = rng.uniform(0.1, 0.3)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h + 1) / 2  # 0..1 across the page
    light = rng.uniform(150, 190) + rng.uniform(40, 65) * ramp  # e.g. grey 150 to 200
    if rng.random() < 0.6:  # a shadow: a darker half-plane over part of the page
        cut = rng.uniform(0.2, 0.8)
        side = (np.cos(angle + 1.3) * (xs / w - cut) + np.sin(angle + 1.3) * (ys / h - cut)) > 0
        light = light * np.where(side, rng.uniform(0.55, 0.8), 1.0)
    paper = np.full((h, w), rng.uniform(0.85, 0.95), np.float32)
    if rng.random() < 0.4:  # ruled paper: thin lines across it
        gap = int(h / rng.uniform(4, 7))
        paper -= ((ys.astype(int) % gap) < max(1, h // 150)) * rng.uniform(0.1, 0.25)
    gray = light * (paper + (pen - paper) * ink_page)
    gray += rng.normal(0, rng.uniform(2, 6), gray.shape)
    image = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    fill = int(rng.uniform(60, 120))  # what lies around the tilted page: a table
    image = image.rotate(rng.uniform(-5, 5), Image.Resampling.BILINEAR, fillcolor=fill)
    return save_jpeg(np.asarray(image, np.float32), path, int(rng.integers(60, 90)))


def font_files() -> list[str]:
    return sorted({f for pattern in FONT_PATTERNS for f in glob.glob(pattern, recursive=True)})


def digit_fonts(size: int) -> list:
    """Every installed font that draws digits of its own (not one fallback box for all),
    and is not a symbol or dingbat font."""
    fonts = []
    for file in font_files():
        if any(word in Path(file).name.lower() for word in SYMBOL_FONTS):
            continue  # their "digits" are ticks, crosses and arrows
        try:
            font = ImageFont.truetype(file, size)
        except OSError:
            continue
        if len({bytes(font.getmask(str(d))) for d in range(10)}) == 10:
            fonts.append(font)
    return fonts


def typed(text: str, font, rng: np.random.Generator, path: Path) -> Path:
    """`text` in `font`, dark on light, at a random place, lightly noisy, as PNG."""
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    width, height = right - left, bottom - top
    canvas = Image.new(
        "L", (int(width * rng.uniform(1.2, 1.8)) + 20, int(height * rng.uniform(1.3, 2)) + 20), 255
    )
    x = int(rng.integers(5, canvas.width - width - 4)) - left
    y = int(rng.integers(5, canvas.height - height - 4)) - top
    ImageDraw.Draw(canvas).text((x, y), text, fill=int(rng.integers(0, 60)), font=font)
    gray = np.asarray(canvas, np.float32) * rng.uniform(0.85, 1.0)
    gray += rng.normal(0, 4, gray.shape)
    Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def hand_number(digits: list[np.ndarray], rng: np.random.Generator, gaps=(3, 11)) -> np.ndarray:
    """MNIST digits side by side: each cropped to its ink, `gaps` px apart (negative: they
    overlap, and their strokes cross), a little vertical jitter, then scaled 3-6x: the ink of
    a handwritten number."""
    pieces = []
    for digit in digits:
        cols = np.flatnonzero(digit.max(axis=0) > 0)
        pieces.append(digit[:, cols.min() : cols.max() + 1])
    lead = int(rng.integers(3, 8))
    places, x = [], lead  # each piece's (shift down, x), in the order the draws were made
    for piece in pieces:
        places.append((int(rng.integers(0, 7)), x))
        x += piece.shape[1] + int(rng.integers(*gaps))
    width = max(p[1] + piece.shape[1] for p, piece in zip(places, pieces, strict=True))
    strip = np.zeros((34, max(x, width + 3)), np.uint8)
    for piece, (shift, left) in zip(pieces, places, strict=True):
        window = strip[shift : shift + 28, left : left + piece.shape[1]]
        np.maximum(window, piece, out=window)
    scale = rng.uniform(3, 6)
    size = (int(strip.shape[1] * scale), int(strip.shape[0] * scale))
    big = Image.fromarray(strip).resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big, np.float32) / 255, 0, 1)


def make(out: Path, count: int, seed: int, data_dir=None) -> dict[str, list]:
    """{kind: [(path, truth), ...]}: truth a digit, or the number's digits as text."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mnist = load_mnist(data_dir, progress=False)
    images, labels = mnist["test-images"], mnist["test-labels"]
    chosen = rng.choice(len(labels), size=count, replace=False)
    made: dict[str, list] = {"scan": [], "photo": [], "typed": []}
    made |= {"hand-number": [], "typed-number": [], "touching-number": []}
    made |= {"tight": [], "frame-filling": []}
    for n, i in enumerate(chosen):
        ink = ink_of(images[i], rng, int(28 * rng.uniform(3, 8)))
        made["scan"].append((scan(place(ink, rng), rng, out / f"scan-{n}"), int(labels[i])))
        ink = ink_of(images[i], rng, int(28 * rng.uniform(4, 10)))
        made["photo"].append((photo(place(ink, rng), rng, out / f"photo-{n}"), int(labels[i])))
    fonts = digit_fonts(120)
    for k, font in enumerate(fonts):
        for d in range(10):
            made["typed"].append((typed(str(d), font, rng, out / f"typed-{k}-{d}"), str(d)))
    for n in range(count // 2):
        picks = rng.choice(len(labels), size=int(rng.integers(2, 7)), replace=False)
        number = "".join(str(labels[i]) for i in picks)
        ink = hand_number([images[i] for i in picks], rng)
        path = scan(place(ink, rng, (1.15, 1.5)), rng, out / f"hand-number-{n}")
        made["hand-number"].append((path, number))
        number = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(2, 7))))
        font = fonts[int(rng.integers(0, len(fonts)))]
        made["typed-number"].append((typed(number, font, rng, out / f"typed-number-{n}"), number))
    for n in range(count // 2):  # made after the others, so that their images stay as they were
        picks = rng.choice(len(labels), size=int(rng.integers(2, 5)), replace=False)
        ink = hand_number([images[i] for i in picks], rng, gaps=(-3, 1))
        path = scan(place(ink, rng, (1.15, 1.5)), rng, out / f"touching-number-{n}")
        made["touching-number"].append((path, "".join(str(labels[i]) for i in picks)))
    for n in range(count):  # after the others too
        i = int(rng.integers(0, len(labels)))
        ink = tight_ink(images[i], rng.uniform(2, 6))
        made["tight"].append((scan(ink, rng, out / f"tight-{n}"), int(labels[i])))
        path = out / f"frame-filling-{n}.png"
        Image.fromarray(frame_filling(images[i], rng)).save(path)
        made["frame-filling"].append((path, int(labels[i])))
    return made


def tight_ink(digit: np.ndarray, scale: float) -> np.ndarray:
    """A 28x28 MNIST digit's ink (0..1) cropped to its box and enlarged `scale` times."""
    rows, cols = np.nonzero(digit)
    crop = Image.fromarray(digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    size = (round(crop.width * scale), round(crop.height * scale))
    return np.clip(np.asarray(crop.resize(size, Image.Resampling.BICUBIC), np.float32) / 255, 0, 1)


def frame_filling(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit drawn small, dark on white, filling its frame, then enlarged with hard
    pixel edges (uint8)."""
    side = int(rng.integers(7, 13))
    ink = Image.fromarray(tight_ink(digit, 1.0))
    small = ink.resize((side, side), Image.Resampling.BILINEAR)
    zoom = int(rng.integers(5, 9))
    big = np.asarray(small.resize((side * zoom, side * zoom), Image.Resampling.NEAREST))
    return (255 - np.clip(big, 0, 1) * 255).round().astype(np.uint8)


def measure(checkpoint_path: Path, made: dict[str, list]) -> dict[str, float]:
    checkpoint = load_checkpoint(checkpoint_path)
    accuracy = {}
    for kind, items in made.items():
        if kind.endswith("number"):
            right = [read_number(checkpoint, p).number == truth for p, truth in items]
        else:
            found = predict_images(checkpoint, [p for p, _ in items])
            right = [str(f.prediction) == str(t) for f, (_, t) in zip(found, items, strict=True)]
        accuracy[kind] = float(np.mean(right))
    return accuracy


def main() -> int:
    from person_images import run  # beside this script

    return run(__doc__.split("\n\n")[0], make, measure)


if __name__ == "__main__":
    sys.exit(main())
