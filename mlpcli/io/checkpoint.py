"""Checkpoints: one .npz file, read without pickle.

Format (version 2, docs/checkpoint-format.md): arrays W1..WL float32 (fan_in, fan_out) and
b1..bL float32 (fan_out,), the best epoch's weights, and `meta`, a 0-d string array holding
JSON with at least: format ("mlpcli-checkpoint"), version, layers, activation,
activation_params, loss, normalization {mean, std}. Training adds init, dataset, classes,
options, history, best_epoch, accuracies, created and mlpcli_version. The logits of a
normalized input row x are computed as A_0 = x, A_l = f(A_{l-1} @ Wl + bl),
logits = A_{L-1} @ WL + bL.

What resuming needs (version 2 only) sits beside them under names that start with "resume.":
resume.W1.. and resume.b1.. (the weights at the end of the last completed epoch) and
resume.optimizer.<buffer>.<i> (the optimizer's buffer for parameter i of W1, b1, W2, ...,
with that parameter's shape) and resume.optimizer.steps; meta["resume"] holds the rest
(training/state.py). Version 1 files, which lack them, still load for evaluate and predict.
"""

from __future__ import annotations

import json
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..nn.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from ..nn.losses import LOSSES
from ..nn.model import MLP
from .files import atomic_write, remove_stale_temporaries
from .run_meta import filled, first_problem

FORMAT = "mlpcli-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
RESUME_PREFIX = "resume."


@dataclass
class Checkpoint:
    model: MLP
    meta: dict
    resume: dict[str, np.ndarray] = field(default_factory=dict)  # names without "resume."

    @property
    def normalization(self) -> tuple[float, float]:
        return self.meta["normalization"]["mean"], self.meta["normalization"]["std"]

    def __post_init__(self):
        self.meta = filled(self.meta, self.model.layers[0])

    @property
    def dataset(self) -> str:
        """The name of the dataset trained on, or its folder's path."""
        return self.meta["dataset"]

    @property
    def image_shape(self) -> tuple[int, int]:
        """(h, w) of the images the network takes."""
        return tuple(self.meta["image_shape"])

    @property
    def class_names(self) -> list[str]:
        """A name for each output: the dataset's, or "0", "1", ... where it has none."""
        names = self.meta["class_names"]
        return names + [str(k) for k in range(len(names), self.model.layers[-1])]

    @property
    def preparation(self) -> str:
        """How predict prepares an image for this network (io.image.PREPARATIONS)."""
        return self.meta["preparation"]


def save_checkpoint(
    path: str | Path,
    model: MLP,
    meta: dict,
    resume: dict[str, np.ndarray] | None = None,
    replace: bool = True,
) -> Path:
    """Write atomically (see files.atomic_write): a crash leaves the old file or the new one.
    `resume` holds the arrays a resumed run needs, by name (training.RunState.arrays()).
    With `replace` False an existing file is kept and the checkpoint goes to the first free
    name beside it. Returns the path written."""
    if not all(np.isfinite(a).all() for a in model.weights + model.biases):
        raise CheckpointError(
            "refusing to save weights that hold NaN or inf; lower the learning rate and train again"
        )
    meta = {
        **meta,
        "format": FORMAT,
        "version": VERSION,
        "layers": model.layers,
        "activation": model.activation,
        "loss": model.loss,
        "activation_params": {"slope": model.leaky_slope}
        if model.activation == "leaky-relu"
        else {},
    }
    arrays = {f"W{i}": W for i, W in enumerate(model.weights, 1)}
    arrays |= {f"b{i}": b for i, b in enumerate(model.biases, 1)}
    arrays |= {RESUME_PREFIX + name: a for name, a in (resume or {}).items()}
    try:
        remove_stale_temporaries(Path(path))
        with atomic_write(Path(path), replace) as out:
            np.savez(out.file, meta=np.array(json.dumps(meta)), **arrays)
        return out.path
    except OSError as exc:
        raise CheckpointError(
            f"cannot write {path} ({exc.strerror or exc}); choose another file with --out"
        ) from None


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a usable mlpcli checkpoint: {what}")


MAX_META_CHARS = 1 << 22  # 4 Mi characters of JSON: a history of thousands of epochs fits


def _declared(npz, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype array `name` declares in its .npy header, read before any of its
    data: a file may declare gigabytes in a few compressed bytes. ValueError for a header
    that is not one."""
    with npz.zip.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"npy format version {version} of {name}")
    return shape, dtype


def _read_meta(path: Path, npz) -> dict:
    if "meta" not in npz.files:
        raise _bad(path, "it has no 'meta' entry (was it written by `mlp train`?)")
    shape, dtype = _declared(npz, "meta")
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_META_CHARS:
        raise _bad(path, "'meta' is not a JSON string of a sensible size")
    meta_array = npz["meta"]
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise _bad(path, "'meta' is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as exc:
        raise _bad(path, f"'meta' is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, f"'meta' does not say format {FORMAT!r}")
    if meta.get("version") not in READABLE_VERSIONS:
        raise _bad(
            path,
            f"format version {meta.get('version')!r} is not one this mlpcli reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}); use the mlpcli version that wrote it, "
            "or train again",
        )
    return meta


def _check_meta(path: Path, meta: dict) -> dict:
    """`meta` checked and filled (run_meta.filled)."""
    layers = meta.get("layers")
    if (
        not isinstance(layers, list)
        or len(layers) < 2
        or not all(isinstance(s, int) and s > 0 for s in layers)
    ):
        raise _bad(path, f"'layers' must be a list of at least two positive sizes, not {layers!r}")
    meta = filled(meta, layers[0])
    if meta.get("activation") not in ACTIVATIONS:
        raise _bad(path, f"unknown activation {meta.get('activation')!r}")
    if meta.get("loss") not in LOSSES:
        raise _bad(path, f"unknown loss {meta.get('loss')!r}")
    norm = meta.get("normalization")
    if not isinstance(norm, dict) or not all(_is_number(norm.get(k)) for k in ("mean", "std")):
        raise _bad(path, "'normalization' must hold numbers 'mean' and 'std'")
    mean, std = float(norm["mean"]), float(norm["std"])
    if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
        raise _bad(path, f"normalization mean {mean} / std {std} is not usable")
    params = meta["activation_params"]
    slope = params.get("slope", DEFAULT_LEAKY_SLOPE) if isinstance(params, dict) else None
    if not _is_number(slope) or not 0 <= slope <= 1:
        raise _bad(path, "'activation_params' must be an object whose 'slope' is 0 to 1")
    problem = first_problem(meta, layers)
    if problem:
        raise _bad(path, problem)
    return meta


def _is_number(value) -> bool:
    """An int or float from JSON (not a bool, not a string of digits), and finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _param_shapes(layers: list[int]) -> dict[str, tuple[int, ...]]:
    """W1, b1, W2, b2, ... in that order, with their shapes."""
    shapes = {}
    for i, (fan_in, fan_out) in enumerate(pairwise(layers), 1):
        shapes[f"W{i}"], shapes[f"b{i}"] = (fan_in, fan_out), (fan_out,)
    return shapes


def _read_array(path: Path, npz, name: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    if name not in npz.files:
        raise _bad(path, f"array {name} is missing")
    declared = _declared(npz, name)
    if declared != (shape, np.dtype(dtype)):
        raise _bad(
            path, f"{name} is {declared[1]} {declared[0]}, expected {np.dtype(dtype)} {shape}"
        )
    array = npz[name]
    if array.shape != shape or array.dtype != dtype:  # the data as read, not as declared
        raise _bad(
            path, f"{name} is {array.dtype} {array.shape}, expected {np.dtype(dtype)} {shape}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise _bad(path, f"{name} holds NaN or inf")
    return array


def _read_params(path: Path, npz, layers: list[int]) -> tuple[list, list]:
    shapes = _param_shapes(layers)
    arrays = {name: _read_array(path, npz, name, shape) for name, shape in shapes.items()}
    extra = set(npz.files) - {"meta"} - set(shapes)
    extra = {name for name in extra if not name.startswith(RESUME_PREFIX)}
    if extra:
        raise _bad(path, f"unexpected arrays {sorted(extra)} (more layers than 'layers' says?)")
    return [a for n, a in arrays.items() if n[0] == "W"], [
        a for n, a in arrays.items() if n[0] == "b"
    ]


def _read_resume(path: Path, npz, layers: list[int]) -> dict[str, np.ndarray]:
    """The arrays under "resume.", each checked against the shape `layers` gives it."""
    shapes = _param_shapes(layers)
    by_index = list(shapes.values())
    resume = {}
    for stored in (n for n in npz.files if n.startswith(RESUME_PREFIX)):
        name = stored.removeprefix(RESUME_PREFIX)
        if name in shapes:
            resume[name] = _read_array(path, npz, stored, shapes[name])
        elif name == "optimizer.steps":
            resume[name] = _read_array(path, npz, stored, (), np.int64)
            if resume[name] < 0:
                raise _bad(path, f"{stored} must count steps from 0, not {int(resume[name])}")
        else:
            buffer, _, index = name.removeprefix("optimizer.").rpartition(".")
            if not (name.startswith("optimizer.") and buffer and index.isdigit()) or int(
                index
            ) >= len(by_index):
                raise _bad(path, f"unexpected array {stored}")
            resume[name] = _read_array(path, npz, stored, by_index[int(index)])
    return resume


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint. Never unpickles: object arrays are refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}; train one with `mlp train` or give the path of one"
        )
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise _bad(path, "it is a single .npy array, not an .npz archive")
        with npz:
            meta = _read_meta(path, npz)
            meta = _check_meta(path, meta)
            layers = meta["layers"]
            weights, biases = _read_params(path, npz, layers)
            resume = _read_resume(path, npz, layers) if meta["version"] >= 2 else {}
    except CheckpointError:
        raise
    # zipfile raises NotImplementedError for unsupported methods, RuntimeError for encryption
    except (
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        KeyError,
        NotImplementedError,
        RuntimeError,
        SyntaxError,  # a malformed .npy header fails in Python's parser
        tokenize.TokenError,  # or in its tokenizer
        zlib.error,
    ) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise _bad(path, f"it cannot be read as .npz ({reason})") from None
    slope = float(meta["activation_params"].get("slope", DEFAULT_LEAKY_SLOPE))
    model = MLP(weights, biases, meta["activation"], meta["loss"], slope)
    return Checkpoint(model, meta, resume)
