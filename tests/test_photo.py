"""Photos of paper: shading, shadows, specks and page edges told from the digit; numbers."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import png_bytes
from PIL import Image

from mlpcli.cli import cli
from mlpcli.io.image import prepare_array
from mlpcli.io.number import cut, cut_columns, digit_marks
from mlpcli.io.photo import dark_marks, label_components, otsu, sliding

SEVEN = np.zeros((28, 28), np.float32)
SEVEN[4:7, 8:20] = 1.0
for _row in range(7, 24):
    SEVEN[_row, 19 - (_row - 7) // 2 - 1 : 19 - (_row - 7) // 2 + 2] = 1.0


def page(digit: np.ndarray = SEVEN, scale: int = 6, at=(60, 80), size=(300, 320)):
    """The reflectance of a page: 0.9 for paper, 0.15 where the digit's ink is."""
    big = np.kron(digit, np.ones((scale, scale), np.float32))
    paper = np.full(size, 0.9, np.float32)
    top, left = at
    paper[top : top + big.shape[0], left : left + big.shape[1]] -= 0.75 * big
    return paper


def close_to(pixels: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(pixels - reference).mean())


CLEAN = prepare_array(page()).pixels


def test_components_are_8_connected_and_numbered_from_1():
    mask = np.zeros((6, 7), bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one component
    mask[4:6, 4:7] = True
    mask[0, 6] = True
    labels, count = label_components(mask)
    assert count == 3
    assert labels[0, 0] == labels[1, 1] != labels[5, 6]
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]


def test_components_match_scipy_on_random_masks():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for _ in range(10):
        mask = rng.random((40, 50)) < rng.uniform(0.2, 0.6)
        ours, count = label_components(mask)
        theirs, expected = ndimage.label(mask, structure=np.ones((3, 3)))
        assert count == expected
        assert len(set(zip(ours[mask].tolist(), theirs[mask].tolist(), strict=True))) == count


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8, 13, 51])
@pytest.mark.parametrize("axis", [0, 1])
def test_sliding_minimum_and_maximum_match_every_window_taken_whole(size, axis):
    values = np.random.default_rng(size).normal(size=(37, 29)).astype(np.float32)
    half = size // 2
    padded = np.pad(
        values, [(half, size - 1 - half) if a == axis else (0, 0) for a in (0, 1)], "edge"
    )
    windows = np.stack(
        [np.take(padded, range(s, s + values.shape[axis]), axis=axis) for s in range(size)]
    )
    assert np.array_equal(sliding(values, size, np.minimum, axis), windows.min(axis=0))
    assert np.array_equal(sliding(values, size, np.maximum, axis), windows.max(axis=0))


def test_otsu_splits_two_shades_between_them():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0.2, 0.04, 5000), rng.normal(0.7, 0.04, 800)])
    assert 0.3 < otsu(np.clip(values, 0, 1)) < 0.6


def test_light_falling_off_across_the_page_is_divided_out():
    light = np.linspace(150, 200, 320, dtype=np.float32)[None, :] / 255  # grey 150 to 200
    prepared = prepare_array(page() * light)
    assert prepared.has_digit
    assert close_to(prepared.pixels, CLEAN) < 0.03


def test_a_shadow_over_part_of_the_page_is_not_ink():
    shadow = np.ones((300, 320), np.float32)
    shadow[:, 230:] = 0.6  # a shadow's edge down the page, beside the digit
    assert close_to(prepare_array(page() * shadow * 0.85).pixels, CLEAN) < 0.03
    shadow[180:, :] *= 0.7  # and one across the digit, its edge kept sharp by the opening
    assert close_to(prepare_array(page() * shadow * 0.85).pixels, CLEAN) < 0.03


def test_a_shadow_over_most_of_the_page_is_not_taken_for_the_paper():
    shadow = np.ones((300, 320), np.float32)
    shadow[:, 110:] = 0.45  # most of the page, the digit with it: its median shade is dark
    photo = page() * shadow * 0.85
    assert dark_marks(photo) and not dark_marks(1 - photo)  # pen on paper, chalk on a board
    prepared = prepare_array(photo)
    assert prepared.has_digit
    assert close_to(prepared.pixels, CLEAN) < 0.03


def test_specks_far_from_the_digit_and_a_page_edge_are_dropped():
    dirty = page()
    for y, x in ((20, 20), (280, 300), (250, 40), (30, 290)):
        dirty[y : y + 4, x : x + 4] = 0.2  # specks of dirt
    assert close_to(prepare_array(dirty).pixels, CLEAN) < 0.01
    edged = page()
    edged[:, :12] = 0.3  # the dark edge of the table beside the page
    assert close_to(prepare_array(edged).pixels, CLEAN) < 0.01


def test_ruled_lines_under_a_shaded_digit_are_not_part_of_it():
    ruled = page()
    for y in range(15, 300, 45):
        ruled[y : y + 2, :] -= 0.25  # the ruling crosses the digit
    light = np.linspace(0.6, 0.95, 300, dtype=np.float32)[:, None]
    prepared = prepare_array(ruled * light)
    assert close_to(prepared.pixels, CLEAN) < 0.05


def test_a_row_of_digits_comes_out_left_to_right_with_boxes():
    one = np.zeros((28, 28), np.float32)
    one[4:24, 13:16] = 1.0
    row = np.concatenate([SEVEN, one, SEVEN], axis=1)
    paper = page(row, scale=4, at=(40, 30), size=(200, 420))
    paper[10:13, 400:403] = 0.2  # a speck, above nothing
    marks = digit_marks(paper)
    assert len(marks) == 3
    lefts = [m.box[0] for m in marks]
    assert lefts == sorted(lefts)
    assert marks[0].box[1] >= 40 and marks[0].box[3] <= 40 + 28 * 4 + 1
    assert close_to(marks[0].image.pixels, marks[2].image.pixels) < 0.01  # both sevens
    assert digit_marks(np.full((50, 50), 0.9, np.float32)) == []


def test_a_broken_stroke_is_one_digit():
    broken = SEVEN.copy()
    broken[6:8, :] = 0  # the bar cut from the diagonal
    assert len(digit_marks(page(broken))) == 1


def test_a_mark_as_wide_as_two_digits_is_offered_cuts_where_its_ink_is_least():
    one = np.zeros((28, 28), np.float32)
    one[4:24, 13:16] = 1.0
    twins = np.concatenate([SEVEN[:, 4:22], SEVEN[:, 4:22]], axis=1)
    twins[5, 14:24] = 1.0  # a thin stroke joins the bars of two sevens
    (mark,) = digit_marks(page(twins, scale=4, at=(40, 30), size=(200, 260)))
    columns = cut_columns(mark, mark.ink.shape[0])
    assert columns and all(0 < c < mark.ink.shape[1] for c in columns)
    ink_by_column = mark.ink.sum(axis=0)
    assert ink_by_column[columns[0]] == ink_by_column[columns].min()
    left, right = cut(mark, columns[0])
    assert left.box[0] == mark.box[0] and right.box[2] == mark.box[2]
    assert left.box[2] <= right.box[0] + 1  # side by side, each cropped to its ink
    assert close_to(left.image.pixels, right.image.pixels) < 0.05  # two sevens
    (single,) = digit_marks(page(one, scale=4))
    assert cut_columns(single, single.ink.shape[0]) == []  # no wider than a digit
    line = np.zeros((28, 200), np.float32)
    line[10:16, 5:195] = 1.0
    (scribble,) = digit_marks(page(line, scale=2, at=(30, 20), size=(120, 440)))
    assert cut_columns(scribble, scribble.ink.shape[0]) == []  # not dozens of digits


@pytest.mark.e2e
def test_predict_number_reads_mnist_digits_written_in_a_row(quick_digits, real_mnist, tmp_path):
    from mlpcli import load_mnist

    test = load_mnist(real_mnist, progress=False, parts=("test",))
    digits = [test["test-images"][i] for i in (0, 1, 2, 3)]  # 7 2 1 0
    row = np.concatenate(digits, axis=1).astype(np.float32) / 255
    Image.fromarray((255 * page(row, scale=4, at=(30, 40), size=(180, 530))).astype(np.uint8)).save(
        tmp_path / "number.png"
    )
    runner = CliRunner()
    args = ["predict", "--number", str(tmp_path / "number.png"), "--checkpoint", str(quick_digits)]
    text = runner.invoke(cli, args)
    assert text.exit_code == 0 and text.stdout.startswith(f"{tmp_path / 'number.png'}: 7210 (")
    answer = json.loads(runner.invoke(cli, [*args, "--json"]).stdout)
    assert answer["number"] == "7210" and len(answer["digits"]) == 4
    assert all(len(d["probabilities"]) == 10 and len(d["box"]) == 4 for d in answer["digits"])
    Image.fromarray(np.full((60, 60), 240, np.uint8)).save(tmp_path / "blank.png")
    blank = runner.invoke(
        cli,
        [
            "predict",
            "--number",
            str(tmp_path / "blank.png"),
            "--json",
            "--checkpoint",
            str(quick_digits),
        ],
    )
    assert blank.exit_code == 0 and json.loads(blank.stdout)["number"] == ""
    assert "holds no digits" in blank.stderr


def _png(reflectance: np.ndarray) -> bytes:
    return png_bytes((255 * reflectance).astype(np.uint8))


@pytest.mark.e2e
def test_digits_that_touch_are_cut_apart_and_apart_ones_are_not(quick_digits, real_mnist):
    from mlpcli import load_checkpoint, load_mnist
    from mlpcli.io.image import read_grayscale
    from mlpcli.prediction import read_number

    test = load_mnist(real_mnist, progress=False, parts=("test",))
    images, labels = test["test-images"], test["test-labels"]
    checkpoint = load_checkpoint(quick_digits)
    joined = joined_right = apart_right = 0
    for i in range(0, 40, 2):
        a, b = (images[k][:, images[k].max(axis=0) > 0] / 255 for k in (i, i + 1))
        both = np.zeros((28, a.shape[1] + b.shape[1] - 1), np.float32)  # sharing a column
        both[:, : a.shape[1]] = a
        np.maximum(both[:, a.shape[1] - 1 :], b, out=both[:, a.shape[1] - 1 :])
        touching = _png(page(both, scale=4, size=(200, 300)))
        if len(digit_marks(read_grayscale(touching))) == 1:
            joined += 1
            truth = f"{labels[i]}{labels[i + 1]}"
            joined_right += read_number(checkpoint, touching).number == truth
        apart = np.concatenate([a, np.zeros((28, 6)), b], axis=1).astype(np.float32)
        apart_right += len(read_number(checkpoint, _png(page(apart, scale=4))).digits) == 2
    assert apart_right == 20  # none cut, none lost
    assert joined >= 8 and joined_right >= 3  # uncut, a joined pair reads as one digit


def tight_crop(digit: np.ndarray, scale: int, paper: float, noise: float = 0.0):
    """The digit in dark ink on paper of shade `paper`, enlarged `scale` times and cropped to
    its ink: the strokes run to the frame on every side."""
    rows, cols = np.nonzero(digit)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    big = np.kron(crop, np.ones((scale, scale), np.float32))
    grain = np.random.default_rng(scale).normal(0, noise, big.shape).astype(np.float32)
    return np.clip(paper - (paper - 0.1) * big + grain, 0, 1)


def framed(image: np.ndarray, paper: float, width: int) -> np.ndarray:
    return np.pad(image, width, constant_values=paper)


RING = np.zeros((28, 28), np.float32)
_ys, _xs = np.mgrid[0:28, 0:28]
RING[np.abs(np.hypot((_ys - 14) / 10, (_xs - 14) / 7) - 1) < 0.2] = 1.0  # a "0"


@pytest.mark.parametrize("digit", [SEVEN, RING], ids=["seven", "zero"])
@pytest.mark.parametrize("scale, paper, noise", [(2, 0.95, 0.0), (4, 0.8, 0.02), (9, 0.6, 0.03)])
def test_a_digit_cropped_tight_keeps_its_strokes(digit, scale, paper, noise):
    """Its strokes on the border are ink, not the dark edge of a photographed page: it reads
    as the same digit with paper around it does."""
    from mlpcli.io.image import ink_bright

    crop = tight_crop(digit, scale, paper, noise)
    assert ink_bright(crop).shape == crop.shape  # a number's boxes are read off this shape
    prepared = prepare_array(crop)
    assert prepared.has_digit
    assert close_to(prepared.pixels, prepare_array(framed(crop, paper, 8 * scale)).pixels) < 0.01


def test_a_small_digit_filling_its_frame_scaled_up_reads_as_with_paper_around():
    small = np.asarray(Image.fromarray(RING[3:26, 6:23] * 255).resize((8, 8)), np.float32)
    blocky = 1 - np.kron(small / small.max(), np.ones((8, 8), np.float32))  # 8x8 to 64x64
    prepared = prepare_array(blocky)
    assert prepared.has_digit
    assert close_to(prepared.pixels, prepare_array(framed(blocky, 1.0, 32)).pixels) < 0.01


def test_a_page_edge_shadow_or_ruling_on_the_border_is_no_tight_crop():
    """What reaches the border of these photos is no stroke: a table beside the page, a
    shadow the digit touches, ruled lines, light falling off, a shadow over most of the
    page: each keeps the photo's path."""
    from mlpcli.io.image import _paper_of_tight_crop

    edged = page()
    edged[:, :12] = 0.3
    touching = np.ones((300, 320), np.float32)
    touching[:, 150:] = 0.55  # the shadow's edge runs through the digit
    ruled = page()
    ruled[15::45, :] -= 0.25
    light = np.linspace(0.6, 0.95, 320, dtype=np.float32)[None, :]
    most = np.ones((300, 320), np.float32)
    most[:, 110:] = 0.45
    for photo in (edged, page() * touching, ruled, page() * light, page() * most * 0.85):
        assert _paper_of_tight_crop(photo) is None
    assert close_to(prepare_array(page() * touching).pixels, CLEAN) < 0.03
