"""Downloads into the cache: mirrors, checksums, retries, and what the cache already holds.

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
import sys
import time
import zlib
from pathlib import Path

from .. import interrupts
from ..errors import CacheError, DataError, DownloadError
from ..io.files import atomic_write

# Public mirrors that serve the original files today, tried in order (yann.lecun.com is gone).
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MIRROR_ENV = "MLP_MNIST_MIRROR"
DATA_DIR_ENV = "MLP_DATA_DIR"

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
        with atomic_write(data_dir / f"{name}.gz") as out:
            _stream_to(url, out.file, timeout, progress)
            out.file.seek(0)
            return _verified(_decompress(out.file.read(), "the download"), sha256, "the download")
    except requests.RequestException:
        raise  # requests' errors are OSErrors too, but they are the network's fault
    except OSError as exc:
        raise CacheError(
            f"cannot write to the data folder {data_dir} ({exc.strerror}); "
            f"choose another with --data-dir or {DATA_DIR_ENV}"
        ) from None
