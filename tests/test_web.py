"""mlp serve: real HTTP on 127.0.0.1, and the drawing page in a real headless browser."""

import json
import signal
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
    response = requests.post(server.url + "predict", data=image.read_bytes(), timeout=10)
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == set(cli_answer)
    assert answer["prediction"] == cli_answer["prediction"] == 7
    assert answer["label"] == "7"
    np.testing.assert_allclose(answer["probabilities"], cli_answer["probabilities"], rtol=1e-6)
    shown = requests.post(server.url + "predict?pixels=1", data=png_bytes(seven()), timeout=10)
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
    garbage = requests.post(server.url + "predict", data=b"not an image", timeout=10)
    assert garbage.status_code == 400 and "not an image" in garbage.json()["error"]
    empty = requests.post(server.url + "predict", data=b"", timeout=10)
    assert empty.status_code == 400
    huge = requests.post(server.url + "predict", data=b"\0" * (MAX_BODY + 1), timeout=30)
    assert huge.status_code == 413 and "more than" in huge.json()["error"]
    assert requests.post(server.url + "elsewhere", data=b"x", timeout=10).status_code == 404
    still = requests.post(server.url + "predict", data=png_bytes(seven()), timeout=10)
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
        answer = requests.post(url + "predict", data=png_bytes(seven()), timeout=10).json()
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
