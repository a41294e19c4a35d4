"""Downloads into the cache: mirrors, checksums, retries, and what the cache already holds.

Files are verified by the SHA-256 of their decompressed IDX bytes, which is the same whichever
mirror served them and however it gzipped them. Everything written to the cache goes to a
temporary file first and is moved into place only once verified.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
import zlib
from pathlib import Path

from .. import interrupts
from ..errors import CacheError, DataError, DownloadError
from ..io.files import atomic_write, remove_stale_temporaries

# Public mirrors that serve the original files today, tried in order (yann.lecun.com is gone).
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MIRROR_ENV = "MLP_MNIST_MIRROR"
DATA_DIR_ENV = "MLP_DATA_DIR"

GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 1 << 26  # 64 MiB: the largest MNIST file holds 47 MB; more is not MNIST
MAX_DOWNLOAD_BYTES = MAX_IDX_BYTES  # a gzip is smaller, and an undone Content-Encoding no larger
# A whole file's transfer, at most: MNIST's largest, 9.9 MB, at 20 kB/s (a server that sends
# a byte now and then would otherwise hold a download forever, each read within `timeout`)
DOWNLOAD_DEADLINE = 500.0
# A mirror slower than this over a whole window is given up for the next one: a trickle that
# keeps every read within the timeout would otherwise hold a download until the deadline.
MIN_RATE = 10_000  # bytes a second
RATE_WINDOW = 30.0  # seconds


class TooSlow(OSError):
    """A mirror sent less than MIN_RATE over a RATE_WINDOW: not worth another try."""


def default_data_dir() -> Path:
    """$MLP_DATA_DIR, else $XDG_CACHE_HOME/mlpcli, else ~/.cache/mlpcli."""
    if os.environ.get(DATA_DIR_ENV):
        return expanded(os.environ[DATA_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mlpcli"


def expanded(path: str | Path) -> Path:
    """`path` with a leading ~ or ~user expanded; DataError when there is no such user."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise DataError(
            f"cannot find the home folder in {path} (no such user?); give the full path"
        ) from None


def default_mirrors() -> list[str]:
    """$MLP_MNIST_MIRROR (one or more base URLs separated by spaces), else the public mirrors."""
    return os.environ.get(MIRROR_ENV, "").split() or list(DEFAULT_MIRRORS)


def decompress(data: bytes, source: str, limit: int = MAX_IDX_BYTES) -> bytes | bytearray:
    """The decompressed bytes of gzip `data` (other data is returned as it is), written into
    one buffer of the size the gzip trailer states: gzip.decompress would briefly hold the
    output twice, 47 MB more at the peak for the training images. Over `limit` bytes is
    refused before anything is decompressed."""
    if not data.startswith(GZIP_MAGIC):
        return data
    size = int.from_bytes(data[-4:], "little")  # ISIZE: the decompressed length, mod 2**32
    if size > limit:
        raise DataError(
            f"{source} claims to decompress to {size} bytes, more than {limit >> 20} MiB; "
            "it is not a dataset file this tool reads"
        )
    out = bytearray(size)
    try:
        import gzip  # here, as hashlib below: `mlp predict` never needs them

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
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DataError(f"{source} has SHA-256 {digest[:16]}…, expected {sha256[:16]}…")
    return raw


def read_cached(data_dir: Path, name: str, sha256: str) -> bytes | None:
    """The verified IDX bytes of `name` or `name.gz` in data_dir, or None if neither is good."""
    for path in (data_dir / name, data_dir / f"{name}.gz"):
        if path.is_file():
            try:
                return _verified(decompress(path.read_bytes(), str(path)), sha256, str(path))
            except (DataError, OSError):
                continue  # a corrupt cached file is never used: it is fetched again
    return None


def _content_length(headers) -> int | None:
    """The body's length a response states, or None where it states none, or one that is not
    a number, or several that disagree (requests joins repeated headers with commas)."""
    values = {value.strip() for value in headers.get("Content-Length", "").split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        return None
    return int(values.pop())


def _as_it_arrives(response):
    """The body in pieces as they arrive (Content-Encoding undone), so that the caller sees
    a trickle of bytes and can hold it to a deadline: requests' iter_content waits to fill
    each chunk. urllib3's errors come out as requests' own, as from iter_content."""
    import requests
    from urllib3.exceptions import HTTPError as TransferError

    raw = response.raw
    if not hasattr(raw, "read1"):  # urllib3 1.x: small fixed chunks are the best it has
        yield from response.iter_content(chunk_size=1 << 10)
        return
    try:
        while piece := raw.read1(1 << 16, decode_content=True):
            yield piece
    except TransferError as exc:
        raise requests.ConnectionError(str(exc)) from None


def _stream_to(
    url: str,
    file,
    timeout: float,
    progress: bool,
    deadline: float,
    min_rate: float = MIN_RATE,
    window: float = RATE_WINDOW,
) -> None:
    """Write the body at `url` to `file`. `timeout` bounds each wait for bytes; `deadline`
    bounds the whole transfer, and fewer than `min_rate` bytes a second over any `window`
    seconds give up on the server (TooSlow), so that one that trickles bytes cannot hold it
    for long; a body larger than any dataset file is cut off (DataError)."""
    import requests
    from tqdm import tqdm

    started = time.monotonic()
    with requests.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        total = _content_length(response.headers)
        # requests undoes a Content-Encoding, so the length on the wire is not what arrives
        encoded = bool(response.headers.get("Content-Encoding"))
        with interrupts.at_safe_points():  # not inside tqdm's constructor; see interrupts.py
            bar = tqdm(
                total=None if encoded else total,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                file=sys.stderr,
                disable=not progress,
                leave=False,
            )
        with bar:
            received, window_start, window_received = 0, started, 0
            for chunk in _as_it_arrives(response):
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                now = time.monotonic()
                if now - window_start >= window:
                    if received - window_received < min_rate * (now - window_start):
                        rate = (received - window_received) / (now - window_start)
                        raise TooSlow(
                            f"too slow: {rate / 1000:.1f} kB/s over {now - window_start:.0f} s, "
                            f"under {min_rate / 1000:g} kB/s"
                        )
                    window_start, window_received = now, received
                if received > MAX_DOWNLOAD_BYTES:
                    raise DataError(
                        f"the server sent more than {MAX_DOWNLOAD_BYTES >> 20} MiB, more than "
                        "any dataset file; it is not serving the file asked for"
                    )
                if time.monotonic() - started > deadline:
                    raise requests.Timeout(f"timed out: the transfer took over {deadline:g} s")
        if total is not None and not encoded and received != total:
            raise requests.ConnectionError(f"body truncated: got {received} of {total} bytes")


def download(
    name: str,
    sha256: str,
    mirrors: list[str],
    data_dir: Path,
    *,
    timeout: float = 30.0,
    deadline: float = DOWNLOAD_DEADLINE,
    attempts: int = 3,
    backoff: float = 1.0,
    progress: bool = True,
    mirror_env: str = MIRROR_ENV,
    min_rate: float = MIN_RATE,
    window: float = RATE_WINDOW,
) -> bytes:
    """Fetch `name`.gz from the first mirror that delivers it intact; return its IDX bytes.

    Network errors and 5xx answers are retried `attempts` times per mirror with exponential
    back-off; a 4xx answer, a bad gzip, a checksum mismatch or a mirror slower than
    `min_rate` over `window` seconds moves on to the next mirror (saying why on stderr when
    `progress` is on: the bars are there too).
    """
    import requests

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cannot create the data folder {data_dir} ({exc.strerror}); "
            f"choose another with --data-dir or {DATA_DIR_ENV}"
        ) from None
    remove_stale_temporaries(data_dir / f"{name}.gz")
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
                transfer = (timeout, deadline, min_rate, window)
                return _fetch_verified(url, name, sha256, data_dir, progress, *transfer)
            except TooSlow as exc:
                failure = f"{url}: {exc}"
                break
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
        if progress and base != mirrors[-1]:
            from tqdm import tqdm

            tqdm.write(f"{failure}; trying the next mirror", file=sys.stderr)
    raise DownloadError(
        f"could not download {name}.gz; "
        + "; ".join(failures)
        + f". Check your connection, set --mirror or {mirror_env} to a server that has the "
        f"files, or copy them into the data folder {data_dir}"
    )


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
    url: str,
    name: str,
    sha256: str,
    data_dir: Path,
    progress: bool,
    *transfer: float,
) -> bytes:
    """Download into a temporary file beside the target; only verified bytes are moved in.
    `transfer` is _stream_to's timeout, deadline, min_rate and window."""
    import requests

    try:
        with atomic_write(data_dir / f"{name}.gz") as out:
            timeout, deadline, min_rate, window = transfer
            _stream_to(url, out.file, timeout, progress, deadline, min_rate, window)
            out.file.seek(0)
            return _verified(decompress(out.file.read(), "the download"), sha256, "the download")
    except (requests.RequestException, TooSlow):
        raise  # OSErrors too, but the network's fault, not the folder's
    except OSError as exc:
        raise CacheError(
            f"cannot write to the data folder {data_dir} ({exc.strerror}); "
            f"choose another with --data-dir or {DATA_DIR_ENV}"
        ) from None
