"""--dataset: Fashion-MNIST from a loopback mirror, and folders of IDX files of any shape."""

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import exited_cleanly, idx_bytes
from PIL import Image

from mlpcli import load_checkpoint
from mlpcli.cli import cli
from mlpcli.data.datasets import FASHION_MNIST_CLASSES, named_datasets, resolve
from mlpcli.engines.compiled import available
from mlpcli.io.image import prepare_array

SHARED_FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "fashion-mnist"
NAMES = ("circle", "bar", "cross", "ring")
HEIGHT, WIDTH = 12, 10  # not 28x28, and not square


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def shapes(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Easy 12x10 pictures of 4 classes: class k lights column band k, with noise."""
    labels = rng.integers(0, 4, count).astype(np.uint8)
    images = rng.integers(0, 30, (count, HEIGHT, WIDTH)).astype(np.uint8)
    for k in range(4):
        images[labels == k, 2:10, 2 * k + 1 : 2 * k + 3] = 240
    return images, labels


def write_folder(folder: Path, arrays: dict, gzipped=("train-images",), classes=NAMES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "train-images": "train-images-idx3-ubyte",
        "train-labels": "train-labels-idx1-ubyte",
        "test-images": "t10k-images-idx3-ubyte",
        "test-labels": "t10k-labels-idx1-ubyte",
    }
    for key, array in arrays.items():
        raw = idx_bytes(array)
        if key in gzipped:
            (folder / f"{names[key]}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / names[key]).write_bytes(raw)
    if classes:
        (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    return folder


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(11)
    (train_images, train_labels), (test_images, test_labels) = shapes(800, rng), shapes(200, rng)
    arrays = {
        "train-images": train_images,
        "train-labels": train_labels,
        "test-images": test_images,
        "test-labels": test_labels,
    }
    return write_folder(tmp_path / "shapes", arrays), arrays


def test_an_idx_folder_trains_evaluates_and_predicts(idx_folder, tmp_path, monkeypatch):
    folder, arrays = idx_folder
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "cache"))
    out = tmp_path / "shapes.npz"
    args = ["--dataset", folder, "--validation-size", 100, "--epochs", 3, "--out", out, "-q"]
    trained = run("train", *args)
    assert trained.exit_code == 0, trained.output
    checkpoint = load_checkpoint(out)
    assert checkpoint.model.layers == [HEIGHT * WIDTH, 256, 4]  # the default net adapts
    assert checkpoint.meta["dataset"] == str(folder.resolve())
    assert checkpoint.image_shape == (HEIGHT, WIDTH) and checkpoint.class_names == list(NAMES)
    assert set(checkpoint.meta["dataset_sha256"]) == {
        "train-images",
        "train-labels",
        "test-images",
        "test-labels",
    }
    assert checkpoint.meta["test_accuracy"] > 0.9
    if available():
        assert checkpoint.meta["engine"] == "compiled"  # it reads any uint8 pixels
    assert not (tmp_path / "cache").exists()  # a folder is read in place, never cached

    evaluated = run("evaluate", out, "--json", "-q")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["accuracy"] == checkpoint.meta["test_accuracy"] and report["samples"] == 200
    text = run("evaluate", out, "-q").stdout
    assert "ring" in text and "4 images" not in text

    picture = np.full((60, 50), 255, np.uint8)  # dark marks on white paper, as a photo is
    k = 2
    picture[10:50, 5 * (2 * k + 1) : 5 * (2 * k + 3)] = 0
    picture[:, :2] = 0
    Image.fromarray(picture).save(tmp_path / "picture.png")
    predicted = run("predict", tmp_path / "picture.png", "--checkpoint", out, "--json")
    assert predicted.exit_code == 0, predicted.output
    answer = json.loads(predicted.stdout)
    assert answer["label"] == NAMES[answer["prediction"]]
    assert len(answer["probabilities"]) == 4
    plain = run("predict", tmp_path / "picture.png", "--checkpoint", out)
    assert plain.stdout.startswith(f"{tmp_path / 'picture.png'}: {answer['label']} (")


def test_a_folder_without_class_names_numbers_its_classes(idx_folder, tmp_path):
    folder, _ = idx_folder
    (folder / "classes.txt").unlink()
    out = tmp_path / "numbered.npz"
    args = ["--dataset", folder, "--validation-size", 100, "--epochs", 1, "--out", out, "-q"]
    assert run("train", *args).exit_code == 0
    assert load_checkpoint(out).class_names == ["0", "1", "2", "3"]


def test_layers_that_do_not_fit_the_folder_say_what_fits(idx_folder, tmp_path):
    folder, _ = idx_folder
    result = run("train", "--dataset", folder, "--layers", "784,32,10", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "must start with 120 and end with 4" in result.output
    assert "--layers 120,32,4" in result.output
    assert not (tmp_path / "x").exists()


def _broken(arrays: dict, fault: str) -> tuple[dict, tuple, str]:
    """The arrays with one fault, the keys to leave out, and what the error must say."""
    arrays = dict(arrays)
    if fault == "missing":
        return arrays, ("test-labels",), "lacks t10k-labels-idx1-ubyte"
    if fault == "counts":
        arrays["train-labels"] = arrays["train-labels"][:-5]
        return arrays, (), "holds 795 labels but"
    if fault == "labels":
        arrays["test-labels"] = arrays["test-labels"].copy()
        arrays["test-labels"][3] = 7
        return arrays, (), "holds label 7, beyond the 4 classes"
    if fault == "sizes":
        arrays["test-images"] = np.zeros((200, HEIGHT + 1, WIDTH), np.uint8)
        return arrays, (), "holds 13x10 images but the training images are 12x10"
    raise ValueError(fault)


@pytest.mark.parametrize("fault", ["missing", "counts", "labels", "sizes"])
def test_a_broken_folder_is_one_line_naming_the_file(idx_folder, tmp_path, monkeypatch, fault):
    _, good = idx_folder
    arrays, left_out, message = _broken(good, fault)
    folder = write_folder(
        tmp_path / "broken", {k: a for k, a in arrays.items() if k not in left_out}
    )
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "cache"))
    result = run("train", "--dataset", folder, "--out", tmp_path / "x.npz", "-q")
    assert result.exit_code == 1
    assert message in result.stderr and str(folder) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and exited_cleanly(result)
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "cache").exists()


def test_labels_beyond_the_class_names_are_refused(idx_folder, tmp_path):
    folder, arrays = idx_folder
    write_folder(folder, arrays, classes=NAMES[:3])
    result = run("train", "--dataset", folder, "--out", tmp_path / "x.npz")
    assert result.exit_code == 1
    assert "holds label 3, beyond the 3 classes 0..2 that classes.txt names" in result.stderr


def test_an_unknown_dataset_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "cache"))
    result = run("train", "--dataset", "kmnist", "--out", tmp_path / "x.npz")
    assert result.exit_code == 2
    assert "unknown dataset 'kmnist': give mnist or fashion-mnist, or a folder" in result.output
    assert not (tmp_path / "cache").exists()


def test_each_named_dataset_has_its_mirror_variable_and_sums():
    named = named_datasets()
    assert named["mnist"].mirror_env == "MLP_MNIST_MIRROR"
    assert named["fashion-mnist"].mirror_env == "MLP_FASHION_MNIST_MIRROR"
    assert all(m.startswith("https://") for m in named["mnist"].mirrors)
    if (SHARED_FASHION / "SHA256SUMS.idx").is_file():
        sums = dict(
            reversed(line.split())
            for line in (SHARED_FASHION / "SHA256SUMS.idx").read_text().splitlines()
        )
        assert {name: sha for name, sha in named["fashion-mnist"].files.values()} == sums
    assert resolve("fashion-mnist").names(10) == list(FASHION_MNIST_CLASSES)


def test_objects_are_trimmed_fitted_along_the_longer_side_and_centred():
    photo = np.ones((300, 200), np.float32)  # a dark 40x100 object on white
    photo[100:200, 80:120] = 0.1
    prepared = prepare_array(photo, "objects", (28, 28))
    rows, cols = np.nonzero(prepared.pixels > 0.5)
    assert (rows.min(), rows.max()) == (0, 27)  # the longer side fills the image
    assert 13 - 6 <= cols.min() and cols.max() <= 14 + 6  # 28 * 40 / 100 wide, centred
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 0.5


@pytest.mark.e2e
def test_fashion_mnist_from_a_loopback_mirror(serve, tmp_path, monkeypatch):
    if not (SHARED_FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not at {SHARED_FASHION}")
    server = serve(SHARED_FASHION)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLP_FASHION_MNIST_MIRROR", server.url)
    monkeypatch.setenv("MLP_MNIST_MIRROR", "http://127.0.0.1:9/never-asked/")
    monkeypatch.setenv("MLP_DATA_DIR", str(cache))
    out = tmp_path / "fashion.npz"
    args = ["--dataset", "fashion-mnist", "--layers", "784,64,10", "--epochs", 2]
    trained = run("train", *args, "--out", out, "-q")
    assert trained.exit_code == 0, trained.output
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == sorted(
        p.name for p in SHARED_FASHION.glob("*.gz")
    )
    checkpoint = load_checkpoint(out)
    assert checkpoint.meta["dataset"] == "fashion-mnist" and checkpoint.preparation == "objects"
    assert checkpoint.class_names == list(FASHION_MNIST_CLASSES)
    assert checkpoint.meta["test_accuracy"] > 0.8

    evaluated = run("evaluate", out, "--json", "-q")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["accuracy"] == checkpoint.meta["test_accuracy"]
    assert len(server.requests) == 4  # evaluate read the cache
    refused = run("evaluate", out, "--dataset", "mnist", "-q")  # 28x28 and 10 classes, but
    assert refused.exit_code == 1 and "are not this checkpoint's" in refused.stderr

    from mlpcli.data.datasets import load_dataset

    test = load_dataset(resolve("fashion-mnist"), cache, progress=False, parts=("test",))
    boot = 255 - test["test-images"][0]  # as a product photo: dark on white, 3x larger
    Image.fromarray(boot).resize((84, 84)).save(tmp_path / "item.png")
    predicted = run("predict", tmp_path / "item.png", "--checkpoint", out, "--json")
    answer = json.loads(predicted.stdout)
    assert answer["label"] == FASHION_MNIST_CLASSES[test["test-labels"][0]] == "Ankle boot"


def test_a_run_whose_folder_moved_is_measured_where_dataset_says(idx_folder, tmp_path):
    folder, _ = idx_folder
    out = tmp_path / "m.npz"
    args = ["--dataset", folder, "--validation-size", 100, "--epochs", 1, "--out", out, "-q"]
    assert run("train", *args).exit_code == 0
    moved = folder.rename(tmp_path / "moved")
    lost = run("evaluate", out)
    assert lost.exit_code == 1 and exited_cleanly(lost)
    assert f"trained on {folder.resolve()}, which is not there now" in lost.stderr
    assert "give --dataset with where its files are" in lost.stderr
    found = run("evaluate", out, "--dataset", moved, "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["dataset"] == str(moved.resolve())
    if importlib.util.find_spec("matplotlib") is not None:
        report = tmp_path / "report.html"
        made = run("report", out, "--dataset", moved, "--out", report, "-q")
        assert made.exit_code == 0, made.output
        assert "Confusion matrix (test, 200 images)" in report.read_text()


@pytest.mark.parametrize(
    "names, message",
    [
        (["a" * 201, "b"], "line 1: a name of 201 characters, over 200; shorten it"),
        (["cat", "dog", "cat"], "names 'cat' twice (lines 1 and 3)"),
        ([f"c{k}" for k in range(1001)], "names 1001 classes, more than 1000"),
    ],
)
def test_class_names_a_checkpoint_could_not_hold_are_refused_before_training(
    idx_folder, tmp_path, names, message
):
    folder, _ = idx_folder
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    out = tmp_path / "m.npz"
    result = run("train", "--dataset", folder, "--epochs", 1, "--out", out, "-q")
    assert result.exit_code == 2 and message in result.output, result.output
    assert exited_cleanly(result) and not out.exists()


def test_a_long_classes_file_is_read_to_its_limit_and_cut_at_a_line(idx_folder):
    from mlpcli.data.datasets import CLASSES_FILE_LIMIT, resolve

    folder, _ = idx_folder
    names = ["circle", "square", "triangle"]
    padding = "\n" * (CLASSES_FILE_LIMIT - 30)  # blank lines, then a name across the limit
    (folder / "classes.txt").write_text("\n".join(names) + padding + "é" * 40 + "\n")
    assert resolve(str(folder)).class_names == tuple(names)  # no half a character: no error


def test_a_classes_file_naming_more_classes_than_the_labels_use_says_so(idx_folder, tmp_path):
    folder, arrays = idx_folder
    used = len(np.unique(arrays["train-labels"]))
    (folder / "classes.txt").write_text("\n".join(f"shape {k}" for k in range(used + 2)) + "\n")
    out = tmp_path / "m.npz"
    args = ["--dataset", folder, "--validation-size", 100, "--epochs", 1, "--out", out, "-q"]
    result = run("train", *args)
    assert result.exit_code == 0, result.output
    said = f"note: classes.txt names {used + 2} classes, and 2 of them label no training image"
    assert said in result.stderr
    assert load_checkpoint(out).model.layers[-1] == used + 2
