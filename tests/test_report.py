"""mlp report and mlp compare: self-contained HTML pages whose images are really there."""

import base64
import html.parser
import io
import re
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
        self.rows, self._heading, self._cells = [], False, None
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
        elif tag == "tr":
            self._cells = []
        if tag not in ("img", "meta", "br", "polyline", "line"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("polyline", "line"):
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        self._heading = False
        if tag == "tr":
            self.rows.append(self._cells)

    def handle_data(self, data):
        if self._heading:
            self.headings.append(data)
        if self.open and self.open[-1] in ("td", "th") and self._cells is not None:
            self._cells.append(data)


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
    rows = {r[0]: r[1:] for r in Page(out.read_text()).rows}
    assert rows["lr"] == ["0.1", "0.003"] and rows["optimizer"] == ["sgd", "adam"]
    assert "batch_size" not in rows  # the default in both runs


def test_compare_shows_each_runs_optimizer_as_it_ran(two_runs, tmp_path):
    """A run trained with the default optimizer (momentum) is not shown as sgd."""
    momentum = tmp_path / "momentum.npz"
    args = [*QUICK, "--epochs", 2, "--lr", "0.05", "--schedule", "constant", "--out", momentum]
    assert run("train", *args).exit_code == 0
    result = run("compare", two_runs[0], momentum)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:3]}
    assert rows[str(two_runs[0])][3] == "sgd" and rows[str(momentum)][3] == "momentum"


def test_compare_stays_readable_with_many_runs_and_refuses_an_input_as_out(two_runs, tmp_path):
    runs = [tmp_path / f"run{k}.npz" for k in range(30)]
    for k, path in enumerate(runs):
        path.write_bytes(two_runs[k % 2].read_bytes())
    out = tmp_path / "many.html"
    result = run("compare", *runs, "--out", out)
    assert result.exit_code == 0, result.output
    assert "(the first 26 of 30 runs are drawn; the table lists all)" in result.stdout
    page = out.read_text()
    height = int(re.search(r'<svg [^>]*height="(\d+)"', page).group(1))
    legend = [int(y) for y in re.findall(r'<text x="\d+" y="(\d+)" fill', page)]
    assert len(legend) == 30 and max(legend) < height  # every name inside the canvas
    before = runs[0].read_bytes()
    refused = run("compare", runs[0], runs[1], "--out", runs[0], "--force")
    assert refused.exit_code == 2 and "is one of the runs compared" in refused.output
    assert runs[0].read_bytes() == before
