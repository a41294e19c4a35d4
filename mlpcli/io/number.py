"""A row of digits in one image -> each digit as the network's input, left to right.

The marks the ink finder keeps (io/image.py: the paper's shading, noise, specks and
shadows removed) are split into 8-connected components; components that overlap along x by
half the narrower one's width are one digit (the pieces of a broken stroke, a 5's detached
bar), and each digit goes through the same steps as a single one. Digits that touch come
out as one wider mark; cut_columns offers where such a mark may be cut in two, and the
reader (prediction.read_number) keeps a cut when the network reads both sides as digits
more surely than the whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .image import PreparedImage, digit_input, ink_bright
from .photo import label_components

OVERLAP = 0.5  # share of the narrower mark's width two marks must share along x to be one
# A mark wider than WIDE times the tallest digit's height may be digits that touch; one wider
# than TOO_WIDE times it is cut even when the network reads it whole surely (MNIST's digits
# are at most 1.25 times as wide as high, 99 in 100 of them: docs/predict.md)
WIDE = 1.0
TOO_WIDE = 1.3
MOST_WIDE = 6.0  # wider than this (times the height) it is a line or a scribble, not digits
CUTS = 6  # the columns of least ink tried as cuts, at most
PART_SHARE = 0.2  # each side of a cut is at least this share of the tallest digit's height wide
LOW_SHARE = 0.4  # a mark shorter than this share of the tallest digit is no digit (a speck)
SPECK_SHARE = 0.03  # a mark under this share of the largest one's area is a speck of dirt


@dataclass
class DigitMark:
    image: PreparedImage  # the 28x28 input
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the image's pixels, x1, y1 past
    ink: np.ndarray  # the mark's ink, cropped to it, at the size the marks were found at
    at: tuple[int, int, float, float]  # where `ink` starts (x, y) there, and the scale to the image


def _mark(ink: np.ndarray, x0: int, y0: int, scale_x: float, scale_y: float) -> DigitMark:
    """The DigitMark of `ink`, cropped to its ink, found at (x0, y0) of an image scaled by
    (scale_x, scale_y) from the original's pixels."""
    rows, cols = np.nonzero(ink)
    top, left = int(rows.min()), int(cols.min())
    ink = ink[top : rows.max() + 1, left : cols.max() + 1]
    x0, y0 = x0 + left, y0 + top
    box = (
        int(x0 * scale_x),
        int(y0 * scale_y),
        int(np.ceil((x0 + ink.shape[1]) * scale_x)),
        int(np.ceil((y0 + ink.shape[0]) * scale_y)),
    )
    image = PreparedImage(digit_input(ink), has_digit=True)
    return DigitMark(image, box, ink, (x0, y0, scale_x, scale_y))


def digit_marks(gray: np.ndarray) -> list[DigitMark]:
    """(h, w) grayscale in [0, 1] -> its digits, left to right (none for a blank image)."""
    ink = ink_bright(gray.astype(np.float32))
    if not ink.any():
        return []
    scale_y, scale_x = gray.shape[0] / ink.shape[0], gray.shape[1] / ink.shape[1]
    labels, count = label_components(ink > 0)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    x0, x1, y0, y1 = _extents(labels, count)
    # a speck would join the digit below it: the marks kept are the larger ones
    kept = np.flatnonzero(areas[1:] >= SPECK_SHARE * areas[1:].max()) + 1
    boxes = [[x0[k], x1[k], y0[k], y1[k], [k]] for k in kept.tolist()]
    boxes = _merged_along_x(sorted(boxes, key=lambda b: (b[0] + b[1]) / 2))
    tallest = max(b[3] - b[2] for b in boxes)
    marks = []
    for x0, x1, y0, y1, members in boxes:
        if y1 - y0 < LOW_SHARE * tallest:
            continue
        belongs = np.zeros(count + 1, bool)
        belongs[members] = True
        digit = np.where(belongs[labels[y0:y1, x0:x1]], ink[y0:y1, x0:x1], 0)
        marks.append(_mark(digit, x0, y0, scale_x, scale_y))
    return marks


def cut_columns(mark: DigitMark, tallest: int) -> list[int]:
    """Where a mark wider than WIDE times `tallest` (the tallest digit's height) may be two
    digits that touch: up to CUTS columns of least ink, each leaving PART_SHARE of `tallest`
    on both sides and apart from the others by half that (of equal ink, the one nearer the
    middle first); none for a mark no wider than a digit, or wider than MOST_WIDE times
    `tallest` (a ruled line or a scribble: cut, it would read as dozens of digits)."""
    width = mark.ink.shape[1]
    margin = max(1, round(PART_SHARE * tallest))
    if not WIDE * tallest < width <= MOST_WIDE * tallest or width <= 2 * margin:
        return []
    columns = np.arange(width)
    # ink, and a tie-break by distance to the middle too small to outweigh any ink
    cost = mark.ink.sum(axis=0) + np.abs(columns - width / 2) / (4 * width**2)
    cost[:margin] = cost[width - margin :] = np.inf
    chosen: list[int] = []
    for _ in range(CUTS):  # a few picks, each a whole-array argmin
        column = int(np.argmin(cost))
        if not np.isfinite(cost[column]):
            break
        chosen.append(column)
        cost[max(0, column - margin // 2) : column + margin // 2 + 1] = np.inf
    return chosen


def cut(mark: DigitMark, column: int) -> tuple[DigitMark, DigitMark]:
    """The two marks left and right of `column` (both with ink: cut_columns' columns)."""
    x0, y0, scale_x, scale_y = mark.at
    left, right = mark.ink[:, :column], mark.ink[:, column:]
    return (
        _mark(left, x0, y0, scale_x, scale_y),
        _mark(right, x0 + column, y0, scale_x, scale_y),
    )


def _extents(labels: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """(x0, x1, y0, y1) of each label 0..count, x1 and y1 past its last column and row,
    in whole-array passes (np.minimum.at and np.maximum.at), not one pass a label."""
    ys, xs = np.nonzero(labels)
    which = labels[ys, xs]
    x0 = np.full(count + 1, labels.shape[1], np.int64)
    y0 = np.full(count + 1, labels.shape[0], np.int64)
    x1, y1 = np.zeros(count + 1, np.int64), np.zeros(count + 1, np.int64)
    np.minimum.at(x0, which, xs)
    np.minimum.at(y0, which, ys)
    np.maximum.at(x1, which, xs + 1)
    np.maximum.at(y1, which, ys + 1)
    return x0, x1, y0, y1


def _merged_along_x(boxes: list[list]) -> list[list]:
    """Boxes sorted by centre, each merged into the one before while they overlap along x
    by OVERLAP of the narrower one's width."""
    merged: list[list] = []
    for box in boxes:
        if merged:
            last = merged[-1]
            shared = min(last[1], box[1]) - max(last[0], box[0])
            narrower = min(last[1] - last[0], box[1] - box[0])
            if shared >= OVERLAP * narrower:
                last[0], last[1] = min(last[0], box[0]), max(last[1], box[1])
                last[2], last[3] = min(last[2], box[2]), max(last[3], box[3])
                last[4] = last[4] + box[4]
                continue
        merged.append(list(box))
    return merged
