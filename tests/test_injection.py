"""Markup in a checkpoint, a dataset's folder name or its class names is text in every page
mlpcli makes (the report, the comparison, the drawing page), checked in a real browser."""

import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import chromium
from test_datasets import write_folder

from mlpcli import load_checkpoint, save_checkpoint
from mlpcli.cli import cli

# an element, a handler and a script: any of them in the DOM means the markup ran
MARKUP = '<mlp-injected></mlp-injected><img src=x onerror="window.injected=1">'
MARKUP += "<script>window.injected=2</script>"
FOLDER = '<mlp-injected><img src=x onerror="window.injected=3">'  # a file name has no "/"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def poisoned(tmp_path) -> Path:
    """A checkpoint of a dataset in a folder named with markup, whose class names and every
    string the checkpoint records are markup too."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 300), ("test", 100)):
        labels = rng.integers(0, 3, count)
        images = np.zeros((count, 28, 28), np.uint8)
        for k in range(3):  # a bar in a place of its own for each class: learnable
            images[labels == k, 4 + 8 * k : 10 + 8 * k, 4:24] = 200
        arrays[f"{split}-images"], arrays[f"{split}-labels"] = images, labels.astype(np.uint8)
    names = [f"{MARKUP}$x^${k}" for k in range(3)]  # and mathtext that matplotlib cannot parse
    folder = write_folder(tmp_path / FOLDER, arrays, classes=names)
    out = tmp_path / "run.npz"
    args = ["--dataset", folder, "--validation-size", 50, "--epochs", 2, "--layers", "784,8,3"]
    result = run("train", *args, "--augment", "none", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(out)
    meta = dict(checkpoint.meta)
    for name in ("engine", "created", "mlpcli_version"):
        meta[name] = MARKUP
    save_checkpoint(out, checkpoint.model, meta, checkpoint.resume)
    return out


def _assert_inert(browser, own_scripts: int = 0) -> None:
    """Nothing injected exists in the page, and the markup shows as text."""
    state = browser.execute_script(
        "return [document.getElementsByTagName('mlp-injected').length,"
        " document.querySelectorAll('script').length,"
        " Array.from(document.images).filter(i => !i.src.startsWith('data:image/png')).length,"
        " window.injected === undefined, document.body.textContent]"
    )
    elements, scripts, foreign_images, untouched, text = state
    assert elements == 0 and scripts == own_scripts and foreign_images == 0 and untouched
    assert "<mlp-injected>" in text  # shown, not parsed


def test_markup_in_a_run_is_text_in_the_report_and_the_comparison(poisoned, tmp_path):
    pytest.importorskip("matplotlib")
    report, comparison = tmp_path / "report.html", tmp_path / "compare.html"
    result = run("report", poisoned, "--out", report, "-q")
    assert result.exit_code == 0, result.output
    copy = tmp_path / "again.npz"
    copy.write_bytes(poisoned.read_bytes())
    assert run("compare", poisoned, copy, "--out", comparison).exit_code == 0
    browser = chromium()
    try:
        for page in (report, comparison):
            browser.get(page.as_uri())
            _assert_inert(browser)
    finally:
        browser.quit()


def test_markup_in_class_names_is_text_in_the_drawing_page(poisoned):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from mlpcli.web.server import PredictServer

    server = PredictServer(load_checkpoint(poisoned), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    browser = chromium()
    try:
        browser.get(server.url)
        WebDriverWait(browser, 15).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#bars .bar")) == 3
        )
        _assert_inert(browser, own_scripts=1)
    finally:
        browser.quit()
        server.shutdown()
        server.server_close()


def test_control_characters_in_class_names_are_shown_not_sent_to_the_terminal(tmp_path):
    """A class name that would retitle the terminal and turn it red reaches info, evaluate
    and predict as visible escapes."""
    from conftest import png_bytes

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    images = np.zeros((200, 28, 28), np.uint8)
    images[labels == 1, 4:24, 12:16] = 220  # a 1 for class 1, blank paper for class 0
    arrays = {"train-images": images, "train-labels": labels.astype(np.uint8)}
    arrays |= {"test-images": images[:50], "test-labels": labels[:50].astype(np.uint8)}
    names = ["\x1b]0;pwned\x07blank", "\x1b[31mbar\u202e"]
    folder = write_folder(tmp_path / "controls", arrays, classes=names)
    out, image = tmp_path / "m.npz", tmp_path / "bar.png"
    args = ["--dataset", folder, "--validation-size", 20, "--epochs", 2, "--layers", "784,8,2"]
    assert run("train", *args, "--augment", "none", "--out", out, "-q").exit_code == 0
    image.write_bytes(png_bytes(255 - images[np.flatnonzero(labels == 1)[0]]))
    for command in (["info", out], ["evaluate", out], ["predict", image, "--checkpoint", out]):
        result = run(*command)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, command
        assert "\u202e" not in result.output
    assert "\\x1b[31mbar\\u202e" in run("evaluate", out).output
