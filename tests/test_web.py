"""mlp serve: real HTTP on 127.0.0.1, and the drawing page in a real headless browser."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from click.testing import CliRunner
from conftest import chromium, png_bytes
from PIL import Image

from mlpcli import load_checkpoint
from mlpcli.cli import cli
from mlpcli.web.server import MAX_BODY, PredictServer

PNG = {"Content-Type": "image/png"}  # what the page sends; a form's types are refused


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def server(quick_digits):
    running = PredictServer(load_checkpoint(quick_digits), "127.0.0.1", 0)
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def seven() -> np.ndarray:
    """A 7 in dark ink on white paper, 100x100."""
    paper = np.full((100, 100), 255, np.uint8)
    paper[20:28, 20:80] = 0
    for row in range(28, 85):
        column = 78 - (row - 28) * 30 // 57
        paper[row, column - 4 : column + 4] = 0
    return paper


def test_post_predict_answers_as_mlp_predict_json_does(server, quick_digits, tmp_path):
    image = tmp_path / "seven.png"
    Image.fromarray(seven()).save(image)
    cli_answer = json.loads(run("predict", image, "--checkpoint", quick_digits, "--json").stdout)
    response = requests.post(
        server.url + "predict", data=image.read_bytes(), headers=PNG, timeout=10
    )
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == set(cli_answer)
    assert answer["prediction"] == cli_answer["prediction"] == 7
    assert answer["label"] == "7"
    np.testing.assert_allclose(answer["probabilities"], cli_answer["probabilities"], rtol=1e-6)
    shown = requests.post(
        server.url + "predict?pixels=1", data=png_bytes(seven()), headers=PNG, timeout=10
    )
    pixels = np.array(shown.json()["pixels"])
    assert pixels.shape == (28, 28) and pixels.max() == 255 and not shown.json()["blank"]


def test_the_page_and_info_are_served(server):
    page = requests.get(server.url, timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "<canvas" in page.text and "http" not in page.text.split("<script>")[1][:20]
    assert "cdn" not in page.text.lower() and 'src="http' not in page.text
    info = requests.get(server.url + "info", timeout=10).json()
    assert info == {
        "dataset": "mnist",
        "classes": [str(k) for k in range(10)],
        "image_shape": [28, 28],
    }
    assert requests.get(server.url + "nothing", timeout=10).status_code == 404


def test_bad_bodies_get_400_range_answers_with_a_message(server):
    garbage = requests.post(server.url + "predict", data=b"not an image", headers=PNG, timeout=10)
    assert garbage.status_code == 400 and "not an image" in garbage.json()["error"]
    empty = requests.post(server.url + "predict", data=b"", headers=PNG, timeout=10)
    assert empty.status_code == 400
    huge = requests.post(
        server.url + "predict", data=b"\0" * (MAX_BODY + 1), headers=PNG, timeout=30
    )
    assert huge.status_code == 413 and "more than" in huge.json()["error"]
    assert requests.post(server.url + "elsewhere", data=b"x", timeout=10).status_code == 404
    still = requests.post(server.url + "predict", data=png_bytes(seven()), headers=PNG, timeout=10)
    assert still.status_code == 200  # the server lives on


def test_mlp_serve_binds_to_127_0_0_1_and_stops_on_ctrl_c(quick_digits):
    process = subprocess.Popen(
        [sys.executable, "-m", "mlpcli", "serve", str(quick_digits), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        url = line.split()[1]
        answer = requests.post(url + "predict", data=png_bytes(seven()), headers=PNG, timeout=10)
        answer = answer.json()
        assert answer["prediction"] == 7
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert "stopped" in process.stderr.read()


@pytest.mark.e2e
def test_drawing_on_the_page_shows_the_prediction(server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    try:
        browser.get(server.url)
        board = browser.find_element(By.ID, "board")
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 10
        # a 1: one stroke down the middle of the 280 px board (offsets from its centre)
        ActionChains(browser).move_to_element_with_offset(
            board, 0, -90
        ).click_and_hold().move_by_offset(0, 60).move_by_offset(0, 60).move_by_offset(
            0, 60
        ).release().perform()
        WebDriverWait(browser, 15).until(
            lambda b: b.find_element(By.ID, "answer").text.strip() != ""
        )
        time.sleep(0.5)  # the stroke's last request may still be answering
        WebDriverWait(browser, 15).until(lambda b: "%" in b.find_element(By.ID, "status").text)
        assert browser.find_element(By.ID, "answer").text == "1"
        top = browser.find_element(By.CSS_SELECTOR, "#bars .bar.top .name").text
        assert top == "1"
        seen = browser.execute_script(
            "const c = document.getElementById('seen');"
            "return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"
            ".filter((v, i) => i % 4 == 0 && v > 0).length;"
        )
        assert seen > 20  # the 28x28 input the network saw is drawn, not blank
        browser.find_element(By.ID, "clear").click()
        time.sleep(1.0)  # an answer to the stroke still on its way must not come back
        assert browser.find_element(By.ID, "answer").text == ""
    finally:
        browser.quit()


def _raw(server, request: bytes, wait: float = 10) -> bytes:
    """`request` sent as it is on a socket of its own; the whole answer."""
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=wait) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(1 << 16):
            answer += chunk
    return answer


def test_only_this_servers_page_may_ask_it(server):
    """A page elsewhere (or one that DNS rebinding points here) gets nothing: not /info, and
    no POST, whatever type a form could send."""
    port = server.server_address[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert requests.get(server.url + "info", headers={"Host": host}, timeout=10).ok
    rebound = requests.get(server.url + "info", headers={"Host": f"evil.example:{port}"})
    assert rebound.status_code == 403 and "does not serve 'evil.example" in rebound.json()["error"]
    body = png_bytes(seven())
    foreign = {**PNG, "Origin": "http://evil.example"}
    response = requests.post(server.url + "predict", data=body, headers=foreign, timeout=10)
    assert response.status_code == 403
    own = {**PNG, "Origin": f"http://127.0.0.1:{port}"}
    assert requests.post(server.url + "predict", data=body, headers=own, timeout=10).ok
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        typed = requests.post(
            server.url + "predict", data=body, headers={"Content-Type": kind}, timeout=10
        )
        assert typed.status_code == 415 and "send an image" in typed.json()["error"]
    untyped = _raw(server, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
    assert untyped.startswith(b"HTTP/1.0 415")  # no type at all: refused too


def test_info_names_a_folder_not_its_path(quick_digits, tmp_path):
    from mlpcli import save_checkpoint

    loaded = load_checkpoint(quick_digits)
    moved = tmp_path / "elsewhere.npz"
    save_checkpoint(moved, loaded.model, {**loaded.meta, "dataset": "/home/someone/secret/shapes"})
    running = PredictServer(load_checkpoint(moved), "127.0.0.1", 0)
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        info = requests.get(running.url + "info", timeout=10).json()
        assert info["dataset"] == "shapes" and "secret" not in json.dumps(info)
    finally:
        running.shutdown()
        running.server_close()


def test_a_malformed_length_is_a_400_and_a_slow_client_is_cut_off(server):
    port = server.server_address[1]
    head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: image/png\r\n" % port
    answer = _raw(server, head + "Content-Length: ²\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 400") and b"is no size" in answer
    server.deadline = 1.0
    host, _ = server.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as connection:
        closed = False
        for byte in head:  # a byte every 0.2 s: each within the read timeout
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - started > 5:
                break
        closed = closed or connection.recv(1) == b""
    assert closed and time.monotonic() - started < 5


def test_requests_past_the_workers_get_503_at_once(server):
    from mlpcli.web.server import WORKERS

    host, port = server.server_address[:2]
    idle = [socket.create_connection((host, port), timeout=10) for _ in range(WORKERS)]
    try:
        time.sleep(0.3)  # each holds a slot, saying nothing
        started = time.monotonic()
        busy = requests.get(server.url + "info", timeout=10)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert time.monotonic() - started < 2
    finally:
        for connection in idle:
            connection.close()
    time.sleep(0.3)
    assert requests.get(server.url + "info", timeout=10).ok  # slots given back


def test_mlp_serve_beyond_loopback_warns_and_sigterm_exits_143(quick_digits):
    command = [sys.executable, "-m", "mlpcli", "serve", str(quick_digits), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().startswith("serving http://0.0.0.0:")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 143
    said = process.stderr.read()
    assert "anyone who can reach it on the network can use the page" in said
    assert "stopped by SIGTERM" in said and "Traceback" not in said


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_twenty_requests_of_the_largest_image_at_once_stay_under_a_gigabyte(quick_digits):
    """Six such requests at once took a server that started a thread each to 1.6 GB."""
    from mlpcli.web.server import WORKERS

    command = [sys.executable, "-m", "mlpcli", "serve", str(quick_digits), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[1]
        paper = np.full((4999, 4999), 255, np.uint8)  # just under 25 megapixels
        paper[1000:4000, 2300:2700] = 0
        body, answers = png_bytes(paper), []

        def ask() -> None:
            answers.append(requests.post(url + "predict", data=body, headers=PNG, timeout=120))

        asking = [threading.Thread(target=ask) for _ in range(20)]
        for thread in asking:
            thread.start()
        for thread in asking:
            thread.join()
        with open(f"/proc/{process.pid}/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    served = [a for a in answers if a.status_code == 200]
    assert len(served) >= WORKERS and all(a.json()["prediction"] == 1 for a in served)
    assert {a.status_code for a in answers} <= {200, 503}
    assert peak < 1 << 20  # KiB: a gigabyte
