"""The report's figures, drawn with matplotlib (the optional extra `.[plot]`), as PNG bytes.

Only `mlp report` imports this module, so that no other command pays for matplotlib.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import MlpError

INSTALL_HINT = 'pip install "mlpcli[plot]" (or pip install matplotlib)'


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MlpError(f"mlp report draws its figures with matplotlib; {INSTALL_HINT}") from None
    matplotlib.use("Agg")  # files only: no window, no display needed
    import matplotlib.pyplot as plt

    if "text.parse_math" in matplotlib.rcParams:  # class names are text: "$x^$" is no formula
        matplotlib.rcParams["text.parse_math"] = False

    return plt


def require() -> None:
    """MlpError saying how to install matplotlib, when it is missing."""
    _pyplot()


def _png(figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=96, bbox_inches="tight")
    _pyplot().close(figure)
    return out.getvalue()


def curves(history: list[dict], best_epoch: int) -> bytes:
    """Loss and accuracy by epoch, train and validation, the best epoch marked, and the
    learning rate when it changed."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    rates = [r.get("learning_rate") for r in history]
    scheduled = len({r for r in rates if r is not None}) > 1
    figure, axes = plt.subplots(1, 3 if scheduled else 2, figsize=(13 if scheduled else 9, 3.4))
    for axis, figure_name in zip(axes, ("loss", "accuracy"), strict=False):
        for split, style in (("train", "-"), ("validation", "--")):
            values = [r.get(f"{split}_{figure_name}") for r in history]
            if any(v is not None for v in values):
                axis.plot(epochs, values, style, marker=".", label=split)
        axis.axvline(best_epoch, color="grey", linewidth=0.8, label=f"best epoch {best_epoch}")
        axis.set(xlabel="epoch", title=figure_name)
        axis.legend(fontsize=8)
    if scheduled:
        axes[2].plot(epochs, rates, marker=".")
        axes[2].set(xlabel="epoch", title="learning rate")
    return _png(figure)


def confusion(matrix: np.ndarray, names: list[str]) -> bytes:
    """The confusion matrix as a heatmap, counts written in the cells."""
    plt = _pyplot()
    k = len(matrix)
    figure, axis = plt.subplots(figsize=(1.2 + 0.55 * k, 0.9 + 0.5 * k))
    axis.imshow(np.log1p(matrix), cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            shade = "white" if count > matrix.max() / 3 else "black"
            axis.text(column, row, str(count), ha="center", va="center", fontsize=7, color=shade)
    axis.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(k), names, fontsize=8)
    axis.set(xlabel="predicted", ylabel="true")
    return _png(figure)


def per_class(report: list[dict], names: list[str]) -> bytes:
    """Precision and recall of each class, side by side."""
    plt = _pyplot()
    k = len(report)
    figure, axis = plt.subplots(figsize=(max(5, 0.6 * k), 3))
    x = np.arange(k)
    axis.bar(x - 0.2, [c["precision"] for c in report], 0.4, label="precision")
    axis.bar(x + 0.2, [c["recall"] for c in report], 0.4, label="recall")
    low = min(min(c["precision"], c["recall"]) for c in report)
    axis.set_ylim(max(0.0, low - 0.05), 1.0)
    axis.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    axis.legend(fontsize=8)
    return _png(figure)


def image_grid(images: np.ndarray, titles: list[str], columns: int = 8) -> bytes:
    """Images (n, h, w), each with its title, in a grid `columns` wide."""
    plt = _pyplot()
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 2.0 * rows))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, image, title in zip(np.ravel(axes), images, titles, strict=False):
        axis.imshow(image, cmap="gray")
        axis.set_title(title, fontsize=7)
    return _png(figure)


def first_layer(weights: np.ndarray, shape: tuple[int, int], count: int = 32) -> bytes:
    """The first `count` hidden units' incoming weights W1[:, j] (d,) as images of `shape`,
    blue negative and red positive: what each unit looks for."""
    plt = _pyplot()
    count = min(count, weights.shape[1])
    columns = 8
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows))
    for axis in np.ravel(axes):
        axis.axis("off")
    for unit, axis in zip(range(count), np.ravel(axes), strict=False):
        picture = weights[:, unit].reshape(shape)
        scale = float(np.abs(picture).max()) or 1.0
        axis.imshow(picture, cmap="bwr", vmin=-scale, vmax=scale)
        axis.set_title(f"unit {unit + 1}", fontsize=7)
    return _png(figure)
