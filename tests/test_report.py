"""mlp report and mlp compare: self-contained HTML pages whose images are really there."""

import base64
import html.parser
import io
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from mlpcli.cli import cli

QUICK = ["--validation-size", "100", "--layers", "784,16,10", "--quiet", "--augment", "none"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


class Page(html.parser.HTMLParser):
    """The tags, headings and images of a page, parsed strictly enough to catch bad markup."""

    def __init__(self, text: str):
        super().__init__()
        self.open, self.headings, self.images, self.polylines = [], [], [], 0
        self._heading = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "polyline":
            self.polylines += 1
        elif tag in ("h1", "h2"):
            self._heading = True
        if tag not in ("img", "meta", "br", "polyline", "line"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("polyline", "line"):
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        self._heading = False

    def handle_data(self, data):
        if self._heading:
            self.headings.append(data)


@pytest.fixture
def two_runs(tiny_mnist, tmp_path):
    first, second = tmp_path / "sgd.npz", tmp_path / "adam.npz"
    plain = ["--optimizer", "sgd", "--lr", "0.1", "--schedule", "constant"]
    assert run("train", *QUICK, *plain, "--epochs", 3, "--out", first).exit_code == 0
    args = [*QUICK, "--epochs", 4, "--optimizer", "adam", "--lr", "0.003", "--out", second]
    assert run("train", *args, "--schedule", "cosine").exit_code == 0
    return first, second


def test_the_report_is_one_page_with_every_figure(two_runs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.html"
    result = run("report", two_runs[1], "--out", out, "-q")
    assert result.exit_code == 0, result.output
    page = Page(out.read_text())
    assert page.open == []  # every tag closed
    for heading in (
        "Loss and accuracy by epoch",
        "Confusion matrix",
        "Precision and recall by class",
        "Most confident mistakes",
        "first layer",
        "Options",
    ):
        assert any(heading in h for h in page.headings), heading
    assert len(page.images) == 5  # curves, confusion, per class, mistakes, weights
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")  # embedded: no network
        png = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1])))
        assert png.format == "PNG" and min(png.size) > 100
    assert "http" not in out.read_text().replace("http://www.w3.org", "")
    assert run("report", two_runs[1], "--out", out).exit_code == 2  # not replaced unasked


def test_without_matplotlib_report_says_how_to_install_it(two_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    result = run("report", two_runs[0], "--out", tmp_path / "r.html")
    assert result.exit_code == 1
    assert 'pip install "mlpcli[plot]"' in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_compare_puts_runs_side_by_side_in_the_terminal_and_as_html(two_runs, tmp_path):
    out = tmp_path / "compare.html"
    result = run("compare", *two_runs, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "dataset", "layers", "optimizer"]
    assert str(two_runs[0]) in lines[1] and "sgd" in lines[1]
    assert str(two_runs[1]) in lines[2] and "adam" in lines[2]
    assert "validation accuracy by epoch" in result.stdout
    assert "A" in result.stdout and "B" in result.stdout
    page = Page(out.read_text())
    assert page.open == [] and page.polylines == 2  # a curve per run
    assert "lr" in out.read_text() and "(default)" in out.read_text()
