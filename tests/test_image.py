import numpy as np
import pytest
from PIL import Image

from mlpcli.errors import ImageError
from mlpcli.io.image import prepare_array, prepare_image, render_text


def _mnist_like_digit() -> np.ndarray:
    """A 28x28 'seven' in MNIST's framing: 20 px tall, white on black, soft edges."""
    digit = np.zeros((28, 28), np.float32)
    digit[4:7, 8:20] = 1.0  # top bar
    for row in range(7, 24):  # diagonal stroke
        col = 19 - (row - 7) // 2
        digit[row, col - 1 : col + 2] = 1.0
    digit[4:24, 7] = np.maximum(digit[4:24, 7], 0.3)  # faint edge, widens the box
    return digit


def _paper_version(digit: np.ndarray, scale: int, offset=(30, 70), size=(200, 260)):
    """The same digit as dark ink on white paper, `scale` times larger, moved off-centre."""
    big = np.kron(digit, np.ones((scale, scale), np.float32))
    paper = np.ones(size, np.float32)
    top, left = offset
    paper[top : top + big.shape[0], left : left + big.shape[1]] = 1 - big
    return paper


def _com(pixels):
    ys, xs = np.indices(pixels.shape)
    return (ys * pixels).sum() / pixels.sum(), (xs * pixels).sum() / pixels.sum()


def test_an_mnist_style_image_passes_through_unchanged():
    digit = _mnist_like_digit()
    prepared = prepare_array(digit)
    assert prepared.has_digit
    top, left = (round(c) for c in _com(digit))
    shifted = np.roll(digit, (14 - top, 14 - left), axis=(0, 1))
    np.testing.assert_allclose(prepared.pixels, shifted, atol=1e-6)


def test_ink_on_paper_scaled_and_off_centre_comes_out_like_mnist():
    digit = _mnist_like_digit()
    prepared = prepare_array(_paper_version(digit, scale=5))
    assert prepared.has_digit
    rows, cols = np.nonzero(prepared.pixels > 0.05)
    assert rows.max() - rows.min() + 1 == 20  # the longer side is 20 px
    assert np.allclose(_com(prepared.pixels), (14, 14), atol=0.6)
    # scaled down again it must look like the original, up to resampling
    expected = prepare_array(digit).pixels
    assert np.abs(prepared.pixels - expected).mean() < 0.05


@pytest.mark.parametrize("pen", [3, 6, 60])  # a fine pen on clean paper, a marker
def test_strokes_far_thinner_or_bolder_than_mnist_come_out_nearer_its_width(pen):
    from PIL import ImageDraw

    from mlpcli.io.image import STROKE, ink_bright, scale_to_box, stroke_width

    image = Image.new("L", (300, 320), 230)
    ImageDraw.Draw(image).line([(90, 60), (210, 60), (130, 260)], fill=30, width=pen)
    gray = np.asarray(image, np.float32) / 255
    as_drawn = stroke_width(scale_to_box(ink_bright(gray)))
    evened = stroke_width(prepare_array(gray).pixels)
    assert not 1.2 < as_drawn < 3.0  # MNIST's middle 80% lie within 1.36-2.59 px
    assert 1.3 < evened < 2.9 and abs(evened - STROKE) < abs(as_drawn - STROKE) / 2


def test_stroke_width_of_a_bar_is_its_width():
    from mlpcli.io.image import stroke_width

    bar = np.zeros((40, 60), np.float32)
    bar[10:14, 5:55] = 1.0  # 4 px wide, 50 long: 2 * 200 / (2 * 50 + 2 * 4)
    assert stroke_width(bar) == pytest.approx(400 / 108)


def test_a_photo_held_sideways_is_turned_as_its_exif_says(tmp_path):
    upright = np.full((120, 100), 240, np.uint8)
    upright[20:30, 20:80] = 20  # a seven: its bar, then its stroke down to the left
    for row in range(30, 100):
        upright[row, 70 - (row - 30) // 2 - 5 : 70 - (row - 30) // 2 + 5] = 20
    stored = np.rot90(upright).copy()  # as the camera stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to view
    Image.fromarray(stored).save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    Image.fromarray(stored).save(tmp_path / "no-exif.jpg", quality=95)
    expected = prepare_array(upright.astype(np.float32) / 255).pixels
    assert np.abs(prepare_image(tmp_path / "sideways.jpg").pixels - expected).mean() < 0.01
    assert np.abs(prepare_image(tmp_path / "no-exif.jpg").pixels - expected).mean() > 0.05


def test_files_of_every_common_kind_give_the_same_input(tmp_path):
    paper = _paper_version(_mnist_like_digit(), scale=4)
    ink = (paper * 255).astype(np.uint8)
    alpha = 255 - ink
    rgba = np.zeros(ink.shape + (4,), np.uint8)
    rgba[..., 3] = alpha  # black ink, transparent paper
    Image.fromarray(ink).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([ink] * 3, axis=2)).save(tmp_path / "rgb.jpg", quality=90)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(ink).convert("P").save(tmp_path / "palette.gif")
    Image.fromarray(ink).save(tmp_path / "gray.bmp")
    Image.fromarray(ink).save(tmp_path / "gray.tif")
    Image.fromarray(ink).save(tmp_path / "gray.webp", lossless=True)
    Image.fromarray(ink).save(tmp_path / "gray.pgm")  # no first bytes of its own to sniff
    (tmp_path / "misnamed.jpg").write_bytes((tmp_path / "gray.png").read_bytes())
    reference = prepare_image(tmp_path / "gray.png").pixels
    kinds = ("rgb.jpg", "rgba.png", "palette.gif", "gray.bmp", "gray.tif", "gray.webp")
    for name in (*kinds, "gray.pgm", "misnamed.jpg"):
        assert np.abs(prepare_image(tmp_path / name).pixels - reference).mean() < 0.03, name


def test_blank_images_hold_no_digit():
    for shade in (0.0, 1.0, 0.6):
        prepared = prepare_array(np.full((50, 40), shade, np.float32))
        assert not prepared.has_digit
        assert prepared.pixels.shape == (28, 28) and not prepared.pixels.any()


def test_noise_alone_is_not_a_digit_but_noise_around_one_is_ignored():
    rng = np.random.default_rng(0)
    noisy_paper = np.clip(0.85 + rng.normal(0, 0.04, (200, 260)), 0, 1).astype(np.float32)
    assert not prepare_array(noisy_paper).has_digit
    digit = _paper_version(_mnist_like_digit(), scale=5)
    noisy_digit = np.clip(digit * 0.8 + 0.05 + rng.normal(0, 0.04, digit.shape), 0, 1)
    clean = prepare_array(digit).pixels
    assert np.abs(prepare_array(noisy_digit.astype(np.float32)).pixels - clean).mean() < 0.05


def test_unreadable_files_raise_image_error(tmp_path):
    (tmp_path / "not.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    for name in ("not.png", "empty.png", "cut.png", "missing.png"):
        with pytest.raises(ImageError):
            prepare_image(tmp_path / name)


def test_render_text_draws_ink_dark_to_bright():
    pixels = np.zeros((28, 28), np.float32)
    pixels[0, 0], pixels[0, 1] = 1.0, 0.5
    lines = render_text(pixels).splitlines()
    assert len(lines) == 28 and all(len(line) == 56 for line in lines)
    assert lines[0].startswith("@@") and lines[0][2:4] not in ("  ", "@@")
    assert lines[1].strip() == ""


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto 28 28 lineto stroke\n"


def test_postscript_is_refused_before_ghostscript_could_run(tmp_path, monkeypatch):
    """Pillow hands EPS to Ghostscript, a program: such files must never reach a plugin."""
    from PIL import EpsImagePlugin

    def never(*args, **kwargs):
        raise AssertionError("Ghostscript was called")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", never)
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    for name in ("digit.eps", "digit.png"):  # the name does not matter, the bytes do
        (tmp_path / name).write_bytes(EPS)
        with pytest.raises(ImageError, match="in the EPS format, which mlpcli does not open"):
            prepare_image(tmp_path / name)


def test_formats_beyond_the_common_raster_ones_are_refused_by_name(tmp_path):
    path = tmp_path / "digit.pcx"
    Image.new("L", (28, 28), 255).save(path)
    with pytest.raises(ImageError, match=r"digit\.pcx is in the PCX format.*PNG, JPEG"):
        prepare_image(path)
    for kind in ("tiff", "webp", "ppm", "gif", "bmp"):
        image = Image.new("L", (40, 40), 255)
        image.paste(0, (15, 5, 25, 35))
        image.save(tmp_path / f"digit.{kind}")
        assert prepare_image(tmp_path / f"digit.{kind}").has_digit


def test_preparing_an_image_loads_only_what_it_needs(tmp_path):
    """Pillow loads all forty of its plugins when a format asked for is not registered yet:
    a third of `mlp predict`'s time; the allowed ones are registered up front instead. And
    numpy's masked arrays and random generators each cost a tenth: no step needs them."""
    import subprocess
    import sys

    for name in ("a.png", "a.jpg"):
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / name)
    paper = np.full((120, 100), 230, np.uint8)
    paper[30:90, 45:55] = 20  # a digit, on paper shaded across (the photo steps run)
    paper[5:8, 90:93] = 20  # and a speck (the marks are told apart)
    paper = (paper * np.linspace(0.7, 1.0, 100)[None, :]).astype(np.uint8)
    Image.fromarray(paper).save(tmp_path / "b.png")
    files = [str(tmp_path / name) for name in ("a.png", "a.jpg", "b.png")]
    code = (
        "import sys; from mlpcli.io.image import prepare_image; "
        f"[prepare_image(p) for p in {files!r}]; "
        "print(sorted(m for m in sys.modules if m.startswith('PIL.') and 'Plugin' in m), "
        "'numpy.ma' in sys.modules, 'numpy.random' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "PdfImagePlugin" not in loaded.stdout and "EpsImagePlugin" not in loaded.stdout
    assert "PngImagePlugin" in loaded.stdout and "JpegImagePlugin" in loaded.stdout
    assert loaded.stdout.strip().endswith("False False")
