"""What `mlp report` and `mlp compare` show: a run's page, and several runs side by side."""

from __future__ import annotations

import numpy as np

from . import html

MISTAKES_SHOWN = 24  # the most confident mistakes on the test set, in the report's grid


def run_report(about: dict, meta: dict, weights: np.ndarray, test: dict) -> str:
    """The report page of one run. `about` is report.summary.describe() of its checkpoint, `weights`
    its W1 (d, h1), and `test` holds the test split's "images" (n, h, w) uint8, "labels"
    (n,), "probabilities" (n, k) and "figures" (metrics.score)."""
    from . import plots  # matplotlib: MlpError saying how to install it when it is missing

    names, shape = about["classes"], tuple(about["image_shape"])
    figures = test["figures"]
    history = meta["history"]
    summary = html.table(
        ["split", "accuracy", "loss"],
        [
            (split, f"{100 * about[f'{split}_accuracy']:.2f}%", about[f"{split}_loss"])
            for split in ("train", "validation", "test")
            if about.get(f"{split}_accuracy") is not None
        ],
    )
    per_class = [
        (names[c["class"]], c["precision"], c["recall"], c["f1"], c["support"])
        for c in figures["per_class"]
    ]
    run = (  # every value from the checkpoint or a path reaches the page escaped
        f"{about['dataset']}: {'x'.join(map(str, shape))} images, {len(names)} classes; network "
        f"{','.join(map(str, about['layers']))} {about['activation']}; {about['epochs']} epochs "
        f"({about['ended']}), best epoch {about['best_epoch']}; engine {about['engine']}; "
        f"created {about['created']}."
    )
    sections = [("Run", f"<p>{html.text(run)}</p>" + summary)]
    if history:
        curves = plots.curves(history, about["best_epoch"] or history[-1]["epoch"])
        sections.append(("Loss and accuracy by epoch", html.png_tag(curves, "training curves")))
    confusion = np.array(figures["confusion_matrix"])
    sections += [
        (
            f"Confusion matrix (test, {figures['samples']} images)",
            html.png_tag(plots.confusion(confusion, names), "confusion matrix"),
        ),
        (
            "Precision and recall by class (test)",
            html.png_tag(plots.per_class(figures["per_class"], names), "precision and recall")
            + html.table(["class", "precision", "recall", "f1", "support"], per_class),
        ),
        ("Most confident mistakes (test)", _mistakes(test, names)),
        (
            "What the first layer's units look for (their incoming weights)",
            html.png_tag(plots.first_layer(weights, shape), "first-layer weights"),
        ),
        (
            "Options",
            html.table(
                ["option", "value"],
                sorted(meta["options"].items()),
            ),
        ),
    ]
    return html.page(f"mlpcli report: {about['dataset']}", sections)


def _mistakes(test: dict, names: list[str]) -> str:
    from . import plots

    probabilities, labels = test["probabilities"], test["labels"]
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if not len(wrong):
        return "<p>None: every test image is classified right.</p>"
    confidence = probabilities[wrong, predicted[wrong]]
    shown = wrong[np.argsort(-confidence, kind="stable")[:MISTAKES_SHOWN]]
    titles = [
        f"true {names[labels[i]]}\npredicted {names[predicted[i]]}\n"
        f"{100 * probabilities[i, predicted[i]]:.1f}%"
        for i in shown
    ]
    grid = plots.image_grid(test["images"][shown], titles)
    return html.png_tag(grid, "most confident mistakes") + (
        f"<p>{len(wrong)} of {len(labels)} test images are misclassified; "
        f"the {len(shown)} shown are those the network was surest of.</p>"
    )


def comparison_rows(paths: list[str], abouts: list[dict]) -> list[tuple[str, ...]]:
    """One row of text per run, the columns of COMPARISON_HEADER: what differs between runs
    is easiest to see in these."""
    rows = []
    for path, about in zip(paths, abouts, strict=True):
        options = about["options_in_force"]
        rows.append(
            (
                path,
                about["dataset"],
                ",".join(map(str, about["layers"])),
                str(options.get("optimizer", "")),
                str(about["epochs"]),
                str(about["best_epoch"]),
                _percent(about["validation_accuracy"]),
                _percent(about["test_accuracy"]),
                str(about["seconds"]),
            )
        )
    return rows


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


COMPARISON_HEADER = (
    "run",
    "dataset",
    "layers",
    "optimizer",
    "epochs",
    "best",
    "validation acc",
    "test acc",
    "seconds",
)


def comparison_page(paths: list[str], abouts: list[dict], histories: list[list[dict]]) -> str:
    rows = comparison_rows(paths, abouts)
    curves = [
        (path, [r.get("validation_accuracy") for r in history])
        for path, history in zip(paths, histories, strict=True)
    ]
    in_force = [about["options_in_force"] for about in abouts]
    options = sorted(
        name
        for name in in_force[0]
        if any(name in about["options"] for about in abouts)
        or len({repr(run.get(name)) for run in in_force}) > 1
    )
    option_rows = [(name, *[run.get(name) for run in in_force]) for name in options]
    return html.page(
        "mlpcli: runs compared",
        [
            ("Runs", html.table(COMPARISON_HEADER, rows)),
            ("Validation accuracy by epoch", html.curves_svg(curves, "validation accuracy")),
            (
                "Options that differ from the defaults or between runs, as each run had them",
                html.table(["option", *paths], option_rows),
            ),
        ],
    )
