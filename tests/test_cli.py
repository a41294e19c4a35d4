import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ctrl_c_in_epoch, exited_cleanly
from PIL import Image

from mlpcli import load_checkpoint
from mlpcli.cli import cli
from mlpcli.errors import MlpError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

QUICK = ["--validation-size", "100", "--epochs", "2", "--layers", "784,16,10", "--quiet"]


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


@pytest.fixture
def trained(tiny_mnist, tmp_path):
    out = tmp_path / "model.npz"
    result = run("train", *QUICK, "--batch-size", "16", "--out", out)
    assert result.exit_code == 0, result.output
    return out, result


def test_train_writes_a_checkpoint_and_reports(trained):
    out, result = trained
    assert f"saved {out}" in result.stdout
    assert "best epoch" in result.stdout and "test accuracy" in result.stdout
    meta = load_checkpoint(out).meta
    assert meta["options"]["batch_size"] == 16 and meta["layers"] == [784, 16, 10]
    assert len(meta["history"]) == 2 and meta["best_epoch"] in (1, 2)
    assert meta["test_accuracy"] > 0.9
    assert f"test accuracy {100 * meta['test_accuracy']:.2f}%" in result.stdout


def test_progress_goes_to_stderr_results_to_stdout(tiny_mnist, tmp_path):
    result = run("train", *QUICK[:-1], "--out", tmp_path / "m.npz")
    assert result.exit_code == 0
    assert "epoch   1  lr 0.05  train loss" in result.stderr and "validation loss" in result.stderr
    assert "epoch   1" not in result.stdout and "saved" in result.stdout


def test_same_command_same_checkpoint(tiny_mnist, tmp_path):
    for name in ("a.npz", "b.npz"):
        assert run("train", *QUICK, "--out", tmp_path / name).exit_code == 0
    a, b = load_checkpoint(tmp_path / "a.npz"), load_checkpoint(tmp_path / "b.npz")
    for x, y in zip(a.model.weights, b.model.weights, strict=True):
        np.testing.assert_array_equal(x, y)


def test_existing_checkpoint_is_never_silently_replaced(trained):
    out, _ = trained
    before = out.read_bytes()
    result = run("train", *QUICK, "--out", out)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_bytes() == before
    assert run("train", *QUICK, "--seed", "3", "--out", out, "--force").exit_code == 0
    assert out.read_bytes() != before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "784,,10"], "comma-separated list"),
        (["--layers", "abc"], "comma-separated list"),
        (["--layers", "784"], "at least an input and an output"),
        (["--layers", "784,-5,10"], "all positive"),
        (["--layers", "785,64,10"], "must start with 784"),
        (["--layers", "784,64,9"], "end with 10"),
        (["--lr", "0"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "lr must be a positive number"),
        (["--lr", "inf"], "lr must be a positive number"),
        (["--epochs", "0"], "--epochs"),
        (["--patience", "-1"], "--patience"),
        (["--activation", "swish"], "--activation"),
        (["--init", "ones"], "--init"),
        (["--loss", "hinge"], "--loss"),
        (["--seed", "-1"], "--seed"),
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--dropout", "1"], "--dropout"),
        (["--dropout", "-0.1"], "--dropout"),
        (["--input-dropout", "1.5"], "--input-dropout"),
        (["--weight-decay", "-0.01"], "--weight-decay"),
        (["--momentum", "1"], "--momentum"),
        (["--beta1", "1"], "--beta1"),
        (["--beta2", "-0.5"], "--beta2"),
        (["--eps", "0"], "--eps"),
        (["--max-norm", "-1"], "--max-norm"),
        (["--schedule", "exponential"], "--schedule"),
        (["--lr-factor", "1"], "--lr-factor"),
        (["--warmup-epochs", "5", "--epochs", "5"], "warmup_epochs 5 must be fewer"),
        (["--schedule", "plateau", "--lr-patience", "5"], "lr_patience 5 must be below patience"),
        (["--engine", "numpy", "--optimizer", "adam"], "--engine numpy cannot train this"),
    ],
)
def test_bad_options_are_usage_errors_and_write_nothing(tiny_mnist, tmp_path, args, message):
    result = run("train", "--out", tmp_path / "m.npz", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert exited_cleanly(result) and not (tmp_path / "m.npz").exists()


def test_config_file_with_flags_winning(tiny_mnist, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        "layers = [784, 12, 10]\nlr = 0.5\nbatch-size = 8\nepochs = 1\n"
        'validation-size = 50\nactivation = "tanh"\n'
    )
    out = tmp_path / "m.npz"
    result = run("train", "--config", config, "--lr", "0.05", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    options = load_checkpoint(out).meta["options"]
    assert options["lr"] == 0.05  # the flag wins
    assert (options["batch_size"], options["epochs"], options["layers"]) == (8, 1, [784, 12, 10])
    assert options["activation"] == "tanh" and options["init"] == "glorot-uniform"


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "cannot read"),
        ("layers = [784, 10", "is not valid TOML"),
        ("learning_rate = 0.1", "unknown key 'learning_rate'"),
        ('epochs = "many"', "epochs = 'many'"),
        ('activation = "swish"', "activation = 'swish'"),
    ],
)
def test_bad_config_files_are_usage_errors(tmp_path, text, message):
    config = tmp_path / "c.toml"
    if text is not None:
        config.write_text(text)
    result = run("train", "--config", config, "--out", tmp_path / "m.npz")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "m.npz").exists()


SHIPPED = {"default", "per-sample", "nielsen", "wide", "regularized", "fast99", "record", "fashion"}
SHIPPED |= {"plain"}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("default", {"typed_digits": 0.08, "augment": "elastic", "optimizer": "momentum"}),
        ("per-sample", {"batch_size": 1}),
        (
            "nielsen",
            {"layers": [784, 30, 10], "activation": "sigmoid", "loss": "mse", "batch_size": 10},
        ),
        ("wide", {"layers": [784, 800, 10]}),
        (
            "regularized",
            {"optimizer": "adam", "input_dropout": 0.2, "monitor": "accuracy", "patience": 0},
        ),
        ("fast99", {"augment": "elastic", "layers": [784, 800, 10]}),
        ("record", {"augment": "elastic", "layers": [784, 1024, 1024, 10], "typed_digits": 0}),
        ("fashion", {"dataset": "fashion-mnist", "dropout": 0.3}),
        ("plain", {"optimizer": "sgd", "lr": 0.1, "schedule": "constant", "augment": ""}),
    ],
)
def test_shipped_configs_are_valid(name, expected, tmp_path, monkeypatch):
    assert {p.stem for p in CONFIGS.glob("*.toml")} == SHIPPED  # each is checked here
    captured = []

    def stop_before_training(config, *args, **kwargs):
        captured.append(config)
        raise MlpError("stopped before training")

    monkeypatch.setattr("mlpcli.api.train", stop_before_training)
    monkeypatch.chdir(tmp_path)  # a shipped config is found by name from any folder
    for given in (CONFIGS / f"{name}.toml", name):
        result = run("train", "--config", given, "--out", tmp_path / "m.npz")
        assert result.exit_code == 1 and "stopped before training" in result.stderr, result.output
    by_path, by_name = captured
    assert by_name == by_path
    by_path.validate()
    for key, value in expected.items():
        assert getattr(by_path, key) == value


def test_config_list_names_each_shipped_config_with_a_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train", "--config", "list")
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.stdout.splitlines()[:-1]]
    assert listed == sorted(SHIPPED)
    assert "Simard et al. 2003" in result.stdout  # the first sentence, not cut at "al."
    assert all(len(line) <= 80 for line in result.stdout.splitlines()[:-1])


def test_a_config_name_that_is_neither_file_nor_shipped_is_a_usage_error(tmp_path):
    result = run("train", "--config", "fast98", "--out", tmp_path / "m.npz")
    assert result.exit_code == 2 and "no shipped config of that name" in result.stderr
    assert "fast99" in result.stderr and "--config list" in result.stderr
    assert exited_cleanly(result)


def test_default_toml_writes_out_the_defaults_of_mlp_train(tmp_path, monkeypatch):
    from dataclasses import asdict

    captured = []

    def stop_before_training(config, *args, **kwargs):
        captured.append(config)
        raise MlpError("stopped before training")

    monkeypatch.setattr("mlpcli.api.train", stop_before_training)
    for args in (["--config", CONFIGS / "default.toml"], []):
        assert run("train", *args, "--out", tmp_path / "m.npz").exit_code == 1
    written, default = captured
    for config in captured:
        config.fit_data((28, 28), 10, "mnist", digits=True)  # layers and typed_digits resolved
    assert asdict(written) | {"init": written.resolved_init} == asdict(default) | {
        "init": default.resolved_init
    }


def test_zeros_init_warns_that_it_cannot_learn(tiny_mnist, tmp_path):
    result = run("train", *QUICK, "--init", "zeros", "--out", tmp_path / "m.npz")
    assert "cannot learn" in result.stderr


def test_divergence_exits_1_without_a_checkpoint(tiny_mnist, tmp_path):
    result = run("train", *QUICK, "--lr", "1e9", "--out", tmp_path / "m.npz")
    assert result.exit_code == 1
    assert "diverged" in result.stderr and "--lr" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.glob("*.npz")) == [] and list(tmp_path.glob(".*part")) == []


def test_ctrl_c_saves_the_best_weights_and_exits_130(tiny_mnist, tmp_path, monkeypatch):
    ctrl_c_in_epoch(monkeypatch, 2)
    out = tmp_path / "m.npz"
    result = run("train", *QUICK, "--out", out)
    assert result.exit_code == 130
    assert "best weights so far were saved" in result.stderr
    assert load_checkpoint(out).meta["best_epoch"] == 1


def test_evaluate_matches_what_training_reported(trained, tiny_mnist):
    out, _ = trained
    meta = load_checkpoint(out).meta
    for split in ("test", "validation"):
        result = run("evaluate", out, "--split", split, "--json", "-q")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["accuracy"] == meta[f"{split}_accuracy"]
        assert report["loss"] == pytest.approx(meta[f"{split}_loss"])
        assert len(report["confusion_matrix"]) == 10 and len(report["per_class"]) == 10
        assert sum(map(sum, report["confusion_matrix"])) == (200 if split == "test" else 100)


def test_evaluate_text_report(trained, tiny_mnist):
    out, _ = trained
    result = run("evaluate", out, "-q")
    assert result.exit_code == 0
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout
    assert "precision" in result.stdout and len(result.stdout.splitlines()) > 25


def test_evaluate_without_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("evaluate")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no checkpoint at checkpoint.npz; train one with `mlp train` or give the path of one"
    )


def _digit_png(path, value=0):
    image = np.full((60, 50), 255, np.uint8)
    image[10:50, 22:28] = value  # a dark vertical stroke: a "1"
    Image.fromarray(image).save(path)
    return path


def test_predict_json_show_and_blank_warning(trained, tmp_path):
    out, _ = trained
    digit = _digit_png(tmp_path / "one.png")
    blank = _digit_png(tmp_path / "blank.png", value=255)
    result = run("predict", digit, blank, "--checkpoint", out, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(digit), str(blank)]
    assert [line["blank"] for line in lines] == [False, True]  # scripts can tell
    for line in lines:
        assert sum(line["probabilities"]) == pytest.approx(1)
        assert line["prediction"] == int(np.argmax(line["probabilities"]))
    assert "blank.png holds no digit" in result.stderr
    shown = run("predict", digit, "--checkpoint", out, "--show")
    assert shown.exit_code == 0
    drawing = shown.stdout.splitlines()[1:]
    assert len(drawing) == 28 and "@" in "".join(drawing)
    assert "next" in shown.stdout.splitlines()[0]


def test_predict_bad_image_is_one_line_exit_1(trained, tmp_path):
    out, _ = trained
    (tmp_path / "x.png").write_text("no image here")
    result = run("predict", tmp_path / "x.png", "--checkpoint", out)
    assert result.exit_code == 1
    formats = "PNG, JPEG, GIF, BMP, TIFF, WEBP, PPM"
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'x.png'} is not an image mlpcli reads ({formats})"
    ]


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "mlpcli", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "Usage: mlp" in result.stdout and "train" in result.stdout


def test_evaluate_an_empty_validation_split_is_a_clear_error(tiny_mnist, tmp_path):
    out = tmp_path / "m.npz"
    assert run("train", *QUICK, "--validation-size", "0", "--out", out).exit_code == 0
    result = run("evaluate", out, "--split", "validation", "--json", "-q")
    assert result.exit_code == 1
    assert "no validation split" in result.stderr and result.stdout == ""


def test_evaluate_refuses_a_checkpoint_that_does_not_fit_mnist(tmp_path, monkeypatch):
    from mlpcli import MLP, save_checkpoint

    model = MLP.initialize([100, 8, 10], np.random.default_rng(0))
    save_checkpoint(tmp_path / "m.npz", model, {"normalization": {"mean": 0.1, "std": 0.3}})
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "never-created"))
    monkeypatch.setenv("MLP_MNIST_MIRROR", "http://127.0.0.1:9/")
    result = run("evaluate", tmp_path / "m.npz", "-q")
    assert result.exit_code == 1 and "do not fit mnist" in result.stderr
    assert not (tmp_path / "never-created").exists()  # refused before any data was loaded


def test_logs_get_epoch_lines_but_no_bar_frames(tiny_mnist, tmp_path):
    result = run("train", *QUICK[:-1], "--out", tmp_path / "m.npz")  # stderr is no terminal
    assert result.exit_code == 0
    assert "epoch   1  lr" in result.stderr and "epoch   2  lr" in result.stderr
    assert "batch/s" not in result.stderr and "\r" not in result.stderr


def test_a_run_that_learned_nothing_says_why_and_what_to_change():
    from mlpcli.api import TrainConfig, did_not_learn

    per_sample = TrainConfig(batch_size=1, lr=0.1)
    warning = did_not_learn(per_sample, {"validation_accuracy": 0.11})
    assert (
        "did not learn" in warning
        and "leave --lr out for momentum's rate at batch 1, 0.00039" in warning
    )
    adam = TrainConfig(optimizer="adam", lr=0.1)
    assert "leave --lr out for its rate at this batch size, 0.001" in did_not_learn(
        adam, {"validation_accuracy": 0.098}
    )
    assert "--lr 0.01" in did_not_learn(TrainConfig(lr=0.1), {"train_accuracy": 0.1})
    assert did_not_learn(per_sample, {"validation_accuracy": 0.9}) is None


def test_a_missing_compiled_step_names_the_source_folder_cause():
    from mlpcli.engines.compiled import not_built_reason

    reason = not_built_reason()  # this checkout has the C file beside the package's modules
    assert "source folder" in reason and "pip install -e ." in reason


def test_each_new_best_epoch_is_marked_and_the_summary_gives_the_time(tiny_mnist, tmp_path):
    result = run("train", *QUICK[:-1], "--out", tmp_path / "m.npz")
    first = next(line for line in result.stderr.splitlines() if line.startswith("epoch   1"))
    assert first.endswith("*best")  # the first epoch is always the best so far
    assert "s of training); best epoch" in result.stdout
    meta = load_checkpoint(tmp_path / "m.npz").meta
    assert meta["history"][0]["improved"] is True


def test_predict_takes_folders_and_quoted_globs(trained, tmp_path):
    out, _ = trained
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.new("L", (40, 40), 255).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    result = run("predict", folder, str(folder / "b.*"), "--checkpoint", out, "--json")
    assert result.exit_code == 0, result.output
    files = [json.loads(line)["file"] for line in result.stdout.splitlines()]
    assert files == [str(folder / "a.jpg"), str(folder / "b.png"), str(folder / "b.png")]
    result = run("predict", str(tmp_path / "none" / "*.png"), "--checkpoint", out)
    assert result.exit_code == 1 and "no file matches" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("predict", empty, "--checkpoint", out)
    assert result.exit_code == 1 and "holds no image" in result.stderr


def test_evaluate_takes_the_checkpoint_as_predict_does(trained, tiny_mnist):
    out, _ = trained
    by_option = run("evaluate", "--checkpoint", out, "--json")
    by_argument = run("evaluate", out, "--json")
    assert by_option.exit_code == by_argument.exit_code == 0
    assert json.loads(by_option.stdout) == json.loads(by_argument.stdout)
    both = run("evaluate", out, "--checkpoint", out)
    assert both.exit_code == 2 and "give the checkpoint once" in both.stderr


def test_the_log_gets_a_row_per_epoch_and_a_resumed_run_appends(tiny_mnist, tmp_path):
    from mlpcli.report.log import COLUMNS, read_log

    for name in ("run.csv", "run.jsonl"):
        log, out = tmp_path / name, tmp_path / f"{name}.npz"
        args = [*QUICK, "--patience", 0, "--out", out, "--log", log]
        assert run("train", *args, "--epochs", 2).exit_code == 0
        rows = read_log(log)
        assert [r["epoch"] for r in rows] == [1, 2] and list(rows[0]) == list(COLUMNS)
        history = load_checkpoint(out).meta["history"]
        assert rows[1]["validation_accuracy"] == pytest.approx(history[1]["validation_accuracy"])
        again = run("train", *QUICK, "--out", tmp_path / "other.npz", "--log", log)
        assert again.exit_code == 2 and "already exists; choose another file with --log" in (
            again.output
        )
        resumed = run("train", "--resume", out, "--epochs", 4, "--log", log, "-q")
        assert resumed.exit_code == 0, resumed.output
        assert [r["epoch"] for r in read_log(log)] == [1, 2, 3, 4]
    assert log.read_text().count("{") == 4  # one JSON object a line
    assert (tmp_path / "run.csv").read_text().startswith(",".join(COLUMNS) + "\n")


def test_info_shows_the_run_at_a_glance(tiny_mnist, tmp_path):
    out = tmp_path / "m.npz"
    args = [*QUICK, "--optimizer", "adam", "--lr", "0.003", "--out", out]
    assert run("train", *args).exit_code == 0
    shown = run("info", out, "--json")
    assert shown.exit_code == 0, shown.output
    about = json.loads(shown.stdout)
    meta = load_checkpoint(out).meta
    assert about["dataset"] == "mnist" and about["layers"] == [784, 16, 10]
    assert about["options"]["optimizer"] == "adam" and about["options"]["lr"] == 0.003
    assert "batch_size" not in about["options"]  # the defaults are left out
    assert "typed_digits" not in about["options"]  # MNIST's default share, resolved by training
    assert about["epochs"] == 2 and about["best_epoch"] == meta["best_epoch"]
    assert about["test_accuracy"] == meta["test_accuracy"] and about["can_resume"]
    text = run("info", "--checkpoint", out).stdout
    assert "--lr 0.003" in text and "--optimizer adam" in text and "784,16,10 relu" in text
    assert run("info", tmp_path / "missing.npz").exit_code == 1


def test_a_log_that_cannot_be_written_warns_once_and_the_run_is_saved(
    tiny_mnist, tmp_path, monkeypatch
):
    """A full disk under --log stops the log, not the run."""
    import errno

    from mlpcli.report.log import COLUMNS, EpochLog, read_log

    real_write, rows = EpochLog.write, []

    def fills_the_disk(self, record):
        if rows:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        rows.append(record)
        real_write(self, record)

    monkeypatch.setattr(EpochLog, "write", fills_the_disk)
    log, out = tmp_path / "run.csv", tmp_path / "m.npz"
    result = run("train", *QUICK, "--epochs", 3, "--patience", 0, "--out", out, "--log", log)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: cannot write the log") == 1
    assert "No space left on device" in result.stderr
    assert len(load_checkpoint(out).meta["history"]) == 3  # the run went on and was saved
    assert [r["epoch"] for r in read_log(log)] == [1] and list(read_log(log)[0]) == list(COLUMNS)


def test_log_is_held_to_the_rules_of_out(tiny_mnist, tmp_path):
    out = tmp_path / "m.npz"
    target = tmp_path / "target.csv"
    target.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for log, message in (
        (link, "--log " + str(link) + " is a symbolic link"),
        (fifo, "is not a regular file"),
        (out, "is --out too"),
        (tmp_path / "missing" / "run.csv", "the folder of --log"),
    ):
        result = run("train", *QUICK, "--out", out, "--log", log, "--force")
        assert result.exit_code == 2 and message in result.output, result.output
        assert isinstance(result.exception, SystemExit)
    assert target.read_text() == "keep me\n" and not out.exists()


def test_a_run_that_fails_before_its_first_epoch_leaves_no_log(tiny_mnist, tmp_path):
    log = tmp_path / "run.csv"
    result = run("train", *QUICK, "--layers", "100,10", "--out", tmp_path / "m.npz", "--log", log)
    assert result.exit_code == 2 and "does not fit" in result.output  # known once data loads
    assert not log.exists()


def test_train_says_which_engine_auto_took_and_why_not_the_others(tiny_mnist, tmp_path):
    loud = [a for a in QUICK if a != "--quiet"]
    result = run("train", *loud, "--optimizer", "adam", "--out", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    engine = load_checkpoint(tmp_path / "m.npz").meta["engine"]
    said = [line for line in result.stderr.splitlines() if line.startswith("engine: ")]
    assert len(said) == 1 and said[0].startswith(f"engine: {engine}")
    assert "; not numpy: its fused steps are plain SGD's" in said[0]
    assert "learning rate 0.001: adam's default at batch 128" in result.stderr


def test_the_option_reference_names_every_option_of_mlp_train():
    """docs/options.md is the full reference the README links: it cannot fall behind."""
    from mlpcli.cli.train import train

    reference = (Path(__file__).resolve().parents[1] / "docs" / "options.md").read_text()
    named = {flag for param in train.params for flag in param.opts if flag.startswith("--")}
    missing = sorted(flag for flag in named - {"--help"} if f"`{flag}" not in reference)
    assert not missing, f"docs/options.md does not name {missing}"
