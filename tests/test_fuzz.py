"""Property-based fuzzing: random and mutated bytes into the three parsers of outside files.
Each must return a result or raise the tool's own error, never anything else.

CI runs FUZZ_EXAMPLES (default 300) inputs per test; a longer run by hand:
    FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py
"""

import gzip
import os
import struct

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from conftest import png_bytes  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mlpcli.data.fetch import decompress  # noqa: E402
from mlpcli.data.mnist import parse_idx  # noqa: E402
from mlpcli.errors import MlpError  # noqa: E402
from mlpcli.io.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from mlpcli.io.image import prepare_image  # noqa: E402
from mlpcli.nn.model import MLP  # noqa: E402

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _mutated(seed_bytes: bytes):
    """Strategy: `seed_bytes` with some bytes overwritten, a cut, and bytes inserted."""

    @st.composite
    def mutate(draw):
        raw = bytearray(seed_bytes)
        for _ in range(draw(st.integers(0, 8))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(raw)))
        tail = raw[cut:] if draw(st.booleans()) else b""
        return bytes(raw[:cut]) + draw(st.binary(max_size=16)) + bytes(tail)

    return mutate()


def _idx_seed() -> bytes:
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    return b"\0\0\x08\x03" + struct.pack(">3I", 3, 4, 4) + images.tobytes()


@FUZZ
@given(
    st.one_of(st.binary(max_size=200), _mutated(_idx_seed()), _mutated(gzip.compress(_idx_seed())))
)
def test_idx_parser_returns_an_array_or_a_data_error(raw):
    try:
        raw = decompress(raw, "fuzz")
        array = parse_idx(raw, "fuzz")
    except MlpError:
        return
    assert array.dtype == np.uint8 and array.size == len(raw) - 4 - 4 * array.ndim


def _checkpoint_seed() -> bytes:
    import tempfile
    from pathlib import Path

    model = MLP.initialize([6, 3, 2], np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "seed.npz"
        save_checkpoint(target, model, {"normalization": {"mean": 0.1, "std": 0.3}})
        return target.read_bytes()


CHECKPOINT = _checkpoint_seed()


def _read_as_file(tmp_path, raw: bytes, reader):
    """reader(a file holding raw), or None when it raised the tool's own error."""
    path = tmp_path / "fuzz.bin"
    path.write_bytes(raw)
    try:
        return reader(path)
    except MlpError:
        return None


@FUZZ
@given(st.one_of(st.binary(max_size=300), _mutated(CHECKPOINT)))
def test_checkpoint_loader_returns_a_checkpoint_or_a_checkpoint_error(tmp_path, raw):
    checkpoint = _read_as_file(tmp_path, raw, load_checkpoint)
    assert checkpoint is None or all(np.isfinite(W).all() for W in checkpoint.model.weights)


def _png_seed() -> bytes:
    pixels = np.full((16, 16), 255, np.uint8)
    pixels[3:13, 7:9] = 0
    return png_bytes(pixels)


@FUZZ
@given(st.one_of(st.binary(max_size=300), _mutated(_png_seed())))
def test_image_loader_returns_an_input_or_an_image_error(tmp_path, raw):
    prepared = _read_as_file(tmp_path, raw, prepare_image)
    assert prepared is None or (
        prepared.pixels.shape == (28, 28) and np.isfinite(prepared.pixels).all()
    )
