"""Any image a person gives -> an input like the ones the network's dataset was made of.

MNIST digits are white ink on black, scaled so the longer side of the ink is 20 px (keeping the
aspect ratio, anti-aliased) and placed in a 28x28 field with the centre of mass at the centre.
Fashion-MNIST's products were trimmed, scaled so that the longer side fills the 28x28 image,
centred, and negated (bright on black). `prepare_image` repeats the steps of the network's
dataset on a photo, a scan or a drawing, so that the network sees what it saw in training.
"""

from __future__ import annotations

import glob
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError
from .files import is_regular_file

# How `mlp predict` turns a photo into the network's input: "digits" as MNIST was made (the
# ink fitted into 20x20, centred by mass in 28x28), "objects" as Fashion-MNIST was (trimmed,
# the longer side fitted to the image, centred)
PREPARATIONS = ("digits", "objects")
FIELD = 28  # output side, px
BOX = 20  # longer side of the ink after scaling, px
MIN_CONTRAST = 0.1  # ink that differs from the paper by less than this is not a digit
INK_FLOOR = 0.05  # ink fainter than this share of the darkest stroke counts as paper
NOISE_STDS = 6.0  # ink must stand out from the paper by this many noise standard deviations
SHADED = 0.08  # the border's change of shade above which the paper's shading is subtracted
WORKING_SIDE = 512  # px: larger photos are shrunk to this before the ink is looked for
THIN_LINES = 150  # in a photo, lines thinner than its shorter side / this are not strokes
SPECK_SHARE = 0.1  # a mark under this share of the largest one's area may be a speck...
SPECK_REACH = 0.1  # ...and is one when further than this share of the digit's size from it
STROKE = 1.9  # px: a typical MNIST stroke's width in its BOX px box (docs/predict.md)
STROKE_SPREAD = 1.5  # strokes within this factor of STROKE are left as they are


# The decoders Pillow may use: plain raster formats decoded in-process. Others are refused
# before any plugin sees the file: EPS and PostScript hand it to Ghostscript, a program.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
# The most pixels decoded: a 5000x5000 photo of a digit, whose 8-bit decode takes 25 MB (RGBA
# 100 MB); Pillow's own bomb limit, 89 megapixels, lets a PNG cost gigabytes as floats.
MAX_PIXELS = 25_000_000


def _sniffed_format(path: str | Path | bytes) -> str | None:
    """The name of the format Pillow would take `path` (or these bytes) for, from its first
    bytes alone (each plugin's own accept() test of the magic bytes; nothing is decoded), or
    None."""
    from PIL import Image

    Image.init()
    if isinstance(path, bytes):
        prefix = path[:64]
    else:
        try:
            with open(path, "rb") as file:
                prefix = file.read(64)
        except OSError:
            return None
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        try:
            if accept is not None and accept(prefix):
                return name
        except Exception:  # a plugin's test of a prefix too short for it: not that format
            continue
    return None


# What a folder's images are named: the formats above (PPM's kin, PGM and PBM, included)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
IMAGE_SUFFIXES += (".ppm", ".pgm", ".pbm")


def image_files(given: Iterable[str | Path]) -> list[Path]:
    """The image files `given` names: a file as it is, a folder as its images (by suffix, in
    name order, not recursing), and a glob the shell did not expand (quoted, or on Windows)
    as its matches. ImageError for a folder with no image and a glob that matches nothing."""
    files = []
    for entry in map(Path, given):
        if entry.is_dir():
            inside = sorted(p for p in entry.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise ImageError(f"{entry} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            files += inside
        elif not entry.exists() and any(c in str(entry) for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(entry)))
            if not matches:
                raise ImageError(f"no file matches {entry}")
            files += image_files(matches)
        else:
            files.append(entry)
    return files


@dataclass
class PreparedImage:
    pixels: np.ndarray  # (28, 28) float32 in [0, 1], ink bright, like MNIST pixel / 255
    has_digit: bool  # False for a blank image: there was no ink to find


def read_grayscale(path: str | Path | bytes) -> np.ndarray:
    """Image file (or its bytes) -> (h, w) float32 in [0, 1], 0 = black. Transparency is
    composited over white paper; the first frame of an animation is used; EXIF rotation is
    applied."""
    from PIL import Image, UnidentifiedImageError

    source = path
    if isinstance(path, bytes):
        source, path = io.BytesIO(path), "the image"
    elif not is_regular_file(path):
        raise ImageError(f"{path} is not a regular file (a FIFO, device or folder); give an image")
    formats = _plugins_for(source.getvalue() if isinstance(source, io.BytesIO) else path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as image:
                _refuse_large(path, image.size)  # from the header: nothing is decoded yet
                image.seek(0)
                return _to_gray(_upright(image))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        other = _sniffed_format(source.getvalue() if isinstance(source, io.BytesIO) else path)
        if other:
            raise ImageError(
                f"{path} is in the {other} format, which mlpcli does not open (some formats run "
                f"programs to decode); convert it to one of {', '.join(IMAGE_FORMATS)}"
            ) from None
        raise ImageError(
            f"{path} is not an image mlpcli reads ({', '.join(IMAGE_FORMATS)})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{path} is too large to be a digit drawing (over "
            f"{Image.MAX_IMAGE_PIXELS} pixels); scale it down first"
        ) from None
    except Exception as exc:  # a decoder's error on a hostile or odd file, whatever its type
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ImageError(f"{path} cannot be decoded ({reason}); is it truncated?") from None


# Each format's first bytes, so that only its decoder is imported (all seven cost as much
# as the rest of `mlp predict`'s work); a file that matches none is offered to all seven.
MAGIC = (
    (b"\x89PNG", "PNG", "PngImagePlugin"),
    (b"\xff\xd8\xff", "JPEG", "JpegImagePlugin"),
    (b"GIF8", "GIF", "GifImagePlugin"),
    (b"BM", "BMP", "BmpImagePlugin"),
    (b"II*\x00", "TIFF", "TiffImagePlugin"),
    (b"MM\x00*", "TIFF", "TiffImagePlugin"),
    (b"RIFF", "WEBP", "WebPImagePlugin"),
)
PLUGINS = {name: plugin for _, name, plugin in MAGIC} | {"PPM": "PpmImagePlugin"}


def _plugins_for(path: str | Path | bytes) -> tuple[str, ...]:
    """The formats Image.open may try on `path`, their plugins imported (which registers
    them: open() would otherwise load all forty of Pillow's, EPS's among them): the one its
    first bytes name, or all of IMAGE_FORMATS."""
    import importlib

    try:
        if isinstance(path, bytes):
            prefix = path[:8]
        else:
            with open(path, "rb") as file:
                prefix = file.read(8)
    except OSError:
        prefix = b""  # open() below says what is wrong
    formats = [name for magic, name, _ in MAGIC if prefix.startswith(magic)][:1]
    formats = formats or list(IMAGE_FORMATS)
    for name in formats:
        importlib.import_module(f"PIL.{PLUGINS[name]}")
    return tuple(formats)


def _upright(image):
    """The image turned as its EXIF orientation says (a phone's photo held sideways)."""
    if image.getexif().get(0x0112, 1) in (1, None):  # ImageOps costs a tenth of a predict
        return image
    from PIL import ImageOps

    return ImageOps.exif_transpose(image)


def _refuse_large(path: str | Path, size: tuple[int, int]) -> None:
    """ImageError for an image of more than MAX_PIXELS: decoding it would take memory for
    nothing, as a digit is scaled to 20 px."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{path} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} "
            "megapixels mlpcli decodes for a digit; scale it down first"
        )


def _to_gray(image) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        return np.clip(values / top, 0, 1)
    if "A" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def _median(values: np.ndarray) -> float:
    """The median of a 1-D array. np.median would do, but it imports numpy.ma, a tenth of
    `mlp predict`'s start-up time."""
    middle = len(values) // 2
    ordered = np.partition(values, [middle - 1, middle] if len(values) > 1 else [0])
    if len(values) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def ink_bright(gray: np.ndarray, marks: bool = True, cut: bool = True) -> np.ndarray:
    """Flip dark-ink-on-light-paper to MNIST's polarity, subtract the paper, drop what is
    paper noise, and stretch the ink to [0, 1]. The border pixels tell the paper's shade
    (their median) and its noise (a robust std from their median absolute deviation).
    With `marks` (a digit, not an object that may fill the frame): the paper's slow
    shading is subtracted too when the border shows some (io/photo.py), and only the
    digit's marks are kept (_digit_marks): no specks, shadows or page edges. A digit
    cropped so tight that its strokes run off the frame is first framed in its own paper;
    without `cut` its ink comes back in that frame, so that a stroke the edge cut is not
    taken for a wider one (stroke_width)."""
    from .photo import shrunk

    # a photo's digit ends up 20 px tall: a 12-megapixel one need not be looked at whole
    gray = shrunk(gray, WORKING_SIDE)  # the caller's boxes scale by shape ratios
    paper = _paper_of_tight_crop(gray) if marks else None
    if paper is None:
        return _ink_bright(gray, marks)
    margin = max(2, max(gray.shape) // 4)
    ink = _ink_bright(_framed(gray, paper, margin), marks)
    return ink[margin:-margin, margin:-margin] if cut else ink


def _ink_bright(gray: np.ndarray, marks: bool) -> np.ndarray:
    """ink_bright on an image of at most WORKING_SIDE whose border is paper, or the edge of a
    photographed page, or a shadow: nothing of the digit."""
    from .photo import dark_marks

    border = _border(gray)
    paper = _median(border)
    shaded = marks and _shading(gray) > SHADED
    if shaded:
        light_paper = dark_marks(gray)
    elif marks:
        light_paper = _light_paper(gray)
    else:  # an object may fill most of the frame: its border, not its median, is the paper
        light_paper = _light_border(gray, paper)
    if light_paper:
        gray, border, paper = 1 - gray, 1 - border, 1 - paper
    if shaded:  # uneven light or a shadow: the paper is not one shade
        gray, border = _without_shading(gray, light_paper)
        paper = 0.0
    noise = 1.4826 * _median(np.abs(border - paper))
    ink = gray - paper
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        return np.zeros_like(gray)
    # Gaussian noise passes 6 std in about one pixel in a billion: what remains is ink.
    threshold = max(NOISE_STDS * noise, INK_FLOOR * contrast)
    if shaded:  # what is left of shadows is no noise: split ink from paper
        from .photo import otsu

        threshold = max(threshold, 0.5 * otsu(np.clip(ink / contrast, 0, 1)) * contrast)
    ink[ink < threshold] = 0
    # in a photo, lines thinner than a stroke (a ruled page's) are no part of a digit
    if marks:
        thin = max(1, round(min(ink.shape) / THIN_LINES)) if shaded else 0
        ink = _digit_marks(ink, thin)
    return np.clip(ink / contrast, 0, 1)


def _paper_of_tight_crop(gray: np.ndarray) -> np.ndarray | None:
    """The paper's pixels when `gray` is a digit cropped tight, its strokes running off the
    frame, else None. The marks are Otsu's split of the shades that holds less of the
    border. Such a crop is told from a photo whose border shows a table, a page's edge, a
    shadow or ruled lines (marks on the border too) by all of these, the cheap ones first:
    - no mark is wider than a third of the longer side, or half of it when the marks touch
      all four sides (a stroke; a shadow or a table is a broad area; a mark on the border
      is taken to go on past it);
    - the paper is one shade along the border (a photo's light falls off across it);
    - nothing on the paper is further from its shade, the other way, than the marks are (a
      dark digit on a page whose shadow holds most of the border);
    - every large mark touches the frame, lines thinner than a photo's stroke (ruled paper)
      left out (a photo's digit lies inside it)."""
    from .photo import grown, otsu, square

    low, high = float(gray.min()), float(gray.max())
    if high - low < MIN_CONTRAST:
        return None
    scaled = (gray - low) / (high - low)
    dark = scaled < otsu(scaled)
    mask = dark if (~_border(dark)).mean() >= 0.5 else ~dark  # a tie: ink on light paper
    sides = sum(bool(side.any()) for side in (mask[0], mask[-1], mask[:, 0], mask[:, -1]))
    if not sides:
        return None
    width = max(3, max(gray.shape) // (2 if sides == 4 else 3)) | 1
    if square(mask.astype(np.uint8), width, np.minimum).any():
        return None
    # the paper away from the strokes by a stroke's width, so that their soft edges are not
    # taken for the paper's noise or shading
    reach = round(stroke_width(np.pad(mask, 1).astype(np.float32)))  # the frame cuts strokes
    away = ~grown(mask, max(1, reach))
    if away.sum() < 16:
        away = ~mask
    if _shading(np.where(away, gray, np.nan)) > SHADED:
        return None
    paper, ink = _median(gray[away]), _median(gray[mask])
    beyond = (gray[away] - paper) * np.sign(paper - ink)  # > 0: away from the ink's shade
    if (beyond > 0.5 * abs(paper - ink)).mean() > 0.001:
        return None
    thin = round(min(gray.shape) / THIN_LINES)  # 0 in a small image: no line is thinner
    _, areas, on_frame = _components(~grown(~mask, thin) if thin else mask)
    if not len(areas) or (~on_frame & (areas >= SPECK_SHARE * areas.max())).any():
        return None
    return gray[away]


def _framed(gray: np.ndarray, paper: np.ndarray, margin: int) -> np.ndarray:
    """`gray` with a frame `margin` px wide of its own paper's pixels around it (repeated in
    their order), so that the frame's shade and noise are the paper's."""
    h, w = gray.shape
    framed = np.resize(paper, (h + 2 * margin, w + 2 * margin)).astype(np.float32)
    framed[margin:-margin, margin:-margin] = gray
    return framed


def _shading(gray: np.ndarray) -> float:
    """How far the paper's shade changes along the image's edge: the spread of the
    medians of 16 stretches of the border (medians, so that noise does not count). NaN
    pixels (not paper) are left out."""
    stretches = [s[~np.isnan(s)] for s in np.array_split(_border(gray), 16)]
    medians = [_median(s) for s in stretches if len(s)]
    return max(medians) - min(medians) if medians else 0.0


def _light_border(gray: np.ndarray, paper: float) -> bool:
    """Whether the paper, the border's median shade `paper`, is lighter than the ink: it lies
    nearer the brightest pixels than the darkest. (Fashion-MNIST's bright shirts fill most
    of their dark frame, so the picture's median is the object, not the paper.)"""
    darkest, brightest = float(gray.min()), float(gray.max())
    return paper - darkest > brightest - paper


def _light_paper(gray: np.ndarray) -> bool:
    """Whether the paper is lighter than the ink. Paper is most of the picture, so its
    shade is the median; it is light when the median lies nearer the brightest pixels
    than the darkest (a dim photo's paper may be darker than mid-grey, and a table around
    a photographed page may fill the border)."""
    sample = gray[:: max(1, gray.shape[0] // 128), :: max(1, gray.shape[1] // 128)].ravel()
    middle = _median(sample)
    ordered = np.sort(sample)
    darkest, brightest = ordered[len(ordered) // 100], ordered[-1 - len(ordered) // 100]
    if darkest == brightest:  # a thin line on clean paper is under a hundredth of it
        darkest, brightest = ordered[0], ordered[-1]
    return middle - darkest > brightest - middle


def _without_shading(gray: np.ndarray, light_paper: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ink bright on paper 0, a sample of its paper to read the noise off) from `gray`
    (ink bright): the paper's shade (io/photo.background) subtracted, and over light paper
    the difference divided by the paper's brightness, as light falls on ink and paper
    alike (a shadow darkens both by one factor). The sample is of all pixels, most of them
    paper: the border may not be (a tilted photo's corners)."""
    from .photo import background

    shade = background(gray)
    ink = gray - shade
    if light_paper:
        ink /= np.maximum(1 - shade, 0.05)
    sample = ink[:: max(1, ink.shape[0] // 64), :: max(1, ink.shape[1] // 64)].ravel()
    return ink, sample - _median(sample)


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def _digit_marks(ink: np.ndarray, thin: int = 0) -> np.ndarray:
    """`ink` with only the digit's marks: of its 8-connected components, those that touch
    the image's edge (a shadow, the page's edge) go when others do not, and specks go when
    they are both small beside the largest mark and away from the larger marks. With
    `thin`, the marks are told apart on the ink shrunk by `thin` pixels, so that lines
    thinner than that (ruled paper) are gone and cannot join a digit to the page's edge."""
    from .photo import grown

    mask = ink > 0
    if thin:
        shrunk = ~grown(~mask, thin)
        if shrunk.any():
            kept = _kept_marks(shrunk)
            return np.where(mask & grown(kept, thin + 1), ink, 0).astype(np.float32)
    return np.where(_kept_marks(mask), ink, 0).astype(np.float32)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected components of `mask`: their labels (h, w), 1.. on the mask, and for
    each component, in label order, its area and whether it touches the image's edge."""
    from .photo import label_components

    labels, count = label_components(mask)
    # tables indexed by label (0, off the mask, first), rather than np.unique and np.isin:
    # those load numpy.ma, a tenth of `mlp predict`'s start-up
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    edge = np.zeros(count + 1, bool)
    edge[_border(labels)] = True
    return labels, areas, edge[1:]


def _kept_marks(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` in the components _digit_marks keeps."""
    from .photo import grown

    labels, areas, edge = _components(mask)
    count = len(areas)
    if count <= 1:
        return mask
    keep = ~edge if (~edge).any() else np.ones(count, bool)
    large = keep & (areas >= SPECK_SHARE * areas[keep].max())
    small = np.flatnonzero(keep & ~large)
    if len(small):  # kept only when they touch the large marks grown by SPECK_REACH
        marks = np.concatenate([[False], large])[labels]
        ys, xs = np.nonzero(marks)
        reach = SPECK_REACH * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
        near = np.zeros(count + 1, bool)
        near[labels[grown(marks, max(1, round(reach)))]] = True
        keep[small] = near[small + 1]
    return np.concatenate([[False], keep])[labels]


def scale_to_box(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink and scale (anti-aliased) so that its longer side is BOX px."""
    from PIL import Image

    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        crop = np.asarray(
            Image.fromarray(crop.astype(np.float32)).resize(
                # a triangle filter's soft edges, not Lanczos's sharpened ones: the digits
                # read more like MNIST's (docs/predict.md)
                size,
                Image.Resampling.BILINEAR,
                reducing_gap=3.0,
            )
        )
        crop = np.clip(crop, 0, None)
        crop /= max(float(crop.max()), 1e-6)  # a thin pen stroke scaled down stays dark
    return crop


def center_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste into a FIELD x FIELD zero field so the centre of mass lands at the centre."""
    height, width = digit.shape
    ys, xs = np.indices(digit.shape)
    mass = digit.sum()
    top = int(np.clip(round(FIELD / 2 - (ys * digit).sum() / mass), 0, FIELD - height))
    left = int(np.clip(round(FIELD / 2 - (xs * digit).sum() / mass), 0, FIELD - width))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def prepare_array(
    gray: np.ndarray, how: str = "digits", shape: tuple[int, int] = (FIELD, FIELD)
) -> PreparedImage:
    """(h, w) grayscale in [0, 1] -> the network's input image of `shape` and whether it
    holds ink: prepared as MNIST's digits were made (how "digits", 28x28 only), or as
    Fashion-MNIST's objects were ("objects", any shape: _fit_object)."""
    ink = ink_bright(gray.astype(np.float32), marks=how == "digits", cut=False)
    if not ink.any():
        return PreparedImage(np.zeros(shape, dtype=np.float32), has_digit=False)
    if how == "objects":
        return PreparedImage(_fit_object(ink, shape), has_digit=True)
    return PreparedImage(digit_input(ink), has_digit=True)


def digit_input(ink: np.ndarray) -> np.ndarray:
    """A digit's ink (bright, paper 0) -> the network's 28x28 input, as MNIST was made."""
    return center_by_mass(scale_to_box(_even_strokes(ink)))


def stroke_width(pixels: np.ndarray) -> float:
    """The width of the strokes of a digit (ink bright, 0..1), px: 2 area / perimeter of the
    pixels above half the brightest (a stroke w wide and l long: 2wl / 2l)."""
    solid = pixels > 0.5 * pixels.max()
    perimeter = (solid[1:] != solid[:-1]).sum() + (solid[:, 1:] != solid[:, :-1]).sum()
    return float(2 * solid.sum() / max(perimeter, 1))


def _even_strokes(ink: np.ndarray) -> np.ndarray:
    """`ink` with its strokes eroded or dilated (min or max over a square) to about
    MNIST's width, STROKE px in a BOX px box, when they are further than STROKE_SPREAD
    times from it: a bold or hairline font, a marker or a fine pen would otherwise reach the
    network thicker or thinner than any digit it learned. The width is measured on the
    sharp ink, before it is scaled into the box and blurred. A digit near MNIST's own size, or an
    image from MNIST itself, is left as it is."""
    from .photo import square

    rows, cols = np.nonzero(ink)
    size = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    if size < 2 * BOX:
        return ink
    width = stroke_width(ink) * BOX / size  # as it would be in the box
    if width > STROKE * STROKE_SPREAD:
        reach, reduce = int((width - STROKE) / 2 * size / BOX), np.minimum
    elif width < STROKE / STROKE_SPREAD:
        reach, reduce = int((STROKE - width) / 2 * size / BOX), np.maximum
    else:
        return ink
    if reach < 1:
        return ink
    evened = square(ink, 2 * reach + 1, reduce)
    return evened if evened.any() else ink


def _fit_object(ink: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """As Fashion-MNIST was made from product photos: trimmed to the object, scaled
    (anti-aliased) so that it fills `shape` along its longer side, and centred."""
    from PIL import Image

    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = min(shape[0] / crop.shape[0], shape[1] / crop.shape[1])
    height = min(shape[0], max(1, round(crop.shape[0] * scale)))
    width = min(shape[1], max(1, round(crop.shape[1] * scale)))
    resized = Image.fromarray(crop.astype(np.float32)).resize(
        (width, height), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    out = np.zeros(shape, dtype=np.float32)
    top, left = (shape[0] - height) // 2, (shape[1] - width) // 2
    out[top : top + height, left : left + width] = np.clip(np.asarray(resized), 0, 1)
    return out


def prepare_image(
    path: str | Path, how: str = "digits", shape: tuple[int, int] = (FIELD, FIELD)
) -> PreparedImage:
    """Image file -> the network's input (prepare_array)."""
    return prepare_array(read_grayscale(path), how, shape)


SHADES = " .:-=+*#%@"


def render_text(pixels: np.ndarray) -> str:
    """(h, w) values in [0, 1] as h lines of text, two characters per pixel."""
    levels = np.clip((pixels * len(SHADES)).astype(int), 0, len(SHADES) - 1)
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def write_grid_png(path: str | Path, images: np.ndarray, zoom: int = 2) -> None:
    """Images (rows, columns, h, w) uint8 as one PNG grid, each pixel `zoom` pixels wide, a
    grey line between the images; written atomically (io.files.atomic_write)."""
    from PIL import Image

    from .files import atomic_write

    rows, columns, h, w = images.shape
    gap = 2
    tiles = np.full((rows, columns, h + gap, w + gap), 128, np.uint8)
    tiles[:, :, :h, :w] = images
    grid = tiles.transpose(0, 2, 1, 3).reshape(rows * (h + gap), columns * (w + gap))
    grid = grid[:-gap, :-gap]
    big = np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1)
    with atomic_write(Path(path)) as out:
        Image.fromarray(big).save(out.file, format="PNG")
