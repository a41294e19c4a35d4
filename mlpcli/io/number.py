"""A row of digits in one image -> each digit as the network's input, left to right.

The marks the ink finder keeps (io/image.py: the paper's shading, noise, specks and
shadows removed) are split into 8-connected components; components that overlap along x by
half the narrower one's width are one digit (the pieces of a broken stroke, a 5's detached
bar), and each digit goes through the same steps as a single one. Digits that touch are
not split: they come out as one (wider) mark, and the reading is then short a digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .image import PreparedImage, digit_input, ink_bright
from .photo import label_components

OVERLAP = 0.5  # share of the narrower mark's width two marks must share along x to be one
LOW_SHARE = 0.4  # a mark shorter than this share of the tallest digit is no digit (a speck)
SPECK_SHARE = 0.03  # a mark under this share of the largest one's area is a speck of dirt


@dataclass
class DigitMark:
    image: PreparedImage  # the 28x28 input
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the image's pixels, x1, y1 past


def digit_marks(gray: np.ndarray) -> list[DigitMark]:
    """(h, w) grayscale in [0, 1] -> its digits, left to right (none for a blank image)."""
    ink = ink_bright(gray.astype(np.float32))
    if not ink.any():
        return []
    scale_y, scale_x = gray.shape[0] / ink.shape[0], gray.shape[1] / ink.shape[1]
    labels, count = label_components(ink > 0)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    boxes = []  # [x0, x1, y0, y1, [labels]] per digit
    for k in range(1, count + 1):
        if areas[k] < SPECK_SHARE * areas[1:].max():  # a speck would join the digit below
            continue
        ys, xs = np.nonzero(labels == k)
        boxes.append([xs.min(), xs.max() + 1, ys.min(), ys.max() + 1, [k]])
    boxes = _merged_along_x(sorted(boxes, key=lambda b: (b[0] + b[1]) / 2))
    tallest = max(b[3] - b[2] for b in boxes)
    marks = []
    for x0, x1, y0, y1, members in boxes:
        if y1 - y0 < LOW_SHARE * tallest:
            continue
        belongs = np.zeros(count + 1, bool)
        belongs[members] = True
        digit = np.where(belongs[labels], ink, 0)[y0:y1, x0:x1]
        box = (
            int(x0 * scale_x),
            int(y0 * scale_y),
            int(np.ceil(x1 * scale_x)),
            int(np.ceil(y1 * scale_y)),
        )
        pixels = digit_input(digit)
        marks.append(DigitMark(PreparedImage(pixels, has_digit=True), box))
    return marks


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
