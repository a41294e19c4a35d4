"""Shared fixtures: a loopback HTTP server, a tiny synthetic MNIST, the real MNIST folder."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import signal
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mlpcli import data
from mlpcli.data import mnist as mnist_module

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `self.server.root` and records every path requested. For a file named in
    `self.server.faults` it misbehaves instead: an int answers that HTTP status; "truncate"
    sends the full Content-Length but half the body; "stall" waits 5 s before answering;
    "hang" sends half the body and then waits 60 s."""

    def translate_path(self, path):
        return str(self.server.root / path.lstrip("/").split("?")[0])

    def do_GET(self):
        self.server.requests.append(self.path)
        fault = self.server.faults.get(self.path.rsplit("/", 1)[-1])
        if isinstance(fault, int):
            self.send_error(fault)
        elif fault == "stall":
            time.sleep(5)
        elif fault in ("trickle", "endless", "bad-length", "double-length", "gzip-encoded"):
            self._misbehave(fault)
        elif fault in ("truncate", "hang"):
            body = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if fault == "hang":
                time.sleep(60)
            self.close_connection = True
        else:
            super().do_GET()

    def _misbehave(self, fault: str) -> None:
        """trickle: a byte every 0.05 s (for at most 20 s); endless: 64 KiB chunks with no
        length, until the client hangs up (at most 1 GiB); bad-length and double-length: a
        Content-Length that is not a number, or two that disagree; gzip-encoded: the .gz
        file sent with Content-Encoding: gzip, as some servers do."""
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        if fault == "bad-length":
            self.send_header("Content-Length", "twelve")
        elif fault == "double-length":
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Length", str(len(body) + 7))
        elif fault == "gzip-encoded":
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Encoding", "gzip")
        elif fault == "trickle":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if fault == "trickle":
                for byte in body[:400]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            elif fault == "endless":
                chunk = b"\0" * (1 << 16)
                for _ in range(1 << 14):
                    self.wfile.write(chunk)
            else:
                self.wfile.write(body)
        except OSError:  # the client hung up, as it should
            pass
        self.close_connection = True

    def log_message(self, *args):
        pass


class LoopbackServer:
    def __init__(self, root: Path):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.root, self.httpd.faults, self.httpd.requests = Path(root), {}, []
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    @property
    def faults(self) -> dict[str, int | str]:
        return self.httpd.faults

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    """serve(folder) -> a LoopbackServer on 127.0.0.1 for that folder, closed after the test."""
    servers = []

    def start(root: Path) -> LoopbackServer:
        servers.append(LoopbackServer(root))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def ctrl_c() -> None:
    """Deliver SIGINT to this process and let Python run its handler before returning."""
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # the handler runs between bytecodes of the main thread
        pass


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 array -> IDX file bytes (magic 0, 0, 0x08, ndim; big-endian sizes)."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def synthetic_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Easy 28x28 'digits': class k is a bright bar in row band k, with noise."""
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = rng.integers(0, 40, (count, 28, 28)).astype(np.uint8)
    for k in range(10):
        images[labels == k, 2 + 2 * k : 4 + 2 * k, 4:24] = 250
    return images, labels


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A folder with four small, learnable IDX .gz files, registered as the MNIST files
    (their checksums patched in) and set as MLP_DATA_DIR. 600 training, 200 test images."""
    folder = tmp_path / "tiny-mnist"
    folder.mkdir()
    rng = np.random.default_rng(7)
    train_images, train_labels = synthetic_digits(600, rng)
    test_images, test_labels = synthetic_digits(200, rng)
    files = {}
    for key, array in (
        ("train-images", train_images),
        ("train-labels", train_labels),
        ("test-images", test_images),
        ("test-labels", test_labels),
    ):
        name = data.MNIST_FILES[key][0]
        raw = idx_bytes(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        files[key] = (name, hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(mnist_module, "MNIST_FILES", files)
    monkeypatch.setenv("MLP_DATA_DIR", str(folder))
    monkeypatch.delenv("MLP_MNIST_MIRROR", raising=False)
    return folder


@pytest.fixture
def real_mnist() -> Path:
    """The real MNIST files: ../shared/mnist, else a cache that `mlp` already filled."""
    if (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return SHARED_MNIST
    cache = data.default_data_dir()
    names = [name for name, _ in data.MNIST_FILES.values()]
    if all((cache / n).is_file() or (cache / f"{n}.gz").is_file() for n in names):
        return cache  # load_mnist verifies each file's checksum as it reads it
    pytest.skip(f"the real MNIST is neither at {SHARED_MNIST} nor in the cache {cache}")


@pytest.fixture
def quick_digits(tmp_path, real_mnist, monkeypatch) -> Path:
    """A checkpoint of 784-64-10 after two epochs on the real MNIST: enough to read digits."""
    from click.testing import CliRunner

    from mlpcli.cli import cli

    monkeypatch.setenv("MLP_DATA_DIR", str(real_mnist))
    out = tmp_path / "digits.npz"
    args = ["train", "--layers", "784,64,10", "--epochs", "2", "--out", str(out), "-q"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    return out


def png_bytes(pixels: np.ndarray) -> bytes:
    """(h, w) uint8 pixels as a PNG file's bytes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def run_state(model, seed: int = 0, learning_rate: float = 0.1, optimizer: str = "sgd", **settings):
    """A new run's state for fit(): `model` trained by `optimizer` at a constant rate, its
    shuffles drawn from default_rng(seed) and its dropout masks from default_rng(seed + 1)."""
    from mlpcli.nn.optim import make_optimizer
    from mlpcli.nn.schedules import Schedule
    from mlpcli.training import RunState

    return RunState(
        model,
        make_optimizer(optimizer, model.params, learning_rate, **settings),
        Schedule("constant", learning_rate, epochs=1000),
        np.random.default_rng(seed),
        np.random.default_rng(seed + 1),
    )


def ctrl_c_in_epoch(monkeypatch, epoch: int) -> None:
    """Make training raise KeyboardInterrupt as epoch `epoch` starts, as Ctrl-C would; the
    epochs before it run as usual."""
    from mlpcli.training import loop

    real, started = loop._run_epoch, []

    def interrupted(*args, **kwargs):
        started.append(1)
        if len(started) == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "_run_epoch", interrupted)


def central_differences(value, params: list[np.ndarray], h: float = 1e-6) -> list[np.ndarray]:
    """d value() / d p for every entry of every array in `params` (float64, changed in place
    and restored), by central differences."""
    numeric = []
    for param in params:
        gradient = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + h
            up = value()
            param[index] = saved - h
            down = value()
            param[index] = saved
            gradient[index] = (up - down) / (2 * h)
        numeric.append(gradient)
    return numeric


def rounding_bound(model, X: np.ndarray) -> np.ndarray:
    """How far apart two float32 forward passes of X (n, d) through `model` may end, (n, k),
    when their sums run in other orders (BLAS blocks a product by its shape). A product of
    length-m sums is within gamma_m |A| |W| of the exact one, gamma_m = m u / (1 - m u) and
    u = eps / 2 (Higham, Accuracy and Stability of Numerical Algorithms, (3.13)), and adding
    the bias within u |Z|; a difference in A reaches Z through |W|, and every activation
    here changes by at most the change of its input. Two passes differ by twice one's error."""
    u = np.finfo(np.float32).eps / 2
    activation = model.get_activation()
    A, apart = np.asarray(X, np.float64), np.zeros((len(X), model.layers[0]))
    for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        W, gamma = W.astype(np.float64), len(W) * u / (1 - len(W) * u)
        Z = A @ W + b
        apart = apart @ np.abs(W) + 2 * (gamma * (np.abs(A) @ np.abs(W)) + u * np.abs(Z))
        if layer < len(model.weights) - 1:
            A = activation.forward(Z)
    return apart


def chromium():
    """A headless Chromium driven by selenium, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("no chromium and chromedriver on PATH (apt install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--user-data-dir=/tmp/mlpcli-chromium")
    return webdriver.Chrome(options=options, service=Service(driver))


def exited_cleanly(result) -> bool:
    """Whether a CliRunner result ended by exiting (with any code), not by an uncaught
    exception: CliRunner keeps that in result.exception and prints no traceback, so the
    output cannot tell."""
    return result.exception is None or isinstance(result.exception, SystemExit)
