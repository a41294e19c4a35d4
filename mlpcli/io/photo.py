"""Finding the ink in a photo: the paper's slow shading removed, a threshold chosen from the
image itself, and the marks split into connected components, so that specks, shadows and
page edges can be told from the strokes of a digit.

Images here are (h, w) float32 with the ink bright and the paper dark (io/image.py flips
dark ink on light paper first).
"""

from __future__ import annotations

import numpy as np

# An opening over squares this share of the long side wide erases strokes and keeps shading
# and shadows; the polarity of the marks is read with squares of POLARITY_SHARE, narrower, so
# that a table's strip around a tilted page (darker, wider) does not count as marks.
OPENING_SHARE = 0.1
POLARITY_SHARE = 0.05


def sliding(values: np.ndarray, size: int, reduce, axis: int) -> np.ndarray:
    """reduce (np.minimum or np.maximum) over a window of `size` centred on each element
    along `axis`, the edges repeated: a 1-D rank filter in about 2 log2(size) whole-array
    operations, by windows doubled in width (1, 2, 4, ...) and two that overlap at the end."""
    n, half = values.shape[axis], size // 2
    window = np.moveaxis(values, axis, 0)
    window = np.concatenate([window[:1]] * half + [window] + [window[-1:]] * (size - 1 - half))
    width = 1  # window[i]: the reduce of the padded values i .. i + width - 1
    while 2 * width <= size:
        window = reduce(window[:-width], window[width:])
        width *= 2
    return np.moveaxis(reduce(window[:n], window[size - width : size - width + n]), 0, axis)


def square(values: np.ndarray, size: int, reduce) -> np.ndarray:
    """reduce (np.minimum or np.maximum) over the `size` x `size` square centred on each
    element of (h, w) `values`: an erosion or a dilation, one axis after the other."""
    for axis in (0, 1):
        values = sliding(values, size, reduce, axis)
    return values


def grown(mask: np.ndarray, reach: int) -> np.ndarray:
    """`mask` grown by `reach` pixels in every direction (a square dilation)."""
    return square(mask.astype(np.uint8), 2 * reach + 1, np.maximum).astype(bool)


def shrunk(gray: np.ndarray, side: int) -> np.ndarray:
    """`gray` (h, w) float32 shrunk by a box filter so that its long side is `side`, or as it
    is when it is no longer."""
    from PIL import Image

    h, w = gray.shape
    if max(h, w) <= side:
        return gray
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), dtype=np.float32)


def _opening(gray: np.ndarray, share: float, closing: bool = False) -> np.ndarray:
    """The morphological opening of `gray` (min, then max) over squares `share` of its long
    side wide (at least 3 px), or with `closing` its closing (max, then min)."""
    size = max(3, round(share * max(gray.shape))) | 1
    first, then = (np.maximum, np.minimum) if closing else (np.minimum, np.maximum)
    return square(square(gray, size, first), size, then)


def background(gray: np.ndarray) -> np.ndarray:
    """The paper's shade under the ink, (h, w): the opening over squares OPENING_SHARE of
    the long side wide, which erases marks narrower than that (strokes) and keeps what is
    wider (uneven light, a shadow) with its edges sharp, as an opening keeps steps."""
    return _opening(gray, OPENING_SHARE)


def dark_marks(gray: np.ndarray) -> bool:
    """Whether the marks narrower than POLARITY_SHARE of the long side are darker than what
    is around them (pen on paper) rather than lighter (chalk on a board): which of the two
    top-hats, the closing less the image or the image less the opening, holds more. Unlike
    the median shade, this is not swayed by a shadow over most of the page."""
    opened = _opening(gray, POLARITY_SHARE)
    closed = _opening(gray, POLARITY_SHARE, closing=True)
    return float((closed - gray).sum()) > float((gray - opened).sum())


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that best splits `values` (in [0, 1]) into two classes: Otsu's, the
    largest between-class variance over a `bins`-bin histogram."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)
    mass = np.cumsum(counts * centres)
    total, total_mass = below[-1], mass[-1]
    above = total - below
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_below = mass / below
        mean_above = (total_mass - mass) / above
        between = below * above * (mean_below - mean_above) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return float(edges[int(np.argmax(between)) + 1])


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unbroken runs of `mask` along its rows: for each marked pixel (row-major order)
    the number of its run, and where each run starts among the marked pixels."""
    after_gap = mask.copy()
    after_gap[:, 1:] &= ~mask[:, :-1]
    starts = after_gap[mask]
    return np.cumsum(starts) - 1, np.flatnonzero(starts)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean (h, w) mask: labels (h, w) int32, 0 off the
    mask and 1..n on it, and n. Each marked pixel takes the least index among its
    neighbours', then the least in its row's run and in its column's run (so a stroke
    settles in one pass, not one pixel a pass), and then its label's label (pointer
    jumping), until nothing changes: a handful of whole-array passes, no loop over pixels."""
    h, w = mask.shape
    big = np.int32(h * w + 1)
    positions = np.arange(h * w, dtype=np.int32).reshape(h, w)
    in_rows = positions[mask]  # the marked pixels' flat positions, row by row...
    in_columns = positions.T[mask.T]  # ...and column by column
    row_run, row_starts = _runs(mask)
    column_run, column_starts = _runs(mask.T)
    labels = np.where(mask, positions + 1, big)
    padded = np.full((h + 2, w + 2), big, np.int32)
    while True:
        padded[1:-1, 1:-1] = labels
        least = labels.copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                np.minimum(least, padded[dy : dy + h, dx : dx + w], out=least)
        flat = least.ravel()
        if len(in_rows):
            flat[in_rows] = np.minimum.reduceat(flat[in_rows], row_starts)[row_run]
            flat[in_columns] = np.minimum.reduceat(flat[in_columns], column_starts)[column_run]
        least = np.where(mask, least, big)
        flat = np.append(least.ravel(), big)  # position big - 1 ... big: off the mask
        jumped = np.where(mask, flat[np.minimum(least, big) - 1], big)
        if np.array_equal(jumped, labels):
            break
        labels = jumped
    # the roots, numbered 1.. in order (a table by root, not np.unique: that loads numpy.ma)
    roots = np.zeros(h * w + 2, np.int32)
    roots[labels[mask]] = 1
    numbers = np.cumsum(roots, dtype=np.int32)
    out = np.where(mask, numbers[np.minimum(labels, h * w + 1)], 0).astype(np.int32)
    return out, int(numbers[-1])
