"""Shared fixtures. Integration tests need the real images in ../shared (CI has them):
a missing ../shared is a failure, never a skip."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DIACHESTXR_SHARED", ROOT.parent / "shared"))
EXAMPLES = SHARED / "examples"
DATA = SHARED / "data"
STARTUP_TIMEOUT_S = 180  # importing torch + gradio and building two models on a busy CPU


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the integration tests need ../shared beside the checkout "
                    "(or DIACHESTXR_SHARED pointing at it)")
    return path


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return _require(EXAMPLES)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(DATA)


@pytest.fixture(scope="session")
def random_weights_dir(tmp_path_factory) -> Path:
    """Random-weight checkpoints of both tasks (plumbing, not accuracy)."""
    from tests.checkpoints import write_random_checkpoints

    return write_random_checkpoints(tmp_path_factory.mktemp("random-weights"))


@pytest.fixture(scope="session")
def random_predictor(random_weights_dir):
    from diachestxr import Predictor

    # plumbing on synthetic images: the radiograph check (tested on its own) stays out of it
    with Predictor(weights_dir=random_weights_dir, gate="off") as predictor:
        yield predictor


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch):
    """Tests never reach the real Hub; tests of the Hub path point HF_ENDPOINT at a local server."""
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


# ------------------------------------------------------------------ the real app
STARTUP_TIMEOUT_S = 180  # importing torch + gradio and building two models on a busy CPU


README_PORT = 7860  # the port the README's gradio_client snippet names


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(weights_dir: Path | None, examples_dir: Path | None, log_path: Path,
                command: list[str] | None = None, cwd: Path = ROOT,
                env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """Start `python app.py` (or `command`, e.g. an installed `diachestxr serve`) on a free
    port; yield its URL; stop it afterwards.
    weights_dir None: the weights a fresh clone uses (bundled; the Hub is skipped)."""
    port = port or free_port()  # a fixed port: e.g. the README's snippet names 7860
    env = {**(env or os.environ), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "DIACHESTXR_EXAMPLES_DOWNLOAD": "0", "PYTHONUNBUFFERED": "1"}
    if weights_dir is not None:
        env["DIACHESTXR_WEIGHTS_DIR"] = str(weights_dir)
    else:
        env.pop("DIACHESTXR_WEIGHTS_DIR", None)
        env["DIACHESTXR_HUB_REPO"] = "none"
    if examples_dir is not None:
        env["DIACHESTXR_EXAMPLES_DIR"] = str(examples_dir)
    else:  # no sample images anywhere: an empty folder overrides the shipped ones
        empty = log_path.parent / "no-examples"
        empty.mkdir(exist_ok=True)
        env["DIACHESTXR_EXAMPLES_DIR"] = str(empty)
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command or [sys.executable, "app.py"], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"{proc.args} exited with {proc.returncode}:\n"
                                f"{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{proc.args} did not answer within {STARTUP_TIMEOUT_S} s:\n"
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


@pytest.fixture(scope="session")
def app_url(examples_dir, tmp_path_factory) -> Iterator[str]:
    """The app as a fresh clone runs it: bundled weights, no network."""
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    # on the README's port when it is free: its gradio_client snippet then runs against this
    # server instead of starting another (tests/test_readme.py)
    port = README_PORT if port_is_free(README_PORT) else None
    with running_app(None, examples_dir, log_path, port=port) as url:
        yield url
