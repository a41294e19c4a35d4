import json
import pickle

import numpy as np
import pytest

from mlpcli.errors import CheckpointError
from mlpcli.io.checkpoint import load_checkpoint, save_checkpoint
from mlpcli.nn.model import MLP

META = {"normalization": {"mean": 0.13, "std": 0.31}, "dataset": "mnist"}


def _model(activation="leaky-relu") -> MLP:
    return MLP.initialize(
        [784, 8, 6, 10], np.random.default_rng(0), activation, "he-normal", "mse", leaky_slope=0.2
    )


def _arrays(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def test_round_trip_keeps_weights_and_meta(tmp_path):
    model = _model()
    save_checkpoint(tmp_path / "c.npz", model, META)
    loaded = load_checkpoint(tmp_path / "c.npz")
    assert loaded.model.layers == [784, 8, 6, 10]
    assert (loaded.model.activation, loaded.model.loss) == ("leaky-relu", "mse")
    assert loaded.model.leaky_slope == 0.2
    assert loaded.meta["format"] == "mlpcli-checkpoint" and loaded.meta["version"] == 2
    assert loaded.normalization == (0.13, 0.31)
    for a, b in zip(
        model.weights + model.biases, loaded.model.weights + loaded.model.biases, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    X = np.random.default_rng(1).normal(size=(3, 784)).astype(np.float32)
    np.testing.assert_array_equal(model.logits(X), loaded.model.logits(X))


def test_documented_layout(tmp_path):
    save_checkpoint(tmp_path / "c.npz", _model(), META)
    arrays = _arrays(tmp_path / "c.npz")
    assert sorted(arrays) == ["W1", "W2", "W3", "b1", "b2", "b3", "meta"]
    assert arrays["W2"].shape == (8, 6) and arrays["W2"].dtype == np.float32
    assert arrays["b3"].shape == (10,)
    assert arrays["meta"].shape == ()
    assert json.loads(str(arrays["meta"]))["activation_params"] == {"slope": 0.2}


def _rewrite(path, **changes):
    arrays = _arrays(path)
    meta = json.loads(str(arrays.pop("meta")))
    meta.update(changes.pop("meta", {}))
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"W2": None}, "array W2 is missing"),
        ({"b1": np.zeros(9, np.float32)}, r"b1 is float32 \(9,\), expected float32 \(8,\)"),
        ({"W1": np.zeros((784, 8))}, "W1 is float64"),
        ({"meta": {"version": 7}}, "format version 7 is not one this mlpcli reads"),
        ({"meta": {"format": "other"}}, "does not say format"),
        ({"meta": {"activation": "swish"}}, "unknown activation 'swish'"),
        ({"meta": {"normalization": {"mean": 0}}}, "'normalization' must hold"),
        ({"meta": {"layers": [784, 8, 10]}}, "W2 is float32 \\(8, 6\\), expected"),
        ({"W4": np.zeros((10, 10), np.float32)}, "unexpected arrays"),
        ({"W3": np.full((6, 10), np.nan, np.float32)}, "W3 holds NaN"),
    ],
)
def test_bad_contents_are_clear_errors(tmp_path, changes, message):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _model(), META)
    _rewrite(path, **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_files_that_are_not_checkpoints(tmp_path):
    cases = {
        "missing.npz": None,
        "text.npz": b"hello, I am not an archive",
        "empty.npz": b"",
        "single.npy": None,
    }
    np.save(tmp_path / "single.npy", np.zeros(3))
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.npz")
    for name in ("text.npz", "empty.npz", "single.npy"):
        with pytest.raises(CheckpointError, match="not a usable mlpcli checkpoint"):
            load_checkpoint(tmp_path / name)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _model(), META)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a usable mlpcli checkpoint"):
        load_checkpoint(path)


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/mlpcli-pickle-was-executed", "w"))


def test_pickled_objects_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _model(), META)
    arrays = _arrays(path)
    arrays["meta"] = np.array([_Boom()], dtype=object)
    np.savez(path, **arrays)
    (tmp_path / "p.npz").write_bytes(pickle.dumps(_Boom()))
    for candidate in (path, tmp_path / "p.npz"):
        with pytest.raises(CheckpointError):
            load_checkpoint(candidate)
    import os

    assert not os.path.exists("/tmp/mlpcli-pickle-was-executed")


def test_nan_weights_are_never_saved_and_the_old_file_survives(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _model(), META)
    before = path.read_bytes()
    broken = _model()
    broken.weights[0][0, 0] = np.nan
    with pytest.raises(CheckpointError, match="NaN"):
        save_checkpoint(path, broken, META)
    assert path.read_bytes() == before


def test_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _model(), META)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device"):
        save_checkpoint(path, _model("relu"), META)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


@pytest.mark.parametrize(
    "offset, value, reason",
    [(8, 1, "encrypted"), (10, 99, "compression method"), (6, 64, "zip file version")],
)
def test_archives_zipfile_cannot_open_are_refused(tmp_path, offset, value, reason):
    """Found by fuzzing: zipfile raises RuntimeError or NotImplementedError for these."""
    path = tmp_path / "odd.npz"
    save_checkpoint(path, _model(), META)
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # the central directory record of the first member
    raw[entry + offset] = value
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=f"cannot be read as .npz.*{reason}"):
        load_checkpoint(path)


def _rewritten(tmp_path, change_meta=None, members=None):
    """A saved checkpoint with its meta changed by change_meta(meta), and zip members
    replaced by `members` (name -> raw .npy bytes)."""
    import zipfile

    save_checkpoint(tmp_path / "c.npz", _model(), META)
    arrays = _arrays(tmp_path / "c.npz")
    meta = json.loads(str(arrays.pop("meta")))
    if change_meta:
        change_meta(meta)
    path = tmp_path / "changed.npz"
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    if members:
        kept = {}
        with zipfile.ZipFile(path) as old:
            kept = {n: old.read(n) for n in old.namelist() if n not in members}
        with zipfile.ZipFile(path, "w") as new:
            for name, raw in {**kept, **members}.items():
                new.writestr(name, raw)
    return path


def _npy_header(text: str) -> bytes:
    """A version 1.0 .npy header holding `text`, padded as numpy pads it."""
    body = text.encode("latin1")
    pad = 64 - (10 + len(body) + 1) % 64
    body += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def test_a_huge_declared_array_is_refused_before_its_data_is_read(tmp_path):
    header = _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (20000, 20000), }")
    path = _rewritten(tmp_path, members={"W1.npy": header + b"\0" * 64})  # 1.6 GB declared
    with pytest.raises(CheckpointError, match=r"W1 is float32 \(20000, 20000\), expected"):
        load_checkpoint(path)


def test_a_malformed_npy_header_is_a_clear_error(tmp_path):
    header = _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (784, ")
    path = _rewritten(tmp_path, members={"W1.npy": header})
    with pytest.raises(CheckpointError, match="cannot be read as .npz"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(activation_params=[0.1]), "'activation_params' must be an object"),
        (lambda m: m.update(activation_params={"slope": "x"}), "'activation_params'"),
        (lambda m: m.update(options=[1, 2]), "'options' must be an object"),
        (lambda m: m.update(normalization={"mean": "0.1", "std": "0.3"}), "'normalization'"),
        (lambda m: m.update(options={"seed": -1}), "options.seed must be a whole number"),
        (lambda m: m.update(options={"seed": "zero"}), "options.seed"),
        (lambda m: m.update(options={"validation_size": None}), "options.validation_size"),
        (lambda m: m.update(layers="784,8,6,10"), "'layers' must be a list"),
    ],
)
def test_metadata_of_the_wrong_type_is_refused_in_one_line(tmp_path, change, message):
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(_rewritten(tmp_path, change))
    assert "\n" not in str(caught.value)


def test_weights_whose_outputs_overflow_are_refused_not_printed_as_nan(tmp_path):
    from mlpcli.api import predict_array
    from mlpcli.io.checkpoint import Checkpoint

    model = _model("relu")
    model.loss = "cross-entropy"
    model.weights = [np.full_like(W, 1e30) for W in model.weights]  # finite, but not its outputs
    checkpoint = Checkpoint(model, {"normalization": {"mean": 0.13, "std": 0.31}})
    with pytest.raises(CheckpointError, match="overflow to NaN or infinity"):
        predict_array(checkpoint, np.full((2, 28, 28), 200, np.uint8))


def test_a_checkpoint_from_before_the_run_record_reads_with_its_legacy_defaults(tmp_path):
    """Fields a checkpoint leaves out take their meaning from one table (io/run_meta.py):
    every command reads the same values, and none fails on what is absent."""
    from mlpcli.api import describe
    from mlpcli.io.run_meta import LEGACY_OPTIONS, legacy_defaults

    kept = ("format", "version", "layers", "activation", "loss", "normalization")
    path = _rewritten(tmp_path, lambda m: [m.pop(k) for k in list(m) if k not in kept])
    checkpoint = load_checkpoint(path)
    inputs = checkpoint.model.layers[0]
    for name, value in legacy_defaults(inputs).items():
        if name != "options":
            assert checkpoint.meta[name] == value, name
    assert checkpoint.meta["options"] == LEGACY_OPTIONS
    assert (checkpoint.dataset, checkpoint.image_shape) == ("mnist", (28, 28))
    assert checkpoint.preparation == "digits" and checkpoint.class_names[:2] == ["0", "1"]
    about = describe(checkpoint)
    assert about["epochs"] == 0 and about["best_epoch"] is None and about["ended"] == "finished"
    assert about["options_in_force"]["seed"] == 0
