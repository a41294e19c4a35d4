"""Checkpoints: one .npz file, read without pickle.

Format (version 1): arrays W1..WL float32 (fan_in, fan_out) and b1..bL float32 (fan_out,),
and `meta`, a 0-d string array holding JSON with at least: format ("mlpcli-checkpoint"),
version, layers, activation, activation_params, loss, normalization {mean, std}. Training adds
init, dataset, classes, options, history, best_epoch, accuracies, created and mlpcli_version.
The logits of a normalized input row x are computed as A_0 = x, A_l = f(A_{l-1} @ Wl + bl),
logits = A_{L-1} @ WL + bL.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from .activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from .errors import CheckpointError
from .files import atomic_write
from .losses import LOSSES
from .model import MLP

FORMAT = "mlpcli-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    model: MLP
    meta: dict

    @property
    def normalization(self) -> tuple[float, float]:
        return self.meta["normalization"]["mean"], self.meta["normalization"]["std"]


def save_checkpoint(path: str | Path, model: MLP, meta: dict) -> None:
    """Write atomically (see files.atomic_write): a crash leaves the old file or the new one."""
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
    try:
        with atomic_write(Path(path)) as file:
            np.savez(file, meta=np.array(json.dumps(meta)), **arrays)
    except OSError as exc:
        raise CheckpointError(
            f"cannot write {path} ({exc.strerror}); choose another file with --out"
        ) from None


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a usable mlpcli checkpoint: {what}")


def _read_meta(path: Path, npz) -> dict:
    if "meta" not in npz.files:
        raise _bad(path, "it has no 'meta' entry (was it written by `mlp train`?)")
    meta_array = npz["meta"]
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise _bad(path, "'meta' is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as exc:
        raise _bad(path, f"'meta' is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, f"'meta' does not say format {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise _bad(
            path,
            f"format version {meta.get('version')!r} is not {VERSION}, the one this "
            "mlpcli reads; use the mlpcli version that wrote it, or train again",
        )
    return meta


def _check_meta(path: Path, meta: dict) -> list[int]:
    layers = meta.get("layers")
    if (
        not isinstance(layers, list)
        or len(layers) < 2
        or not all(isinstance(s, int) and s > 0 for s in layers)
    ):
        raise _bad(path, f"'layers' must be a list of at least two positive sizes, not {layers!r}")
    if meta.get("activation") not in ACTIVATIONS:
        raise _bad(path, f"unknown activation {meta.get('activation')!r}")
    if meta.get("loss") not in LOSSES:
        raise _bad(path, f"unknown loss {meta.get('loss')!r}")
    norm = meta.get("normalization")
    try:
        mean, std = float(norm["mean"]), float(norm["std"])
    except (TypeError, KeyError, ValueError):
        raise _bad(path, "'normalization' must hold numbers 'mean' and 'std'") from None
    if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
        raise _bad(path, f"normalization mean {mean} / std {std} is not usable")
    return layers


def _read_params(path: Path, npz, layers: list[int]) -> tuple[list, list]:
    weights, biases = [], []
    for i, (fan_in, fan_out) in enumerate(pairwise(layers), 1):
        for name, shape, bucket in (
            (f"W{i}", (fan_in, fan_out), weights),
            (f"b{i}", (fan_out,), biases),
        ):
            if name not in npz.files:
                raise _bad(path, f"array {name} is missing")
            array = npz[name]
            if array.shape != shape or array.dtype != np.float32:
                raise _bad(path, f"{name} is {array.dtype} {array.shape}, expected float32 {shape}")
            if not np.isfinite(array).all():
                raise _bad(path, f"{name} holds NaN or inf")
            bucket.append(array)
    extra = set(npz.files) - {"meta"} - {f"{p}{i}" for p in "Wb" for i in range(1, len(layers))}
    if extra:
        raise _bad(path, f"unexpected arrays {sorted(extra)} (more layers than 'layers' says?)")
    return weights, biases


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
            layers = _check_meta(path, meta)
            weights, biases = _read_params(path, npz, layers)
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
        zlib.error,
    ) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise _bad(path, f"it cannot be read as .npz ({reason})") from None
    slope = float((meta.get("activation_params") or {}).get("slope", DEFAULT_LEAKY_SLOPE))
    model = MLP(weights, biases, meta["activation"], meta["loss"], slope)
    return Checkpoint(model, meta)
