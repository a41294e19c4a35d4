"""mlp train --resume: a run stopped and resumed ends where it would have ended unstopped."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ctrl_c_in_epoch, exited_cleanly

from mlpcli import load_checkpoint
from mlpcli.cli import cli

QUICK = ["--validation-size", "100", "--layers", "784,16,10", "--quiet", "--batch-size", "32"]
# plain SGD at a constant rate on undistorted images, which each recipe below changes
QUICK += ["--optimizer", "sgd", "--lr", "0.1", "--schedule", "constant", "--augment", "none"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_same_run(a_path, b_path):
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert a.meta["best_epoch"] == b.meta["best_epoch"]
    assert [h["validation_loss"] for h in a.meta["history"]] == pytest.approx(
        [h["validation_loss"] for h in b.meta["history"]], rel=1e-5
    )
    for x, y in zip(a.model.params, b.model.params, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    for name, array in a.resume.items():
        np.testing.assert_allclose(array, b.resume[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "recipe",
    [
        [],  # plain SGD: the compiled step where it was built
        ["--optimizer", "adam", "--lr", "0.003", "--dropout", "0.3", "--input-dropout", "0.1"],
        ["--optimizer", "nesterov", "--weight-decay", "1e-3", "--max-norm", "2"],
        ["--optimizer", "momentum", "--schedule", "plateau", "--lr-patience", "0"],
        ["--optimizer", "adamw", "--lr", "0.003", "--schedule", "step", "--lr-step-epochs", "1"],
        ["--augment", "affine,elastic", "--optimizer", "momentum"],  # the same distortions
    ],
)
def test_two_epochs_then_two_more_equal_four(tiny_mnist, tmp_path, recipe):
    straight, paused = tmp_path / "straight.npz", tmp_path / "paused.npz"
    assert run("train", *QUICK, *recipe, "--epochs", 4, "--out", straight).exit_code == 0
    assert run("train", *QUICK, *recipe, "--epochs", 2, "--out", paused).exit_code == 0
    assert load_checkpoint(paused).meta["resume"]["epoch"] == 2
    result = run("train", "--resume", paused, "--epochs", 4, "--quiet")
    assert result.exit_code == 0, result.output
    assert f"saved {paused}" in result.stdout  # the resumed file goes on
    assert_same_run(straight, paused)
    assert len(load_checkpoint(paused).meta["history"]) == 4


def test_a_run_stopped_with_ctrl_c_resumes(tiny_mnist, tmp_path, monkeypatch):
    recipe = ["--optimizer", "adam", "--lr", "0.003", "--dropout", "0.3", "--epochs", 4]
    straight, stopped = tmp_path / "straight.npz", tmp_path / "stopped.npz"
    assert run("train", *QUICK, *recipe, "--out", straight).exit_code == 0
    with monkeypatch.context() as patched:
        ctrl_c_in_epoch(patched, 3)
        assert run("train", *QUICK, *recipe, "--out", stopped).exit_code == 130
    assert load_checkpoint(stopped).meta["resume"]["epoch"] == 2
    assert run("train", "--resume", stopped, "--quiet").exit_code == 0  # --epochs 4 as saved
    assert_same_run(straight, stopped)


@pytest.fixture
def paused(tiny_mnist, tmp_path):
    path = tmp_path / "paused.npz"
    assert run("train", *QUICK, "--epochs", 2, "--patience", 2, "--out", path).exit_code == 0
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "2"], "give --epochs above 2"),
        (["--epochs", "5", "--lr", "0.5"], "--lr 0.5 conflicts with the run being resumed"),
        (["--epochs", "5", "--optimizer", "adam"], "--optimizer adam conflicts"),
        (["--epochs", "5", "--layers", "784,8,10"], "--layers 784,8,10 conflicts"),
    ],
)
def test_resume_refuses_conflicts_and_writes_nothing(paused, args, message):
    before = paused.read_bytes()
    result = run("train", "--resume", paused, *args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert exited_cleanly(result) and paused.read_bytes() == before


def test_resume_may_change_epochs_patience_and_engine(paused, tmp_path):
    out = tmp_path / "more.npz"
    args = ["--epochs", 3, "--patience", 4, "--engine", "reference", "--out", out, "-q"]
    result = run("train", "--resume", paused, *args)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).meta["options"]["patience"] == 4
    assert load_checkpoint(out).meta["engine"] == "reference"


def test_resume_refuses_a_version_1_checkpoint(paused, tmp_path):
    old = tmp_path / "v1.npz"
    with np.load(paused) as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith("resume.")}
    meta = json.loads(str(arrays.pop("meta")))
    meta["version"] = 1
    del meta["resume"]
    np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
    assert load_checkpoint(old).model.layers == [784, 16, 10]  # still loads for predict
    result = run("train", "--resume", old, "--epochs", 5)
    assert result.exit_code == 2 and "holds no resume state" in result.stderr


def test_resume_refuses_other_data(paused, tmp_path, monkeypatch):
    import gzip

    from conftest import idx_bytes

    from mlpcli.data import mnist as mnist_module

    name = mnist_module.MNIST_FILES["train-images"][0]
    folder = paused.parent / "tiny-mnist"
    images = np.full((600, 28, 28), 7, np.uint8)  # other pixels, other statistics
    raw = idx_bytes(images)
    (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
    import hashlib

    files = dict(mnist_module.MNIST_FILES)
    files["train-images"] = (name, hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(mnist_module, "MNIST_FILES", files)
    before = paused.read_bytes()
    result = run("train", "--resume", paused, "--epochs", 4, "-q")
    assert result.exit_code == 1 and "no longer matches" in result.stderr, result.output
    assert paused.read_bytes() == before


def test_resume_refuses_a_run_that_stopped_early_unless_patience_grows(tiny_mnist, tmp_path):
    out = tmp_path / "early.npz"
    args = [*QUICK, "--epochs", 30, "--patience", 1, "--min-delta", 10, "--out", out]
    assert run("train", *args).exit_code == 0
    meta = load_checkpoint(out).meta
    assert meta["stopped_early"], "the run was meant to stop early"
    result = run("train", "--resume", out, "--epochs", 40)
    assert result.exit_code == 2 and "larger --patience" in result.stderr
    done = meta["resume"]["epoch"]
    result = run("train", "--resume", out, "--epochs", done + 1, "--patience", 0, "-q")
    assert result.exit_code == 0, result.output


def test_resume_of_a_missing_file_is_one_line(tmp_path):
    result = run("train", "--resume", tmp_path / "none.npz")
    assert result.exit_code == 1 and "no checkpoint at" in result.stderr
    assert exited_cleanly(result)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda meta: meta["options"].update(lr="fast"), "options.lr must be a number"),
        (lambda meta: meta["resume"].pop("epoch"), "resume: epoch and waited must be whole"),
        (lambda meta: meta["resume"].update(waited=-1), "resume: epoch and waited must be whole"),
        (lambda meta: meta["resume"].update(best_watched=float("nan")), "best_watched must be"),
        (lambda meta: meta["resume"].update(epoch=1), "the history holds 2 epochs, not 1"),
        (lambda meta: meta["resume"].update(epoch=2.5), "resume: epoch and waited must be whole"),
        (lambda meta: meta.update(history="2 epochs"), "'history' must be a list of epochs"),
        (lambda meta: meta.update(test_accuracy=[0.9]), "'test_accuracy' must be a number"),
        (lambda meta: meta.update(interrupted="no"), "'interrupted' must be true or false"),
        (lambda meta: meta["options"].update(optimizer=3), "options.optimizer must be text"),
        (lambda meta: meta["options"].update(seed=None), "options.seed must be a whole number"),
        (lambda meta: meta.update(dataset_sha256="abc"), "'dataset_sha256' must map"),
        (lambda meta: meta["resume"].update(schedule="cosine"), "schedule must be an object"),
        (lambda meta: meta["resume"]["schedule"].update(best="low"), "schedule must be an"),
        (lambda meta: meta["resume"].update(rng={"shuffle": 3}), "resume: rng must hold"),
        (lambda meta: meta.update(best_epoch=-1), "'best_epoch' must be an epoch"),
    ],
)
def test_a_damaged_run_record_is_refused_in_one_line(paused, tmp_path, damage, message):
    """info, compare and --resume read these fields; a wrong type was a traceback there,
    and a resume state no run could make was taken or crashed."""
    with np.load(paused) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    damage(meta)
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, meta=np.array(json.dumps(meta)), **arrays)
    for command in (["train", "--resume", damaged, "--epochs", 5], ["info", damaged]):
        result = run(*command)
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert exited_cleanly(result) and len(result.stderr.strip().splitlines()) == 1


def test_negative_optimizer_steps_are_refused(paused, tmp_path):
    with np.load(paused) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["resume.optimizer.steps"] = np.array(-3, np.int64)
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **arrays)
    result = run("train", "--resume", damaged, "--epochs", 5)
    assert result.exit_code == 1 and "must count steps from 0, not -3" in result.stderr
