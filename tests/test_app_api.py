"""The real app (`python app.py`) in a subprocess, called through gradio_client.

Plumbing, not accuracy: the bundled weights (as on a fresh clone); random ones work too.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

import numpy as np

from diachestxr import NIH_LABELS, SCREENING_CLASSES
from diachestxr.inference import ranked
from diachestxr.metrics import screening_predictions
from tests.conftest import ROOT, running_app

CALL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def aspect(path: str | Path) -> float:
    with Image.open(path) as im:
        return im.width / im.height


def check_screen(result: dict, overlay: str, image: Path) -> None:
    assert result["task"] == "screening"
    assert result["label"] in SCREENING_CLASSES
    assert list(result["confidences"]) == list(SCREENING_CLASSES)
    assert all(0.0 <= p <= 1.0 for p in result["confidences"].values())
    assert sum(result["confidences"].values()) == pytest.approx(1.0, abs=1e-4)
    # the label follows the checkpoint's operating point (the arg-max without one)
    threshold = json.loads((ROOT / "diachestxr/weights/screening.json").read_text()).get(
        "covid19_threshold")
    called = screening_predictions(np.array([list(result["confidences"].values())]),
                                   SCREENING_CLASSES, threshold)[0]
    assert result["label"] == SCREENING_CLASSES[called]
    _no_upload_name(result, [overlay], image)
    assert aspect(overlay) == pytest.approx(aspect(image), rel=0.01)
    assert result["explained"] == result["label"] and result["method"] == "gradcam"
    _no_server_paths(result)


def _no_upload_name(result: dict, files: list[str], image: Path) -> None:
    """A file name may name the patient: results call the upload by an opaque id, and
    result files are named by what they hold and a random id."""
    assert re.fullmatch(r"upload-[0-9a-f]{12}", result["file"])
    assert image.stem not in json.dumps(result)
    for path in files:
        assert re.fullmatch(r"heatmap-[0-9a-f]{16}\.jpg", Path(path).name)


def _no_server_paths(result: dict) -> None:
    """The server's folders never reach a caller (only "bundled with the app", a Hub repo)."""
    assert str(ROOT) not in json.dumps(result) and "/tmp" not in json.dumps(result)
    assert result["model"]["location"] == "bundled with the app"


def check_diagnose(result: dict, overlays: list[dict], image: Path) -> None:
    probs, thr = result["probabilities"], result["thresholds"]
    assert result["task"] == "diagnosis"
    assert set(probs) == set(NIH_LABELS) and len(probs) == 14
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert set(thr) == set(NIH_LABELS)
    assert list(probs) == ranked(probs, thr)  # the display order: findings first
    assert result["findings"] == [label for label in probs if probs[label] >= thr[label]]
    assert overlays and len(overlays) == len(result["explained"])
    for item in overlays:
        assert aspect(item["image"]) == pytest.approx(aspect(image), rel=0.01)
        assert item["caption"]
    _no_upload_name(result, [item["image"] for item in overlays], image)
    # one ranking: the maps are those of the top-ranked labels, in the table's order
    assert result["explained"] == list(probs)[:len(result["explained"])]
    _no_server_paths(result)


def test_a_result_is_served_only_to_the_session_that_made_it(app_url, examples_dir):
    """Each client gets its own session cookie (gradio_client keeps it, as a browser does);
    a result file's URL answers 404 to another client and to a request without the cookie."""
    import httpx
    from gradio_client import Client

    from diachestxr.web.binding import COOKIE

    owner = Client(app_url, verbose=False, download_files=False)
    _, overlay = owner.predict(_file(examples_dir / "4fed5061.jpg"), api_name="/screen")
    _, thumbnails = owner.predict(_file(examples_dir / "00001968_000.jpg"), api_name="/diagnose")
    other = Client(app_url, verbose=False)
    assert owner.cookies[COOKIE] != other.cookies[COOKIE]
    for url in (overlay["url"], thumbnails[0]["image"]["url"]):
        for spelling in (url, url + "/", url.replace("file=", "file/")):  # Gradio serves each
            assert httpx.get(spelling, cookies=owner.cookies).status_code == 200
            assert httpx.get(spelling, cookies=other.cookies).status_code == 404
            assert httpx.get(spelling).status_code == 404


def test_only_the_two_named_endpoints_are_documented(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/screen", "/diagnose"}


def test_screen(client, examples_dir):
    image = examples_dir / "4fed5061.jpg"  # 512x419: the aspect ratio must survive
    result, overlay = client.predict(_file(image), api_name="/screen")
    check_screen(result, overlay, image)
    assert result["model"]["weights"] == "bundled"  # what a fresh clone with no network uses


def test_screen_opacity_zero_gives_the_plain_image(client, examples_dir):
    image = examples_dir / "IM-0117-0001.jpeg"
    result, overlay = client.predict(_file(image), 0.0, api_name="/screen")
    check_screen(result, overlay, image)
    with Image.open(overlay) as im:
        rgb = im.convert("RGB")
    r, g, b = (channel.getextrema() for channel in rgb.split())
    assert r == g == b  # no heatmap colour at opacity 0


def test_screen_accepts_dicom(client, examples_dir, tmp_path):
    import numpy as np

    from tests.images import dicom_file

    with Image.open(examples_dir / "4fed5061.jpg") as im:
        pixels = np.asarray(im.convert("L"), np.uint16) * 257  # 16-bit, 512x419
    dcm = dicom_file(tmp_path / "chest.dcm", pixels)
    result, overlay = client.predict(_file(dcm), api_name="/screen")
    assert result["label"] in SCREENING_CLASSES and result["file"].startswith("upload-")
    assert aspect(overlay) == pytest.approx(pixels.shape[1] / pixels.shape[0], rel=0.01)


def test_diagnose(client, examples_dir):
    image = examples_dir / "00005610_000.jpg"
    result, overlays = client.predict(_file(image), api_name="/diagnose")
    check_diagnose(result, overlays, image)


def test_diagnose_one_threshold_for_all(client, examples_dir):
    image = examples_dir / "4fed5061.jpg"
    result, overlays = client.predict(_file(image), calibrated_thresholds=False,
                                      threshold=0.9, api_name="/diagnose")
    check_diagnose(result, overlays, image)
    assert set(result["thresholds"].values()) == {0.9}


def test_the_map_method_is_a_parameter(client, examples_dir):
    from gradio_client.exceptions import AppError

    image = examples_dir / "00009144_000.jpg"
    result, overlays = client.predict(_file(image), method="gradcam++", api_name="/diagnose")
    check_diagnose(result, overlays, image)
    assert result["method"] == "gradcam++"
    with pytest.raises(AppError, match="scorecam is not in the list of choices"):
        client.predict(_file(image), method="scorecam", api_name="/screen")


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
    assert "weights from the checkpoint bundled with the app" in config


def test_missing_weights_give_a_clear_message_not_random_weights(tmp_path, examples_dir):
    """No checkpoint anywhere: the app still starts, says why, and refuses to predict.
    Also the app with no sample images at all."""
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
            config = r.read().decode()
        assert "model is not loaded" in config and "not for clinical use" in config
        assert "Sample images" not in config  # no examples: no examples block, no failure


def _file(path: Path):
    from gradio_client import handle_file

    return handle_file(str(path))


# ------------------------------------------------------------- sample images (no server)
def test_manifest_lists_the_shared_examples_with_their_labels(examples_dir):
    import csv

    from diachestxr.examples import MANIFEST_FIELDS, read_manifest

    rows = read_manifest()
    assert rows and set(rows[0]) == set(MANIFEST_FIELDS)
    with (examples_dir / "labels.csv").open(newline="") as f:
        shared = {r["file"]: r for r in csv.DictReader(f)}
    assert {r["file"] for r in rows} == set(shared)
    for row in rows:
        assert row["label"] == shared[row["file"]]["label"]
        assert row["url"] == shared[row["file"]]["source_url"]
        assert row["task"] in ("screening", "diagnosis") and row["license"] and row["attribution"]
        labels = SCREENING_CLASSES if row["task"] == "screening" else (*NIH_LABELS, "No Finding")
        assert set(row["label"].split("|")) <= set(labels)
    # the repository ships exactly the manifest's images (CC BY / NIH) and no other image
    shipped = {p.name for p in (ROOT / "examples").iterdir() if p.suffix.lower() != ".csv"}
    assert shipped == set(shared)


def test_examples_come_from_the_examples_dir(monkeypatch, examples_dir):
    from diachestxr.examples import list_examples

    monkeypatch.setenv("DIACHESTXR_EXAMPLES_DIR", str(examples_dir))
    found = list_examples()
    assert len(found) == 13 and all(e.path.is_file() for e in found)
    assert {e.task for e in list_examples("screening")} == {"screening"}
    assert len(list_examples("screening")) == 8 and len(list_examples("diagnosis")) == 5
    # adult Normal and Pneumonia samples exist, so the gallery does not teach the age confound
    adults = {e.label for e in list_examples("screening") if e.source.startswith("NIH")}
    assert adults == {"Normal", "Pneumonia"}


def test_a_fresh_clone_shows_the_shipped_examples_offline(monkeypatch):
    from diachestxr.examples import REPO_EXAMPLES_DIR, list_examples

    monkeypatch.delenv("DIACHESTXR_EXAMPLES_DIR", raising=False)
    found = list_examples(allow_download=False)
    assert len(found) == 13 and all(e.path.parent == REPO_EXAMPLES_DIR for e in found)


def test_no_examples_and_a_stalled_host_cost_little(monkeypatch, tmp_path):
    """A host that accepts connections but never answers costs one timeout, not one per file."""
    from diachestxr import examples

    monkeypatch.delenv("DIACHESTXR_EXAMPLES_DIR", raising=False)
    monkeypatch.setenv("DIACHESTXR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(examples, "REPO_EXAMPLES_DIR", tmp_path / "a-checkout-without-images")
    assert examples.list_examples(allow_download=False) == []
    monkeypatch.setattr(examples, "DOWNLOAD_TIMEOUT_S", 0.5)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # accepts (in the kernel backlog), never replies
        port = server.getsockname()[1]
        rows = [{"file": f"x{i}.jpg", "url": f"http://127.0.0.1:{port}/x{i}.png"} for i in range(5)]
        t0 = time.monotonic()
        examples.download(rows, tmp_path / "cache" / "examples")
        assert time.monotonic() - t0 < 2.0
    assert not list((tmp_path / "cache" / "examples").glob("*"))


def test_a_session_keeps_little_and_not_for_long(examples_dir):
    """Server memory stays flat with many sessions: a session's state holds its result, the
    maps at 64 px and the path of its radiograph's PNG (no image array), and expires."""
    import pickle

    import gradio as gr

    from diachestxr.web import build_demo
    from diachestxr.web.service import Service, load_predictors
    from diachestxr.web.session import STATE_MAP_SIDE, STATE_TTL_S, original

    predictors, errors = load_predictors()  # the app's models, in this process
    app = Service(predictors, errors)
    image = str(examples_dir / "00007471_000.jpg")
    for state in (app.screen(image)[-1], app.diagnose(image)[-1]):
        assert len(pickle.dumps(state)) < 100_000
        assert all(cam.shape == (STATE_MAP_SIDE,) * 2 for cam in state["cams"].values())
        assert Path(original(state)).is_file()
        assert state["result"]["radiograph_check"]["accepted"]
    demo = build_demo(predictors, examples=[])
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert states and all(s.time_to_live == STATE_TTL_S for s in states)


def test_nothing_of_a_patient_outlives_the_answer_or_the_server(tmp_path, examples_dir,
                                                                 random_weights_dir):
    """Each upload is deleted once answered (a failed one too); SIGTERM, as `docker stop`
    sends it, leaves no upload, result or cache file; a dead server's results folder is
    swept by the next one."""
    import os

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale = tmp / "diachestxr-results-999999999-abc"  # a pid no process has
    (stale / "x").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env["TMPDIR"] = str(tmp)
    patient = tmp_path / "DOE^JOHN_MRN-555123.jpg"
    patient.write_bytes((examples_dir / "IM-0127-0001.jpeg").read_bytes())
    bad = tmp_path / "DOE^JANE.png"
    bad.write_text("not an image")
    with running_app(random_weights_dir, None, tmp_path / "app.log", env=env) as url:
        client = Client(url, verbose=False)
        result, *_ = client.predict(_file(patient), api_name="/screen")
        with pytest.raises(AppError):
            client.predict(_file(bad), api_name="/diagnose")
        cache, = tmp.glob("diachestxr-gradio-*")  # Gradio's folder: this server's own
        kept = [p.name for p in cache.rglob("*") if p.is_file()]
        assert not any("DOE" in name for name in kept), kept  # the uploads are gone
        assert "DOE" not in json.dumps(result)
        assert not stale.exists()
        assert list(tmp.glob("diachestxr-results-*"))  # this server's own folder
    # running_app stopped it with SIGTERM
    assert not list(tmp.glob("diachestxr-*")), list(tmp.rglob("*"))
