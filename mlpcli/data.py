"""MNIST: mirrors, checksums, download, IDX parsing, normalization and splits.

Files are verified by the SHA-256 of their decompressed IDX bytes, which is the same whichever
mirror served them and however it gzipped them. Everything written to the cache goes to a
temporary file first and is moved into place only once verified.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import interrupts
from .errors import CacheError, DataError, DownloadError
from .files import atomic_write

# Public mirrors that serve the original files today, tried in order (yann.lecun.com is gone).
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MIRROR_ENV = "MLP_MNIST_MIRROR"
DATA_DIR_ENV = "MLP_DATA_DIR"

# SHA-256 of each file after decompression.
MNIST_FILES = {
    "train-images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test-images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test-labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 1 << 26  # 64 MiB: the largest MNIST file holds 47 MB; more is not MNIST


def default_data_dir() -> Path:
    """$MLP_DATA_DIR, else $XDG_CACHE_HOME/mlpcli, else ~/.cache/mlpcli."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mlpcli"


def default_mirrors() -> list[str]:
    """$MLP_MNIST_MIRROR (one or more base URLs separated by spaces), else the public mirrors."""
    return os.environ.get(MIRROR_ENV, "").split() or list(DEFAULT_MIRRORS)


def _decompress(data: bytes, source: str) -> bytes | bytearray:
    """The decompressed bytes of gzip `data` (other data is returned as it is), written into
    one buffer of the size the gzip trailer states: gzip.decompress would briefly hold the
    output twice, 47 MB more at the peak for the training images."""
    if not data.startswith(GZIP_MAGIC):
        return data
    size = int.from_bytes(data[-4:], "little")  # ISIZE: the decompressed length, mod 2**32
    if size > MAX_IDX_BYTES:
        raise DataError(
            f"{source} claims to decompress to {size} bytes, more than any MNIST file; "
            "it is not an MNIST file"
        )
    out = bytearray(size)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            filled, view = 0, memoryview(out)
            while filled < size and (count := stream.readinto(view[filled:])):
                filled += count
            if filled != size or stream.read(1):
                raise DataError(f"{source} does not decompress to the length its trailer states")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{source} is not a valid gzip file ({exc})") from None
    return out


def _verified(raw: bytes, sha256: str, source: str) -> bytes:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DataError(f"{source} has SHA-256 {digest[:16]}…, expected {sha256[:16]}…")
    return raw


def read_cached(data_dir: Path, name: str, sha256: str) -> bytes | None:
    """The verified IDX bytes of `name` or `name.gz` in data_dir, or None if neither is good."""
    for path in (data_dir / name, data_dir / f"{name}.gz"):
        if path.is_file():
            try:
                return _verified(_decompress(path.read_bytes(), str(path)), sha256, str(path))
            except (DataError, OSError):
                continue  # a corrupt cached file is never used: it is fetched again
    return None


def _stream_to(url: str, file, timeout: float, progress: bool) -> None:
    import requests
    from tqdm import tqdm

    with requests.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        total = int(response.headers.get("Content-Length") or 0) or None
        with interrupts.at_safe_points():  # not inside tqdm's constructor; see interrupts.py
            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                file=sys.stderr,
                disable=not progress,
                leave=False,
            )
        with bar:
            received = 0
            for chunk in response.iter_content(chunk_size=1 << 16):
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise requests.ConnectionError(f"body truncated: got {received} of {total} bytes")


def download(
    name: str,
    sha256: str,
    mirrors: list[str],
    data_dir: Path,
    *,
    timeout: float = 30.0,
    attempts: int = 3,
    backoff: float = 1.0,
    progress: bool = True,
) -> bytes:
    """Fetch `name`.gz from the first mirror that delivers it intact; return its IDX bytes.

    Network errors and 5xx answers are retried `attempts` times per mirror with exponential
    back-off; a 4xx answer, a bad gzip or a checksum mismatch moves on to the next mirror.
    """
    import requests

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cannot create the data folder {data_dir} ({exc.strerror}); "
            f"choose another with --data-dir or {DATA_DIR_ENV}"
        ) from None
    _remove_stale_parts(data_dir, name)
    # passing network trouble is worth another try; other request errors (a bad URL) are final
    retryable = (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    )
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + f"/{name}.gz"
        for attempt in range(attempts):
            try:
                return _fetch_verified(url, name, sha256, data_dir, timeout, progress)
            except requests.HTTPError as exc:
                status = exc.response.status_code
                failure = f"{url}: HTTP {status}"
                if status < 500:
                    break
            except requests.RequestException as exc:
                failure = f"{url}: {type(exc).__name__} ({_reason(exc)})"
                if not isinstance(exc, retryable):
                    break
            except CacheError:
                raise
            except DataError as exc:  # bad gzip or checksum: the download was deleted
                failure = f"{url}: {exc}, deleted it"
                break
            if attempt + 1 < attempts:
                time.sleep(backoff * 2**attempt)
        failures.append(failure)
    raise DownloadError(
        f"could not download {name}.gz; "
        + "; ".join(failures)
        + f". Check your connection, set --mirror or {MIRROR_ENV} to a server that has the "
        f"MNIST files, or copy them into the data folder {data_dir}"
    )


STALE_PART_SECONDS = 3600  # older temporary files were left by a killed download


def _remove_stale_parts(data_dir: Path, name: str) -> None:
    """Delete temporary downloads of `name` that a killed process left behind; a younger one
    may belong to a download still running in another process."""
    for part in data_dir.glob(f".{name}.gz.*.part"):
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()


def _reason(exc: Exception) -> str:
    """The root cause of a requests error in a few words: requests nests urllib3's errors,
    whose text repeats the URL; the operating system's '[Errno N] ...' is what matters."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__


def _fetch_verified(
    url: str, name: str, sha256: str, data_dir: Path, timeout: float, progress: bool
) -> bytes:
    """Download into a temporary file beside the target; only verified bytes are moved in."""
    import requests

    try:
        with atomic_write(data_dir / f"{name}.gz") as file:
            _stream_to(url, file, timeout, progress)
            file.seek(0)
            return _verified(_decompress(file.read(), "the download"), sha256, "the download")
    except requests.RequestException:
        raise  # requests' errors are OSErrors too, but they are the network's fault
    except OSError as exc:
        raise CacheError(
            f"cannot write to the data folder {data_dir} ({exc.strerror}); "
            f"choose another with --data-dir or {DATA_DIR_ENV}"
        ) from None


def parse_idx(raw: bytes, source: str) -> np.ndarray:
    """IDX bytes (big-endian header: 0, 0, type 0x08, ndim, then ndim uint32 sizes) -> uint8."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(
            f"{source} is not an IDX file of unsigned bytes (magic {raw[:4].hex()}); "
            "delete it so that it is downloaded again"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source} is truncated inside its header; delete it and download again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(
            f"{source} holds {len(raw) - header} data bytes but its header "
            f"{dims} says {expected}; delete it and download again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(
    data_dir: str | Path | None = None,
    mirrors: list[str] | None = None,
    progress: bool = True,
    **download_options,
) -> dict[str, np.ndarray]:
    """The four MNIST arrays as uint8: train-images (60000, 28, 28), train-labels (60000,),
    test-images (10000, 28, 28), test-labels (10000,). Downloads what the cache lacks."""
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    arrays = {}
    for key, (name, sha256) in MNIST_FILES.items():
        raw = read_cached(data_dir, name, sha256)
        if raw is None:
            raw = download(
                name,
                sha256,
                mirrors or default_mirrors(),
                data_dir,
                progress=progress,
                **download_options,
            )
        arrays[key] = parse_idx(raw, name)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        if images.shape[1:] != IMAGE_SHAPE or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"MNIST {split} files disagree: images {images.shape}, labels {labels.shape}"
            )
    return arrays


def train_validation_split(
    n: int, validation_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of a seeded shuffle of range(n); the same seed, the same split.

    Its generator is derived from the seed alone, so evaluate can rebuild the split exactly.
    """
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return np.sort(order[validation_size:]), np.sort(order[:validation_size])


def normalization_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and std of pixel/255 over all pixels of `images` (uint8, any shape).

    Computed exactly from the 256-bin histogram, so no float copy of the images is made; the
    histogram is counted a million pixels at a time, as bincount widens its input to int64."""
    pixels = images.reshape(-1)
    counts = sum(
        (
            np.bincount(pixels[start : start + (1 << 20)], minlength=256)
            for start in range(0, len(pixels), 1 << 20)
        ),
        np.zeros(256, np.int64),
    ).astype(np.float64)
    values = np.arange(256) / 255
    mean = counts @ values / counts.sum()
    return float(mean), float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))


def normalization_coefficients(mean: float, std: float) -> tuple[np.float32, np.float32]:
    """(scale, shift) such that the normalized pixel is pixel * scale + shift in float32."""
    return np.float32(1 / (255 * std)), np.float32(-mean / std)


def normalize(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 images (n, 28, 28) or (n, 784) -> float32 rows (n, 784) of (pixel/255 - mean) / std,
    computed as pixel * scale + shift: two passes, as training does this every epoch."""
    scale, shift = normalization_coefficients(mean, std)
    pixels = images.reshape(len(images), int(np.prod(images.shape[1:])))
    X = np.multiply(pixels, scale, dtype=np.float32)
    X += shift
    return X


@dataclass
class Split:
    """Samples X (n, d) with labels y (n,) int64, kept as stored: MNIST's as uint8 pixels
    (n, 784), a quarter of the memory of float32, which `features` normalizes a few rows at a
    time. With no `normalization`, X is already the network's float input."""

    X: np.ndarray
    y: np.ndarray
    normalization: tuple[float, float] | None = None  # (mean, std) of pixel/255

    def __len__(self) -> int:
        return len(self.y)

    def features(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """The network's float32 input (m, d) for `rows` (a slice or an index array)."""
        if self.normalization is None:
            return self.X[rows]
        return normalize(self.X[rows], *self.normalization)

    __getitem__ = features  # so MLP.logits can take a split as it takes an array


def make_splits(
    mnist: dict[str, np.ndarray],
    validation_size: int,
    seed: int,
    normalization: tuple[float, float] | None = None,
) -> tuple[dict[str, Split], tuple[float, float]]:
    """Splits "train", "validation" (from the 60k training images) and "test" as uint8 rows,
    normalized by `normalization` or, when None, by the statistics of the training split."""
    images, labels = mnist["train-images"], mnist["train-labels"].astype(np.int64)
    if not 0 <= validation_size < len(images):
        raise DataError(
            f"validation size {validation_size} must be between 0 and {len(images) - 1}"
        )
    rows = images.reshape(len(images), -1)
    train_idx, val_idx = train_validation_split(len(images), validation_size, seed)
    stats = normalization or normalization_stats(rows[train_idx])
    test = mnist["test-images"]
    splits = {
        "train": Split(rows[train_idx], labels[train_idx], stats),
        "validation": Split(rows[val_idx], labels[val_idx], stats),
        "test": Split(test.reshape(len(test), -1), mnist["test-labels"].astype(np.int64), stats),
    }
    return splits, stats
