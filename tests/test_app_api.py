"""The real app (`python app.py`) in a subprocess, called through gradio_client.

Plumbing, not accuracy: works with random weights (the fixture) and with trained ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from diachestxr import NIH_LABELS, SCREENING_CLASSES

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 180  # importing torch + gradio and building two models on a busy CPU
CALL_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(weights_dir: Path, examples_dir: Path | None, log_path: Path) -> Iterator[str]:
    """Start `python app.py` on a free port; yield its URL; stop it afterwards."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "DIACHESTXR_WEIGHTS_DIR": str(weights_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "DIACHESTXR_EXAMPLES_DOWNLOAD": "0", "PYTHONUNBUFFERED": "1"}
    if examples_dir is not None:
        env["DIACHESTXR_EXAMPLES_DIR"] = str(examples_dir)
    else:
        env.pop("DIACHESTXR_EXAMPLES_DIR", None)
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"app.py did not answer within {STARTUP_TIMEOUT_S} s:\n"
                                f"{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def app_url(random_weights_dir, examples_dir, tmp_path_factory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(random_weights_dir, examples_dir, log_path) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def aspect(path: str | Path) -> float:
    with Image.open(path) as im:
        return im.width / im.height


def check_screen(result: dict, overlay: str, result_file: str, image: Path) -> None:
    assert result["task"] == "screening"
    assert result["label"] in SCREENING_CLASSES
    assert list(result["confidences"]) == list(SCREENING_CLASSES)
    assert all(0.0 <= p <= 1.0 for p in result["confidences"].values())
    assert sum(result["confidences"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["label"] == max(result["confidences"], key=result["confidences"].get)
    assert result["file"] == image.name
    assert aspect(overlay) == pytest.approx(aspect(image), rel=0.01)
    assert json.loads(Path(result_file).read_text()) == result


def check_diagnose(result: dict, overlays: list[dict], result_file: str, image: Path) -> None:
    probs, thr = result["probabilities"], result["thresholds"]
    assert result["task"] == "diagnosis"
    assert set(probs) == set(NIH_LABELS) and len(probs) == 14
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert list(probs.values()) == sorted(probs.values(), reverse=True)
    assert set(thr) == set(NIH_LABELS)
    assert result["findings"] == [label for label in probs if probs[label] >= thr[label]]
    assert overlays and len(overlays) == len(result["explained"])
    for item in overlays:
        assert aspect(item["image"]) == pytest.approx(aspect(image), rel=0.01)
        assert item["caption"]
    assert json.loads(Path(result_file).read_text()) == result


def test_only_the_two_named_endpoints_are_documented(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/screen", "/diagnose"}


def test_screen(client, examples_dir):
    image = examples_dir / "4fed5061.jpg"  # 512x419: the aspect ratio must survive
    result, overlay, result_file = client.predict(_file(image), api_name="/screen")
    check_screen(result, overlay, result_file, image)
    assert result["model"]["weights"] == "local"


def test_screen_opacity_zero_gives_the_plain_image(client, examples_dir):
    image = examples_dir / "IM-0117-0001.jpeg"
    result, overlay, result_file = client.predict(_file(image), 0.0, api_name="/screen")
    check_screen(result, overlay, result_file, image)
    with Image.open(overlay) as im:
        rgb = im.convert("RGB")
    r, g, b = (channel.getextrema() for channel in rgb.split())
    assert r == g == b  # no heatmap colour at opacity 0


def test_diagnose(client, examples_dir):
    image = examples_dir / "00005610_000.jpg"
    result, overlays, result_file = client.predict(_file(image), api_name="/diagnose")
    check_diagnose(result, overlays, result_file, image)


def test_diagnose_one_threshold_for_all(client, examples_dir):
    image = examples_dir / "4fed5061.jpg"
    result, overlays, result_file = client.predict(_file(image), calibrated_thresholds=False,
                                                   threshold=0.9, api_name="/diagnose")
    check_diagnose(result, overlays, result_file, image)
    assert set(result["thresholds"].values()) == {0.9}


def test_bad_file_gives_a_clear_error_and_the_server_keeps_serving(client, examples_dir, tmp_path):
    from gradio_client.exceptions import AppError

    bad = tmp_path / "notes.png"
    bad.write_text("this is a text file, not an X-ray\n")
    for endpoint in ("/screen", "/diagnose"):
        with pytest.raises(AppError) as err:
            client.predict(_file(bad), api_name=endpoint)
        message = str(err.value)
        assert "notes.png" in message and "not a recognised image" in message
        assert "Traceback" not in message
    result, *_ = client.predict(_file(examples_dir / "IM-0127-0001.jpeg"), api_name="/screen")
    assert result["label"] in SCREENING_CLASSES


def test_eight_requests_at_once(client, examples_dir):
    images = sorted(p for p in examples_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    calls = [(images[i % len(images)], "/screen" if i % 2 == 0 else "/diagnose") for i in range(8)]
    jobs = [(image, endpoint, client.submit(_file(image), api_name=endpoint))
            for image, endpoint in calls]
    t0 = time.monotonic()
    for image, endpoint, job in jobs:
        outputs = job.result(timeout=CALL_TIMEOUT_S)
        (check_screen if endpoint == "/screen" else check_diagnose)(*outputs, image)
    # the server is still responsive afterwards
    with urllib.request.urlopen(client.src.rstrip("/") + "/gradio_api/info", timeout=10) as r:
        assert r.status == 200
    print(f"8 concurrent requests finished in {time.monotonic() - t0:.1f} s")


def test_page_carries_the_notice_and_the_model_source(app_url):
    with urllib.request.urlopen(app_url + "config", timeout=10) as r:
        config = r.read().decode()
    assert "not for clinical use" in config
    assert "weights from a local folder" in config


def test_missing_weights_give_a_clear_message_not_random_weights(tmp_path, examples_dir):
    """No checkpoint anywhere: the app still starts, says why, and refuses to predict."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    empty = tmp_path / "no-weights"
    empty.mkdir()
    with running_app(empty, None, tmp_path / "app.log") as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError) as err:
            client.predict(_file(examples_dir / "IM-0127-0001.jpeg"), api_name="/screen")
        assert "not available" in str(err.value) and "screening" in str(err.value)
        with urllib.request.urlopen(url + "config", timeout=10) as r:
            assert "model is not loaded" in r.read().decode()


def _file(path: Path):
    from gradio_client import handle_file

    return handle_file(str(path))
