"""Faults from outside: a misbehaving network, a full disk, kills mid-write, odd image files.
Each case asserts the error type or exit code, a one-line message, and the files left behind."""

import errno
import gzip
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import exited_cleanly
from PIL import Image

from mlpcli import data
from mlpcli.data import fetch
from mlpcli.errors import CacheError, DownloadError, ImageError
from mlpcli.io.checkpoint import load_checkpoint, save_checkpoint
from mlpcli.io.image import prepare_image
from mlpcli.nn.model import MLP

FAST = {"attempts": 1, "backoff": 0, "progress": False, "timeout": 2}
CONTENT = bytes(range(256)) * 64
NORMALIZATION = {"mean": 0.13, "std": 0.31}


def _served(tmp_path, serve, gz_bytes=None):
    """A loopback server for a folder holding f.gz; returns it, the SHA-256 and the cache."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "f.gz").write_bytes(gz_bytes if gz_bytes is not None else gzip.compress(CONTENT))
    return serve(folder), hashlib.sha256(CONTENT).hexdigest(), tmp_path / "cache"


def _one_line(message: str) -> str:
    assert "\n" not in message and "Traceback" not in message
    return message


def test_truncated_body_is_a_download_error_and_leaves_nothing(tmp_path, serve):
    server, sha, cache = _served(tmp_path, serve)
    server.faults["f.gz"] = "truncate"
    with pytest.raises(DownloadError) as caught:
        data.download("f", sha, [server.url], cache, **FAST)
    assert "could not download f.gz" in _one_line(str(caught.value))
    assert list(cache.iterdir()) == []


def test_stalled_server_times_out_and_is_retried(tmp_path, serve):
    server, sha, cache = _served(tmp_path, serve)
    server.faults["f.gz"] = "stall"
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as caught:
        data.download("f", sha, [server.url], cache, **{**FAST, "timeout": 0.3, "attempts": 2})
    assert time.monotonic() - started < 4  # neither attempt waited for the 5 s stall
    assert len(server.requests) == 2 and "--mirror" in _one_line(str(caught.value))
    assert list(cache.iterdir()) == []


def test_corrupt_gzip_from_the_server_moves_on_and_leaves_nothing(tmp_path, serve):
    good = gzip.compress(CONTENT)
    broken = good[:20] + bytes(len(good) - 28) + good[-8:]  # deflate data zeroed, trailer kept
    server, sha, cache = _served(tmp_path, serve, broken)
    with pytest.raises(DownloadError, match="not a valid gzip") as caught:
        data.download("f", sha, [server.url], cache, **FAST)
    _one_line(str(caught.value))
    assert list(cache.iterdir()) == []


def test_gzip_claiming_an_enormous_size_is_refused_before_allocating(tmp_path, serve):
    lying = gzip.compress(CONTENT)[:-4] + (1 << 31).to_bytes(4, "little")
    server, sha, cache = _served(tmp_path, serve, lying)
    with pytest.raises(DownloadError, match="more than 64 MiB"):
        data.download("f", sha, [server.url], cache, **FAST)
    assert list(cache.iterdir()) == []


def test_full_disk_is_one_clear_cache_error_and_leaves_nothing(tmp_path, serve, monkeypatch):
    server, sha, cache = _served(tmp_path, serve)

    def full_disk(url, file, *settings):
        file.write(b"x" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fetch, "_stream_to", full_disk)
    with pytest.raises(CacheError, match="No space left on device.*--data-dir") as caught:
        data.download("f", sha, [server.url], cache, **FAST)
    _one_line(str(caught.value))
    assert list(cache.iterdir()) == []


def _run_until(script: str, marker: str, tmp_path) -> subprocess.Popen:
    """Start `script` in a fresh Python and wait until it prints `marker`."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout.readline().strip() == marker
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def test_kill_during_a_download_leaves_no_file_the_tool_would_read(tmp_path, serve):
    server, sha, cache = _served(tmp_path, serve)
    server.faults["f.gz"] = "hang"
    process = _run_until(
        f"""
        import threading, time
        from pathlib import Path
        from mlpcli import data
        def report():  # once the first half of the body is on disk
            while not list(Path({str(cache)!r}).glob(".f.gz.*.part")):
                time.sleep(0.01)
            print("downloading", flush=True)
        threading.Thread(target=report, daemon=True).start()
        data.download("f", {sha!r}, [{server.url!r}], Path({str(cache)!r}), progress=False)
        """,
        "downloading",
        tmp_path,
    )
    _kill(process)
    assert data.read_cached(cache, "f", sha) is None
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".part")] == []
    # the next download clears what the killed one left once it is stale, then succeeds
    for part in cache.glob("*.part"):
        os.utime(part, (time.time() - 2 * data.STALE_PART_SECONDS,) * 2)
    server.faults.clear()
    assert data.download("f", sha, [server.url], cache, **FAST) == CONTENT
    assert [p.name for p in cache.iterdir()] == ["f.gz"]


def test_kill_during_a_checkpoint_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.npz"
    model = MLP.initialize([784, 8, 10], np.random.default_rng(0))
    save_checkpoint(target, model, {"note": "the good one", "normalization": NORMALIZATION})
    before = target.read_bytes()
    process = _run_until(
        f"""
        import time
        import numpy as np
        from mlpcli.io import checkpoint
        from mlpcli.nn.model import MLP
        def slow_savez(file, **arrays):  # writes part of the archive, then hangs
            file.write(b"PK" + bytes(5000)); file.flush()
            print("writing", flush=True)
            time.sleep(60)
        checkpoint.np.savez = slow_savez
        model = MLP.initialize([784, 8, 10], np.random.default_rng(1))
        checkpoint.save_checkpoint({str(target)!r}, model, {{"note": "the new one"}})
        """,
        "writing",
        tmp_path,
    )
    _kill(process)
    assert target.read_bytes() == before
    assert load_checkpoint(target).meta["note"] == "the good one"


def _digit(size=(84, 84)) -> Image.Image:
    """A dark '1'-like stroke on white paper, as a person might draw it."""
    pixels = np.full((size[1], size[0]), 255, np.uint8)
    h, w = pixels.shape
    pixels[h // 5 : 4 * h // 5, w // 2 - w // 12 : w // 2 + w // 12] = 20
    return Image.fromarray(pixels)


@pytest.mark.parametrize(
    "kind, mode, save",
    [
        (
            "16-bit PNG",
            "I;16",
            lambda im, p: Image.fromarray(np.asarray(im).astype(np.uint16) * 257).save(p),
        ),
        ("palette PNG", "P", lambda im, p: im.convert("P").save(p)),
        ("CMYK JPEG", "CMYK", lambda im, p: im.convert("CMYK").save(p, quality=95)),
        (
            "animated GIF",
            "L",
            lambda im, p: im.save(p, save_all=True, append_images=[Image.new("L", im.size)]),
        ),
    ],
)
def test_unusual_formats_give_the_input_of_the_plain_image(tmp_path, kind, mode, save):
    plain, odd = tmp_path / "plain.png", tmp_path / f"odd.{'jpg' if 'JPEG' in kind else 'png'}"
    _digit().save(plain)
    save(_digit(), odd)
    if "GIF" in kind:
        odd = odd.rename(odd.with_suffix(".gif"))
    expected, got = prepare_image(plain), prepare_image(odd)
    assert got.has_digit and Image.open(odd).mode == mode
    assert getattr(Image.open(odd), "n_frames", 1) == (2 if "GIF" in kind else 1)
    assert np.abs(got.pixels - expected.pixels).mean() < 0.03  # JPEG blurs edges a little


def test_a_one_pixel_image_is_answered_as_holding_no_digit(tmp_path):
    Image.new("L", (1, 1), 0).save(tmp_path / "dot.png")
    prepared = prepare_image(tmp_path / "dot.png")
    assert prepared.pixels.shape == (28, 28) and not prepared.has_digit


@pytest.mark.parametrize("side", [10_000, 15_000])  # Pillow warns above 89 Mpx, refuses at 179
def test_huge_images_and_decompression_bombs_are_refused_cleanly(tmp_path, side):
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path)  # a few kB on disk: a decompression bomb
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageError, match="too large.*scale it down") as caught:
        prepare_image(path)
    _one_line(str(caught.value))


def test_an_unwritable_out_folder_is_refused_before_training(tiny_mnist, monkeypatch):
    from click.testing import CliRunner

    from mlpcli.cli import cli

    started = []
    monkeypatch.setattr("mlpcli.api.train", lambda *a, **k: started.append(1))
    for out in ("/proc/model.npz", ""):
        result = CliRunner().invoke(cli, ["train", "--out", out])
        assert result.exit_code == 2, result.output
        assert "--out" in result.stderr and exited_cleanly(result)
    assert started == []  # nothing was trained, so nothing was lost


def test_a_file_that_appears_at_out_during_training_is_kept(tiny_mnist, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mlpcli import api
    from mlpcli.cli import cli

    out = tmp_path / "model.npz"
    real_train = api.train

    def someone_writes_out_meanwhile(*args, **kwargs):
        result = real_train(*args, **kwargs)
        out.write_bytes(b"another run's file")
        return result

    monkeypatch.setattr(api, "train", someone_writes_out_meanwhile)
    args = ["train", "--layers", "784,8,10", "--epochs", "1", "--validation-size", "50"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"another run's file"
    beside = tmp_path / "model-1.npz"
    assert f"saved {beside}" in result.stdout and "appeared" in result.stderr
    from mlpcli import load_checkpoint

    assert load_checkpoint(beside).model.layers == [784, 8, 10]


def test_atomic_write_without_replacing_takes_the_next_free_name(tmp_path):
    from mlpcli.io.files import atomic_write

    target = tmp_path / "a.npz"
    target.write_bytes(b"old")
    (tmp_path / "a-1.npz").write_bytes(b"older")
    with atomic_write(target, replace=False) as out:
        out.file.write(b"new")
    assert out.path == tmp_path / "a-2.npz" and out.path.read_bytes() == b"new"
    assert target.read_bytes() == b"old" and (tmp_path / "a-1.npz").read_bytes() == b"older"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.npz", "a-2.npz", "a.npz"]


def _cli(*args):
    from click.testing import CliRunner

    from mlpcli.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize(
    "text, message",
    [
        (b"epochs = 1.9\n", "expected a whole number"),
        (b"batch-size = true\n", "not true/false"),
        (b"lr = true\n", "not true/false"),
        (b"lr = [1, 2]\n", "expected a number"),
        (b"activation = 3\n", "expected one of"),
        (b"force = true\n", "force cannot be set in"),
        (b"resume = 'x.npz'\n", "resume cannot be set in"),
        (b"lr = \xff\n", "is not UTF-8 text"),
        (b"layers = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ],
)
def test_config_values_are_taken_as_written_or_refused(tmp_path, text, message):
    config = tmp_path / "c.toml"
    config.write_bytes(text)
    result = _cli("train", "--config", config, "--out", tmp_path / "m.npz")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert exited_cleanly(result) and not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--leaky-slope", "nan"], "leaky_slope must be at least 0 and at most 1"),
        (["--init-scale", "nan"], "init_scale must be a positive number"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_nan_and_negative_options_are_usage_errors(tmp_path, args, message):
    result = _cli("train", *args, "--out", tmp_path / "m.npz")
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_a_data_dir_of_an_unknown_user_is_one_line(tmp_path):
    result = _cli("train", "--data-dir", "~no-such-user-here/mnist", "--out", tmp_path / "m.npz")
    assert result.exit_code == 1 and "no such user" in result.stderr
    assert exited_cleanly(result)


def test_a_fifo_as_config_or_image_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = _cli("train", "--config", fifo, "--out", tmp_path / "m.npz")
    assert result.exit_code == 2 and "not a regular file" in result.stderr
    from mlpcli.errors import ImageError
    from mlpcli.io.image import prepare_image

    with pytest.raises(ImageError, match="not a regular file"):
        prepare_image(fifo)
    assert time.monotonic() - started < 10


def test_force_replaces_only_regular_files_and_keeps_their_mode(tiny_mnist, tmp_path):
    link, target = tmp_path / "link.npz", tmp_path / "target.npz"
    target.write_bytes(b"kept")
    link.symlink_to(target)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for out in (link, fifo, tmp_path):
        result = _cli("train", "--out", out, "--force")
        assert result.exit_code == 2 and "--out" in result.stderr, result.output
    assert target.read_bytes() == b"kept" and link.is_symlink()
    out = tmp_path / "private.npz"
    out.write_bytes(b"old")
    out.chmod(0o600)
    args = ["--layers", "784,8,10", "--epochs", 1, "--validation-size", 50, "-q"]
    assert _cli("train", *args, "--out", out, "--force").exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_bytes() != b"old"


def test_stale_checkpoint_temporaries_are_removed_on_the_next_save(tmp_path):
    from mlpcli.io.checkpoint import save_checkpoint
    from mlpcli.nn.model import MLP

    stale, fresh = tmp_path / ".m.npz.abc.part", tmp_path / ".m.npz.def.part"
    for part in (stale, fresh):
        part.write_bytes(b"x" * 1000)  # what kill -9 in the middle of a save leaves
    os.utime(stale, (time.time() - 2 * data.STALE_PART_SECONDS,) * 2)
    model = MLP.initialize([784, 4, 10], np.random.default_rng(0))
    meta = {"normalization": {"mean": 0.1, "std": 0.3}}
    save_checkpoint(tmp_path / "m.npz", model, meta)
    assert not stale.exists() and fresh.exists()  # a young one may be another run's


def test_one_bad_image_of_several_fails_alone(tmp_path):
    from PIL import Image

    from mlpcli.io.checkpoint import save_checkpoint
    from mlpcli.nn.model import MLP

    checkpoint = tmp_path / "m.npz"
    model = MLP.initialize([784, 4, 10], np.random.default_rng(0))
    save_checkpoint(checkpoint, model, {"normalization": {"mean": 0.1, "std": 0.3}})
    good = tmp_path / "good.png"
    Image.new("L", (28, 28), 255).save(good)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    huge = tmp_path / "huge.png"
    Image.new("L", (6000, 5000), 255).save(huge)  # 30 megapixels: refused from its header
    result = _cli("predict", good, tmp_path / "bad.png", huge, good, "--checkpoint", checkpoint)
    assert result.exit_code == 1
    assert result.stdout.count(f"{good}: ") == 2  # both good images answered
    assert "bad.png is not an image" in result.stderr and "6000x5000 pixels" in result.stderr
    assert exited_cleanly(result)


def test_a_trickling_server_is_cut_off_by_the_deadline(tmp_path, serve):
    server, sha, cache = _served(tmp_path, serve)
    server.faults["f.gz"] = "trickle"  # a byte every 0.05 s: each read is well within timeout
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        data.download("f", sha, [server.url], cache, **{**FAST, "deadline": 1.0})
    assert time.monotonic() - started < 5 and list(cache.iterdir()) == []


def test_an_endless_body_is_cut_off_and_the_next_mirror_tried(tmp_path, serve, monkeypatch):
    from mlpcli.data import fetch

    monkeypatch.setattr(fetch, "MAX_DOWNLOAD_BYTES", 1 << 20)
    server, sha, cache = _served(tmp_path, serve)
    good = serve(server.httpd.root)
    server.faults["f.gz"] = "endless"
    assert data.download("f", sha, [server.url, good.url], cache, **FAST) == CONTENT
    assert good.requests == ["/f.gz"]


@pytest.mark.parametrize("fault", ["bad-length", "double-length", "gzip-encoded"])
def test_odd_headers_still_deliver_the_file(tmp_path, serve, fault):
    """A Content-Length that is not a number or is given twice, and a .gz sent with
    Content-Encoding: gzip (requests undoes it): the checksum decides, not the headers."""
    server, sha, cache = _served(tmp_path, serve)
    server.faults["f.gz"] = fault
    try:
        assert data.download("f", sha, [server.url], cache, **FAST) == CONTENT
    except DownloadError as exc:  # a client may refuse conflicting lengths: cleanly, then
        assert fault == "double-length" and "could not download" in _one_line(str(exc))


@pytest.mark.skipif(
    not __import__("mlpcli.engines.compiled", fromlist=["x"]).available(),
    reason="compiled step not built",
)
def test_a_second_ctrl_c_stops_a_long_compiled_step_at_once(tmp_path):
    """A full-batch step runs in C for seconds without the GIL, where Python cannot run its
    signal handlers; the second Ctrl-C must not wait for it. The step is made to take about
    a minute in epoch 2 with another such C call: OpenSSL's PBKDF2, which checks no signals."""
    process = _run_until(
        """
        import hashlib
        import numpy as np
        from mlpcli.api import TrainConfig, start_run
        from mlpcli.data import Split
        from mlpcli.engines import compiled
        from mlpcli.training import fit

        real, calls = compiled.train_on_ink, []
        def slow(*args):
            calls.append(1)
            if len(calls) == 2:
                print("in a long step", flush=True)
                hashlib.pbkdf2_hmac("sha256", b"step", b"salt", 150_000_000)
            return real(*args)
        compiled.train_on_ink = slow
        rng = np.random.default_rng(0)
        pixels = np.where(rng.random((3000, 784)) < 0.2, 200, 0).astype(np.uint8)
        train = Split(pixels, rng.integers(0, 10, 3000), (0.1, 0.3))
        config = TrainConfig(layers=[784, 16, 10], batch_size=0, epochs=3, patience=0,
                             engine="compiled", augment="")
        result = fit(start_run(config), train, None, config.fit_options(), progress=False)
        print("interrupted" if result.interrupted else "finished", result.state.epoch, flush=True)
        """,
        "in a long step",
        tmp_path,
    )
    started = time.monotonic()
    try:
        process.send_signal(signal.SIGINT)  # the first waits for a safe point...
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)  # ...the second stops now
        out, _ = process.communicate(timeout=20)
    finally:
        process.kill()  # bounded, whatever happened
    assert time.monotonic() - started < 10, "it waited for the step"
    assert out.split() == ["interrupted", "1"]  # the state of the last whole epoch


def test_a_trickling_mirror_is_given_up_by_its_rate_for_the_next(tmp_path, serve, capsys):
    """A server that keeps every read within the timeout but sends too little is left for
    the next mirror at once (not retried, not held to the whole deadline), with a line why."""
    slow, sha, cache = _served(tmp_path, serve)
    slow.faults["f.gz"] = "trickle"  # 20 bytes a second
    good_folder = tmp_path / "good"
    good_folder.mkdir()
    (good_folder / "f.gz").write_bytes(gzip.compress(CONTENT))
    good = serve(good_folder)
    settings = {**FAST, "attempts": 3, "progress": True, "min_rate": 1000, "window": 0.5}
    started = time.monotonic()
    assert data.download("f", sha, [slow.url, good.url], cache, **settings) == CONTENT
    assert time.monotonic() - started < 3  # one window, no retries of the slow mirror
    said = capsys.readouterr().err
    assert f"{slow.url.rstrip('/')}/f.gz: too slow: " in said and "under 1 kB/s" in said
    assert "trying the next mirror" in said
    with pytest.raises(DownloadError, match="too slow: .* under 1 kB/s"):
        data.download("f", sha, [slow.url], tmp_path / "other", **settings)
