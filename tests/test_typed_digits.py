"""Typed digits added to the training images (data/typed_digits.py, --typed-digits)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mlpcli import load_checkpoint
from mlpcli.api import TrainConfig, resume_config
from mlpcli.cli import cli
from mlpcli.data import make_splits
from mlpcli.data.typed_digits import SHARE, typed_digits, typed_share
from mlpcli.errors import ConfigError
from mlpcli.io.image import BOX, FIELD

QUICK = ["--validation-size", "100", "--epochs", "1", "--layers", "784,16,10", "--quiet"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def drawn():
    return typed_digits(300, np.random.default_rng(0))


def test_each_digit_about_equally_often_as_mnist_images(drawn):
    images, labels = drawn
    assert images.shape == (300, FIELD, FIELD) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [30] * 10
    assert len({image.tobytes() for image in images}) == 300  # every one drawn anew


def test_prepared_as_predict_prepares_a_digit(drawn):
    images, _ = drawn
    for image in images:
        rows, cols = np.nonzero(image)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= BOX + 1  # scaled into MNIST's box
        weights = image[rows, cols].astype(np.float64)
        centre = np.array([rows, cols]) @ weights / weights.sum()
        assert np.abs(centre - (FIELD - 1) / 2).max() <= 1.0  # centred by mass


def test_labels_name_the_digits_drawn(drawn):
    """Digits drawn from another seed are read from these by their nearest neighbour: the
    labels belong to the glyphs, whatever the size, slant and weight."""
    images, labels = drawn
    others, truth = typed_digits(100, np.random.default_rng(1))
    a = images.reshape(len(images), -1).astype(np.float32)
    b = others.reshape(len(others), -1).astype(np.float32)
    distances = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]
    assert (labels[distances.argmin(axis=1)] == truth).mean() >= 0.8


def test_the_same_seed_draws_the_same_digits():
    first, _ = typed_digits(20, np.random.default_rng(5))
    again, _ = typed_digits(20, np.random.default_rng(5))
    other, _ = typed_digits(20, np.random.default_rng(6))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_typed_digits_go_after_the_training_split_s_own():
    images = np.arange(300 * 784, dtype=np.int64).reshape(300, 28, 28).astype(np.uint8)
    mnist = {"train-images": images, "train-labels": np.arange(300) % 10}
    mnist |= {"test-images": images[:10], "test-labels": np.arange(10)}
    plain, stats = make_splits(mnist, 100, seed=0)
    typed = typed_share(0.25, 200, seed=3)
    grown, grown_stats = make_splits(mnist, 100, seed=0, extra=typed)
    assert len(grown["train"]) == 250 and grown_stats == stats  # the statistics: its own
    assert np.array_equal(grown["train"].X[:200], plain["train"].X)
    assert np.array_equal(grown["train"].y, np.concatenate([plain["train"].y, typed[1]]))
    assert np.array_equal(grown["train"].X[200:], typed[0].reshape(50, 784))
    assert np.array_equal(typed_share(0.25, 200, seed=3)[0], typed[0])  # drawn from the seed
    assert len(typed_share(0.0, 200, seed=3)[0]) == 0


def test_the_default_is_a_share_for_digits_and_none_for_other_data():
    mnist, fashion = TrainConfig(), TrainConfig(dataset="fashion-mnist")
    mnist.fit_data((28, 28), 10, "mnist", digits=True)
    fashion.fit_data((28, 28), 10, "fashion-mnist", digits=False)
    assert mnist.typed_digits == SHARE and fashion.typed_digits == 0
    with pytest.raises(ConfigError, match="--typed-digits 0"):
        TrainConfig(dataset="fashion-mnist", typed_digits=0.1).validate()
    with pytest.raises(ConfigError, match="typed_digits must be at least 0 and at most 1"):
        TrainConfig(typed_digits=1.5).validate()


def test_training_learns_from_them_and_records_the_share(tiny_mnist, tmp_path):
    default, none = tmp_path / "default.npz", tmp_path / "none.npz"
    assert run("train", *QUICK, "--out", default).exit_code == 0
    assert run("train", *QUICK, "--typed-digits", 0, "--out", none).exit_code == 0
    with_them, without = load_checkpoint(default), load_checkpoint(none)
    assert with_them.meta["options"]["typed_digits"] == SHARE
    assert without.meta["options"]["typed_digits"] == 0
    assert not np.array_equal(with_them.model.weights[0], without.model.weights[0])
    # validation and test stay MNIST's own: the same images, so the same normalization
    assert with_them.normalization == without.normalization
    shown = run("info", none, "--json")
    assert json.loads(shown.stdout)["options"]["typed_digits"] == 0  # not the default: shown


def test_fashion_mnist_refuses_them_with_exit_2(tmp_path):
    result = run("train", "--dataset", "fashion-mnist", "--typed-digits", 0.1, "--out", "m.npz")
    assert result.exit_code == 2 and "--typed-digits 0" in result.stderr


def test_a_run_saved_before_the_option_resumes_without_them(tiny_mnist, tmp_path):
    paused = tmp_path / "paused.npz"
    assert run("train", *QUICK, "--patience", 0, "--out", paused).exit_code == 0
    checkpoint = load_checkpoint(paused)
    assert resume_config(checkpoint, {"epochs": 3}).typed_digits == SHARE
    with np.load(paused) as npz:  # the file as a version before typed digits wrote it
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    del meta["options"]["typed_digits"]
    np.savez(paused, meta=np.array(json.dumps(meta)), **arrays)
    checkpoint = load_checkpoint(paused)
    assert resume_config(checkpoint, {"epochs": 3}).typed_digits == 0


def test_a_pillow_without_freetype_is_one_line_that_says_what_to_do(
    tiny_mnist, tmp_path, monkeypatch
):
    from PIL import ImageFont

    monkeypatch.setattr(ImageFont, "load_default", lambda size=None: ImageFont.ImageFont())
    result = run("train", *QUICK, "--out", tmp_path / "m.npz")
    assert result.exit_code == 1 and "FreeType" in result.stderr
    assert "--typed-digits 0" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()
    assert run("train", *QUICK, "--typed-digits", 0, "--out", tmp_path / "m.npz").exit_code == 0


def test_a_network_that_learned_them_reads_typed_images_through_predict(tiny_mnist, tmp_path):
    """Digits typed into PNG files, as a person's would be, read through predict's whole
    pipeline: learned from typed digits, most are read right; from the tiny set's bars
    alone, hardly any. So the typed digits reach the network as predict prepares an image."""
    from PIL import Image, ImageDraw, ImageFont

    from mlpcli import predict_images

    files, truth = [], []
    for k in range(40):
        page = Image.new("L", (90, 110), 255)
        font = ImageFont.load_default(60 + k % 3 * 10)
        ImageDraw.Draw(page).text((20 + k % 5, 10 + k % 7), str(k % 10), fill=0, font=font)
        page.save(tmp_path / f"typed-{k}.png")
        files.append(tmp_path / f"typed-{k}.png")
        truth.append(k % 10)
    args = ["--validation-size", "100", "--epochs", "20", "--layers", "784,64,10", "-q"]
    read = {}
    for share in (1, 0):
        out = tmp_path / f"share-{share}.npz"
        assert run("train", *args, "--typed-digits", share, "--out", out).exit_code == 0
        found = predict_images(load_checkpoint(out), files)
        read[share] = np.mean([f.prediction == t for f, t in zip(found, truth, strict=True)])
    assert read[1] >= 0.8 and read[0] <= 0.3, read
