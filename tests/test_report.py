"""The PDF report (diachestxr.report) and `predict --report-dir`: what a person takes away must
say what the model said, about which image, by which exact model, how far to trust it, and
that it is a research demo. Read back with poppler's pdftotext and pdftoppm (Debian's
poppler-utils; .ci/run installs it): missing tools fail these tests, never skip them."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from diachestxr import NIH_LABELS, SCREENING_CLASSES, Predictor, __version__
from diachestxr.inference import against_threshold, ranked
from diachestxr.registry import DISCLAIMER
from diachestxr.report import write_report
from diachestxr.weights import BUNDLED_DIR
from tests.test_cli import run_cli


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: install Debian's poppler-utils "
                    "(apt-get install poppler-utils, as .ci/run does)")
    return path


def pdf_text(path: Path) -> str:
    """The PDF's text with runs of white space made one space (wrapping and columns vary)."""
    out = subprocess.run([poppler("pdftotext"), str(path), "-"], capture_output=True, text=True,
                         check=True).stdout
    return " ".join(out.split())


def pdf_lines(path: Path) -> list[str]:
    """The PDF's text lines as laid out (a table row stays one line)."""
    return subprocess.run([poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout.splitlines()


def rendered_pages(path: Path, out: Path) -> list[np.ndarray]:
    """Each page as a grayscale image at 50 dpi."""
    out.mkdir()
    subprocess.run([poppler("pdftoppm"), "-r", "50", "-png", str(path), str(out / "page")],
                   check=True, capture_output=True)
    return [np.asarray(Image.open(p).convert("L")) for p in sorted(out.glob("page*.png"))]


def assert_a4_pages_with_ink(pages: list[np.ndarray], images_on_first: bool = True) -> None:
    assert 1 <= len(pages) <= 2
    for page in pages:
        assert page.shape == pytest.approx((584, 413), abs=2)  # A4 at 50 dpi
        assert (page < 160).mean() > 0.005  # text at least, not a blank page
    if images_on_first:  # the radiograph and its heatmap(s) fill much of page 1
        assert (pages[0] < 160).mean() > 0.1


def sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_info_names_the_checkpoint_by_its_hash(random_predictor, random_weights_dir, monkeypatch):
    expected = {task: sha12(random_weights_dir / f"{task}.safetensors")
                for task in ("screening", "diagnosis")}
    # hashed once, when the weights were loaded: info() (so every report) never hashes again
    monkeypatch.setattr(hashlib, "sha256", lambda *a: pytest.fail("info() hashed the weights"))
    assert {task: random_predictor.info(task)["checkpoint_sha256"] for task in expected} == expected


def test_screening_report_of_a_predictor_result(random_predictor, examples_dir, tmp_path):
    r = random_predictor.screen(examples_dir / "4fed5061.jpg", explain="all")
    info = random_predictor.info("screening")
    # what the web app holds: an upload id in "file" that must not reach the report
    result = {**r.to_dict(), "file": "upload-0123456789ab", "method": "gradcam++"}
    path = write_report(tmp_path / "r.pdf", result, r.image,
                        {label: e.cam for label, e in r.explanations.items()}, info)
    text = pdf_text(path)
    assert f"Called: {r.label}" in text
    for c in SCREENING_CLASSES:
        assert f"{c} {r.confidences[c]:.1%}" in text
    # of the three maps passed, only the called class's is drawn
    assert [c for c in SCREENING_CLASSES if f"Heatmap: {c}" in text] == [r.label]
    assert DISCLAIMER in text and f"DiaChestXR {__version__}" in text
    assert f"checkpoint sha256 {info['checkpoint_sha256']}" in text
    assert "Grad-CAM++ is coarse" in text and "It is not localisation" in text
    # no image name unless the caller gives one, in the text or the file's metadata
    assert "upload-" not in text and "4fed5061" not in text
    assert b"4fed5061" not in path.read_bytes() and b"upload-" not in path.read_bytes()
    assert "How far to trust this" in text
    assert "records no test metrics" in text  # random weights: no figures to quote
    assert_a4_pages_with_ink(rendered_pages(path, tmp_path / "pages"))


@pytest.fixture(scope="module")
def bundled_diagnosis():
    with Predictor(tasks=["diagnosis"], weights_dir=BUNDLED_DIR, gate="off") as predictor:
        yield predictor


def test_diagnosis_report_of_the_bundled_model(bundled_diagnosis, examples_dir, tmp_path):
    r = bundled_diagnosis.diagnose(examples_dir / "00001968_000.jpg", explain="all")
    info = bundled_diagnosis.info("diagnosis")
    assert info["outlook"], "the bundled checkpoint's figures for a stranger's film"
    # the maps as the web app keeps them: 64 x 64 uint8
    cams = {label: cv2.resize(np.rint(e.cam * 255).astype(np.uint8), (64, 64))
            for label, e in r.explanations.items()}
    path = write_report(tmp_path / "d.pdf", r.to_dict(), r.image, cams, info,
                        name="00001968_000.jpg")
    text = pdf_text(path)
    assert "Image: 00001968_000.jpg" in text
    assert f"checkpoint sha256 {sha12(BUNDLED_DIR / 'diagnosis.safetensors')}" in text
    assert DISCLAIMER in text and __version__ in text
    # all 14 rows, each with its probability, threshold and (only for findings) the mark
    rows = {line.split()[0]: line.split()[1:] for line in pdf_lines(path)
            if line.split() and line.split()[0] in NIH_LABELS}
    assert set(rows) == set(NIH_LABELS)
    for label in NIH_LABELS:
        assert rows[label][:2] == list(against_threshold(r.to_dict(), label, digits=1))
        assert (rows[label][2:] == ["yes"]) == (label in r.findings)
    # the maps of the three top-ranked labels (the app's ranking), not of the others
    top = ranked(r.probabilities, r.thresholds)[:3]
    drawn = [l for l in NIH_LABELS if f"Heatmap: {l}," in text]
    assert drawn == [l for l in NIH_LABELS if l in top]
    for sentence in info["outlook"]:
        assert sentence in text
    assert_a4_pages_with_ink(rendered_pages(path, tmp_path / "pages"))


def test_report_without_outlook_quotes_the_headline_and_the_operating_point(tmp_path):
    """A hand-made result (no model): the fallbacks and an empty map."""
    image = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
    result = {"task": "screening", "label": "COVID-19",
              "confidences": {"COVID-19": 0.45, "Pneumonia": 0.35, "Normal": 0.2},
              "warnings": ["Low resolution: the image is 300 x 200 px."]}
    model = {"task": "screening", "arch": "alexnet", "location": "bundled with the app",
             "checkpoint_sha256": "0123456789ab", "covid19_threshold": 0.4,
             "operating_point": {"adult_specificity": 0.95},
             "headline_metrics": {"test images": 568, "macro AUROC": 0.987}}
    path = write_report(tmp_path / "r.pdf", result, image,
                        {"COVID-19": np.zeros((64, 64), np.uint8)}, model, name="my film.png")
    text = pdf_text(path)
    assert "On its test split: test images 568, macro AUROC 0.987." in text
    assert "COVID-19 when its probability reaches 40.0% (set to keep 95%" in text
    assert "Heatmap: COVID-19 (called), 45.0% — empty map" in text
    assert "Warning: Low resolution" in text and "Image: my film.png" in text
    assert "AlexNet (alexnet) · checkpoint sha256 0123456789ab" in text


@pytest.mark.parametrize("change, message", [
    (dict(image=np.zeros((8, 8, 3), np.uint8)), "uint8 grayscale"),
    (dict(cams={"Edema": np.zeros((7, 7))}), "unknown label"),
    (dict(cams={"Normal": np.full((7, 7), 2.0)}), "values in [0, 1]"),
    (dict(result={"task": "triage"}), "screening or diagnosis"),
])
def test_bad_input_is_a_clear_error(change, message, tmp_path):
    args = dict(result={"task": "screening", "label": "Normal",
                        "confidences": dict.fromkeys(SCREENING_CLASSES, 1 / 3)},
                image=np.zeros((8, 8), np.uint8), cams={}, model={})
    with pytest.raises(ValueError, match=re.escape(message)):
        write_report(tmp_path / "r.pdf", **{**args, **change})
    assert not (tmp_path / "r.pdf").exists()


def test_cli_writes_one_report_per_image(examples_dir, random_weights_dir, tmp_path):
    images = [examples_dir / "4fed5061.jpg", examples_dir / "IM-0117-0001.jpeg"]
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    proc = run_cli("predict", "--task", "screening", "--json", "--weights", str(random_weights_dir),
                   "--report-dir", str(tmp_path / "reports"), *map(str, images), str(bad))
    assert proc.returncode == 2, proc.stderr  # the bad file; the others get their report
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    reports = sorted((tmp_path / "reports").iterdir())
    assert [p.name for p in reports] == sorted(f"{p.stem}.screening.pdf" for p in images)
    for image, record in zip(images, records):
        assert record["report"] == str(tmp_path / "reports" / f"{image.stem}.screening.pdf")
        text = pdf_text(Path(record["report"]))
        assert f"Image: {image.name}" in text and f"Called: {record['label']}" in text
        assert f"Heatmap: {record['label']} (called)" in text
    assert "report" not in records[2]
