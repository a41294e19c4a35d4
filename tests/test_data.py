import gzip
import hashlib
import socket

import numpy as np
import pytest
from conftest import idx_bytes

from mlpcli import data
from mlpcli.errors import CacheError, DataError, DownloadError

FAST = {"backoff": 0.01, "timeout": 5}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_parse_idx_round_trip():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(array), "x"), array)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x00\x00\x0d\x01" + b"\x00" * 8, "not an IDX file of unsigned bytes"),
        (b"\x12\x34\x08\x01\x00\x00\x00\x01\x00", "not an IDX file"),
        (b"\x00\x00", "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated inside its header"),
        (idx_bytes(np.zeros((2, 3), np.uint8))[:-1], "holds 5 data bytes but its header"),
        (idx_bytes(np.zeros((2, 3), np.uint8)) + b"\x00", "holds 7 data bytes"),
    ],
)
def test_parse_idx_rejects_bad_files_clearly(raw, message):
    with pytest.raises(DataError, match=message):
        data.parse_idx(raw, "file")


def test_normalization_stats_and_normalize():
    images = np.array([[[0, 255], [255, 0]]], dtype=np.uint8)
    mean, std = data.normalization_stats(images)
    assert (mean, std) == pytest.approx((0.5, 0.5))
    X = data.normalize(images, mean, std)
    assert X.shape == (1, 4) and X.dtype == np.float32
    np.testing.assert_allclose(X, [[-1, 1, 1, -1]])


def test_split_is_seeded_disjoint_and_complete():
    train, validation = data.train_validation_split(100, 30, seed=5)
    again = data.train_validation_split(100, 30, seed=5)
    other = data.train_validation_split(100, 30, seed=6)
    assert len(validation) == 30 and len(train) == 70
    assert sorted(np.concatenate([train, validation])) == list(range(100))
    assert np.array_equal(validation, again[1]) and not np.array_equal(validation, other[1])


def test_make_splits_normalizes_with_training_split_statistics(tiny_mnist):
    mnist = data.load_mnist(tiny_mnist, progress=False)
    splits, (mean, std) = data.make_splits(mnist, 100, seed=0)
    train_idx, _ = data.train_validation_split(600, 100, 0)
    assert (mean, std) == data.normalization_stats(mnist["train-images"][train_idx])
    assert splits["train"].X.dtype == np.uint8
    assert splits["train"].features().mean() == pytest.approx(0, abs=1e-4)
    assert splits["train"].features().std() == pytest.approx(1, abs=1e-3)
    assert [len(splits[s].y) for s in ("train", "validation", "test")] == [500, 100, 200]


def _one_file(tmp_path, content=b"some idx bytes"):
    """A folder to serve, holding f.gz; returns it and the SHA-256 of `content`."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "f.gz").write_bytes(gzip.compress(content))
    return folder, hashlib.sha256(content).hexdigest()


def test_download_falls_back_to_the_next_mirror(tmp_path, serve):
    served, sha = _one_file(tmp_path)
    broken, good = serve(served), serve(served)
    broken.faults["f.gz"] = 404
    cache = tmp_path / "cache"
    raw = data.download("f", sha, [_closed_port_url(), broken.url, good.url], cache, **FAST)
    assert raw == b"some idx bytes"
    assert broken.requests == ["/f.gz"]  # a 404 is not retried
    assert sorted(p.name for p in cache.iterdir()) == ["f.gz"]


def test_all_mirrors_failing_lists_each_answer_and_leaves_nothing(tmp_path, serve):
    served, sha = _one_file(tmp_path)
    missing, failing = serve(served), serve(served)
    missing.faults["f.gz"] = 404
    failing.faults["f.gz"] = 500
    refused = _closed_port_url()
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as caught:
        data.download("f", sha, [refused, missing.url, failing.url], cache, attempts=2, **FAST)
    message = str(caught.value)
    assert f"{refused}f.gz: ConnectionError ([Errno 111] Connection refused)" in message
    assert f"{missing.url}f.gz: HTTP 404" in message
    assert f"{failing.url}f.gz: HTTP 500" in message
    assert "\n" not in message and "--mirror" in message
    assert len(failing.requests) == 2  # server errors are retried
    assert list(cache.iterdir()) == []


def test_checksum_mismatch_deletes_the_download(tmp_path, serve):
    served, _ = _one_file(tmp_path, b"tampered")
    server = serve(served)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="SHA-256"):
        data.download("f", hashlib.sha256(b"genuine").hexdigest(), [server.url], cache, **FAST)
    assert list(cache.iterdir()) == []


def test_load_mnist_downloads_once_then_uses_the_cache(tiny_mnist, tmp_path, serve):
    server = serve(tiny_mnist)
    cache = tmp_path / "cache"
    first = data.load_mnist(cache, [server.url], progress=False)
    assert len(server.requests) == 4
    second = data.load_mnist(cache, [server.url], progress=False)
    assert len(server.requests) == 4  # nothing fetched again
    assert first["train-images"].shape == (600, 28, 28)
    np.testing.assert_array_equal(first["test-labels"], second["test-labels"])


def test_mirror_from_the_environment(tiny_mnist, tmp_path, serve, monkeypatch):
    server = serve(tiny_mnist)
    monkeypatch.setenv("MLP_MNIST_MIRROR", server.url)
    data.load_mnist(tmp_path / "cache", progress=False)
    assert len(server.requests) == 4


def test_corrupt_cached_file_is_fetched_again(tiny_mnist, tmp_path, serve):
    server = serve(tiny_mnist)
    cache = tmp_path / "cache"
    data.load_mnist(cache, [server.url], progress=False)
    name = data.MNIST_FILES["test-labels"][0]
    (cache / "mnist" / f"{name}.gz").write_bytes(b"\x1f\x8b garbage")
    mnist = data.load_mnist(cache, [server.url], progress=False)
    assert server.requests[-1] == f"/{name}.gz" and len(server.requests) == 5
    cached = (cache / "mnist" / f"{name}.gz").read_bytes()
    assert cached == (tiny_mnist / f"{name}.gz").read_bytes()
    assert mnist["test-labels"].shape == (200,)


def test_folder_of_uncompressed_files_is_used_directly(tiny_mnist, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name, _ in data.MNIST_FILES.values():
        (folder / name).write_bytes(gzip.decompress((tiny_mnist / f"{name}.gz").read_bytes()))
    mnist = data.load_mnist(folder, ["http://127.0.0.1:9/never-asked/"], progress=False)
    assert mnist["train-labels"].shape == (600,)


def test_default_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MLP_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.default_data_dir() == tmp_path / "mlpcli"
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "mine"))
    assert data.default_data_dir() == tmp_path / "mine"


def test_public_mirrors_are_the_working_ones(monkeypatch):
    monkeypatch.delenv("MLP_MNIST_MIRROR", raising=False)
    assert data.default_mirrors() == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ]


def test_unwritable_cache_is_one_clear_error_not_a_mirror_failure(
    tiny_mnist, tmp_path, serve, monkeypatch
):
    import tempfile

    def read_only(*args, **kwargs):  # what a read-only folder answers (root ignores chmod)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    server = serve(tiny_mnist)
    with pytest.raises(CacheError, match=r"cannot write to the data folder .*Permission denied"):
        data.load_mnist(tmp_path / "cache", [server.url, server.url], progress=False)
    assert server.requests == []  # no mirror is bothered when the cache is the problem


def test_data_dir_that_is_a_file_is_one_clear_error(tiny_mnist, tmp_path, serve):
    server = serve(tiny_mnist)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(CacheError, match="cannot create the data folder"):
        data.load_mnist(not_a_folder, [server.url], progress=False)


def test_normalize_an_empty_split():
    assert data.normalize(np.zeros((0, 28, 28), np.uint8), 0.1, 0.3).shape == (0, 784)
