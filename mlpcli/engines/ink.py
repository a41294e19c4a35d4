"""Blank margins: most of an MNIST image is blank paper, and training can skip it.

A digit's ink falls in the middle of its 28x28 frame. With the pixel columns ordered by how
often they are inked, most often first, the ink of a whole batch of 64 training images fits
on average in the first 625 of the 784 columns: past those, every image of the batch is
blank. The first layer's two large products (forward X W and update W -= X^T dZ) then need
only the inked prefix of the columns; the blank tail, where every row holds the same value,
is cheap to account for exactly (fast_numpy.py, BlankTail). Training reorders the pixel columns of
each chunk it normalizes, and the rows of W for each epoch; nothing outside training sees
that order.

Both steps move bytes in groups, a pixel at a time being several times slower: columns are
reordered in neighbouring pairs (a few columns more than one by one) and ink is looked for
8 bytes at a time (an end rounds up to a multiple of 8).

Shapes: pixels (n, d) uint8 rows, one image each, d even.
"""

from __future__ import annotations

import numpy as np

ROWS_AT_A_TIME = 8192  # bounds the boolean temporaries to a few MB


def _grouped(pixels: np.ndarray, dtype: type) -> np.ndarray:
    """The rows of `pixels` as (n, d / size) groups of neighbouring bytes, one `dtype` each
    (a view: pixels' rows must be contiguous)."""
    return np.ascontiguousarray(pixels).view(dtype)


def ink_order(pixels: np.ndarray) -> np.ndarray:
    """Column order (d,): neighbouring pairs of columns, the pairs inked (non-zero) in most
    rows first; ties keep their original order."""
    pairs = _grouped(pixels, np.uint16)
    counts = np.zeros(pairs.shape[1], np.int64)
    for start in range(0, len(pairs), ROWS_AT_A_TIME):
        counts += (pairs[start : start + ROWS_AT_A_TIME] != 0).sum(axis=0, dtype=np.int32)
    pair_order = np.argsort(-counts, kind="stable")
    return (2 * pair_order[:, None] + np.arange(2)).ravel()


def in_ink_order(pixels: np.ndarray, order: np.ndarray) -> np.ndarray:
    """A copy of `pixels` with its columns in `order`, as made by ink_order: pairs at a time."""
    return np.take(_grouped(pixels, np.uint16), order[::2] // 2, axis=1).view(np.uint8)


def batch_ends(pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """For each consecutive batch of `batch_size` rows (the last may be short), a column
    past which every row of the batch is blank (0 for an all-blank batch); a multiple of 8
    when the rows' width is."""
    size = 8 if pixels.shape[1] % 8 == 0 else 1
    words = _grouped(pixels, np.uint64 if size == 8 else np.uint8)
    full = len(words) // batch_size * batch_size
    inked = words[:full].reshape(-1, batch_size, words.shape[1]).any(axis=1)
    if full < len(words):
        inked = np.vstack([inked, words[full:].any(axis=0)])
    last_first = inked[:, ::-1]
    ends = np.where(last_first.any(axis=1), words.shape[1] - last_first.argmax(axis=1), 0)
    return ends * size
