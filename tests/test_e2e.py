"""End to end on the real MNIST from ../shared/mnist, served on 127.0.0.1 as a mirror:
download into an empty cache, train, evaluate, predict on images made from test digits."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlpcli import load_checkpoint, load_mnist
from mlpcli.cli import cli

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "person_images.py"


def _person_images_module():
    spec = importlib.util.spec_from_file_location("person_images", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_evaluate_predict_on_real_mnist(real_mnist, serve, tmp_path, monkeypatch):
    server = serve(real_mnist)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLP_MNIST_MIRROR", server.url)
    monkeypatch.setenv("MLP_DATA_DIR", str(cache))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    trained = runner.invoke(cli, ["train", "--epochs", "2", "--layers", "784,64,10"])
    assert trained.exit_code == 0, trained.output
    served = sorted(p.name for p in real_mnist.glob("*.gz"))
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == served  # its own folder
    assert len(server.requests) == 4
    meta = load_checkpoint(tmp_path / "checkpoint.npz").meta
    assert meta["test_accuracy"] > 0.94 and len(meta["history"]) == 2

    evaluated = runner.invoke(cli, ["evaluate", "--json", "-q"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["accuracy"] == meta["test_accuracy"] and report["samples"] == 10_000
    assert len(server.requests) == 4  # evaluate used the cache

    people = _person_images_module()
    made = people.make_images(tmp_path / "images", count=40, seed=1, data_dir=cache)
    paths = [path for path, _ in made["paper"]] + [path for path, _ in made["jpeg"]]
    labels = [label for _, label in made["paper"]] + [label for _, label in made["jpeg"]]
    predicted = runner.invoke(cli, ["predict", *map(str, paths), "--json"])
    assert predicted.exit_code == 0, predicted.output
    guesses = [json.loads(line)["prediction"] for line in predicted.stdout.splitlines()]
    assert np.mean(np.array(guesses) == np.array(labels)) > 0.85


def test_real_mnist_shapes_and_checksums(real_mnist):
    mnist = load_mnist(real_mnist, ["http://127.0.0.1:9/never-asked/"], progress=False)
    assert mnist["train-images"].shape == (60_000, 28, 28)
    assert mnist["test-images"].shape == (10_000, 28, 28)
    assert np.bincount(mnist["test-labels"]).tolist()[:2] == [980, 1135]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_the_best_weights_and_exits_128_plus_it(real_mnist, tmp_path, signum, code):
    out = tmp_path / "interrupted.npz"
    command = [
        sys.executable,
        "-m",
        "mlpcli",
        "train",
        "--layers",
        "784,32,10",
        "--validation-size",
        "59000",
        "--batch-size",
        "1",
        "--epochs",
        "1000",
        "--patience",
        "0",
        "--out",
        str(out),
    ]
    env = {**os.environ, "MLP_DATA_DIR": str(real_mnist)}  # the files are used where they are
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        for line in process.stderr:
            if line.startswith("epoch   2  "):
                process.send_signal(signum)
                break
        rest = process.stderr.read()
        assert process.wait() == code, rest
    finally:
        watchdog.cancel()
    assert "the best weights so far were saved" in rest and "Traceback" not in rest
    meta = load_checkpoint(out).meta
    assert meta["interrupted"] and meta["best_epoch"] >= 1
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


@pytest.fixture(scope="module")
def mnist_subset(tmp_path_factory) -> Path:
    """The first 12,000 of MNIST's training images and its 10,000 test images, as a folder
    of IDX files (a dataset of its own: no typed digits are added)."""
    from conftest import SHARED_MNIST, idx_bytes

    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the real MNIST is not in {SHARED_MNIST}")
    mnist = load_mnist(SHARED_MNIST, progress=False)
    folder = tmp_path_factory.mktemp("mnist-subset")
    for key, name, count in (
        ("train-images", "train-images-idx3-ubyte", 12_000),
        ("train-labels", "train-labels-idx1-ubyte", 12_000),
        ("test-images", "t10k-images-idx3-ubyte", 10_000),
        ("test-labels", "t10k-labels-idx1-ubyte", 10_000),
    ):
        (folder / name).write_bytes(idx_bytes(mnist[key][:count]))
    return folder


@pytest.mark.parametrize(
    "options, rate",
    [
        (["--batch-size", "1"], 0.05 / 128),  # momentum's rate, in proportion to the batch
        (["--batch-size", "0"], 0.05 * 4),  # the full batch takes batch 512's
        (["--optimizer", "adam"], 0.001),
    ],
)
def test_the_default_rate_learns_at_any_batch_size_and_optimizer(
    mnist_subset, tmp_path, options, rate
):
    """Without --lr, each optimizer's own rate scaled to the batch size: per-sample SGD, the
    full batch (for its default 150 epochs) and Adam each pass 95% on the test images."""
    out = tmp_path / "m.npz"
    args = ["train", "--dataset", mnist_subset, "--validation-size", "2000", *options]
    result = CliRunner().invoke(cli, [str(a) for a in [*args, "--out", out]])
    assert result.exit_code == 0, result.output
    assert f"learning rate {rate:.3g}" in result.stderr
    meta = load_checkpoint(out).meta
    assert meta["options"]["lr"] == pytest.approx(rate)  # recorded as it was in force
    assert meta["history"][0]["learning_rate"] == pytest.approx(rate)
    assert meta["test_accuracy"] >= 0.95


def test_fashion_mnists_own_images_read_at_the_evaluate_accuracy(tmp_path):
    """A bright shirt that fills most of its dark frame is no blank page: the images a
    dataset is made of, saved as PNG either way round, read as the network reads the arrays."""
    from conftest import SHARED_MNIST, png_bytes

    from mlpcli.data import Split
    from mlpcli.data.datasets import load_dataset, resolve
    from mlpcli.prediction import predict_images

    shared = SHARED_MNIST.parent / "fashion-mnist"
    if not (shared / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not in {shared}")
    out = tmp_path / "fashion.npz"
    args = ["train", "--dataset", "fashion-mnist", "--data-dir", shared, "--epochs", 3]
    assert CliRunner().invoke(cli, [str(a) for a in [*args, "--out", out, "-q"]]).exit_code == 0
    checkpoint = load_checkpoint(out)
    test = load_dataset(resolve("fashion-mnist"), shared, progress=False, parts=("test",))
    images, labels = test["test-images"][:1000], test["test-labels"][:1000].astype(np.int64)
    split = Split(images.reshape(1000, -1), labels, checkpoint.normalization)
    expected = (checkpoint.model.logits(split).argmax(axis=1) == labels).mean()
    for flip in (False, True):  # as stored, and dark on light paper
        files = [png_bytes(255 - image if flip else image) for image in images]
        answers = predict_images(checkpoint, files, [str(i) for i in range(1000)])
        assert sum(not a.image.has_digit for a in answers) == 0
        read = np.mean([a.prediction == label for a, label in zip(answers, labels, strict=True)])
        assert read >= expected - 0.01, (flip, read, expected)
