"""`python -m diachestxr predict` as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import re
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from diachestxr import NIH_LABELS, SCREENING_CLASSES
from tests.conftest import ROOT


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "DIACHESTXR_HUB_REPO": "none", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "diachestxr", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "notes.png"
    path.write_text("not an image")
    return path


def test_predict_json_screening_with_a_bad_file_among_good(examples_dir, random_weights_dir,
                                                            bad_file, tmp_path):
    good = [str(examples_dir / "4fed5061.jpg"), str(examples_dir / "IM-0117-0001.jpeg")]
    proc = run_cli("predict", "--task", "screening", "--json", "--weights", str(random_weights_dir),
                   "--cam-dir", str(tmp_path / "cams"), good[0], str(bad_file), good[1])
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [l["file"] for l in lines] == [good[0], str(bad_file), good[1]]
    assert "not a recognised image" in lines[1]["error"] and set(lines[1]) == {"file", "error"}
    for rec in (lines[0], lines[2]):
        assert rec["task"] == "screening" and rec["label"] in SCREENING_CLASSES
        assert list(rec["confidences"]) == list(SCREENING_CLASSES)
        assert sum(rec["confidences"].values()) == pytest.approx(1.0, abs=1e-5)
        cam = Image.open(rec["cam"]["file"])
        assert cam.mode == "RGB" and cam.size == Image.open(rec["file"]).size
    assert len(list((tmp_path / "cams").glob("*.png"))) == 2


def test_predict_diagnosis_table_and_json(examples_dir, random_weights_dir):
    image = str(examples_dir / "00001968_000.jpg")
    proc = run_cli("predict", "--task", "diagnosis", "--json", "--weights", str(random_weights_dir), image)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert set(rec) == {"file", "task", "probabilities", "findings", "radiograph_check", "warnings"}
    assert rec["radiograph_check"]["accepted"] and rec["radiograph_check"]["kind"] == "radiograph"
    assert list(rec["probabilities"]) == list(NIH_LABELS)
    assert set(rec["findings"]) == {l for l, p in rec["probabilities"].items() if p >= 0.5}
    table = run_cli("predict", "--task", "diagnosis", "--weights", str(random_weights_dir), image)
    assert table.returncode == 0 and "findings:" in table.stdout and "Hernia" in table.stdout


def test_no_weights_is_a_clear_refusal(examples_dir, tmp_path):
    proc = run_cli("predict", "--task", "screening", "--weights", str(tmp_path),
                   str(examples_dir / "4fed5061.jpg"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no screening checkpoint there" in proc.stderr and not proc.stdout


def test_dicom_through_the_cli(random_weights_dir, tmp_path, examples_dir):
    from diachestxr import read_xray
    from tests.images import dicom_file

    gray = read_xray(examples_dir / "00002754_000.jpg")  # stored inverted, as MONOCHROME1 is
    path = dicom_file(tmp_path / "scan.dcm", (255 - gray).astype(np.uint16) * 16, photometric="MONOCHROME1")
    proc = run_cli("predict", "--task", "screening", "--json", "--weights", str(random_weights_dir), str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] in SCREENING_CLASSES


def test_odd_dicom_tags_and_file_names_reach_the_terminal_clean(random_weights_dir, tmp_path):
    """pydicom's warnings and tracebacks stay off the terminal; a file name's control
    characters are shown escaped, not sent to it."""
    import pydicom
    from pydicom.dataelem import DataElement

    from tests.images import chest_like, dicom_file

    path = dicom_file(tmp_path / "odd.dcm", chest_like().astype(np.uint16))
    ds = pydicom.dcmread(path)
    ds.Modality = "A VALUE FAR TOO LONG FOR ITS VR"  # pydicom warns about it
    ds[0x00281053] = DataElement(0x00281053, "LO", "abc")  # RescaleSlope, not a number
    evil = tmp_path / "x\x1b[2Jname.dcm"
    ds.save_as(evil)
    proc = run_cli("predict", "--task", "screening", "--weights", str(random_weights_dir), str(evil))
    assert proc.returncode == 2
    assert "rescale tags" in proc.stderr and "\\x1b[2Jname.dcm" in proc.stderr
    assert "\x1b" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and "pydicom" not in proc.stderr


def test_missing_files_are_reported_before_any_model_loads(tmp_path):
    """Nothing to read: the answer comes at once, without loading weights (none exist here)."""
    proc = run_cli("predict", "--task", "diagnosis", "--weights", str(tmp_path / "no-weights"),
                   str(tmp_path / "nope.png"), str(tmp_path / "nor-this.dcm"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nope.png: error: no such file" in proc.stderr and "nor-this.dcm: error: no such file" in proc.stderr
    assert "weights" not in proc.stderr  # the model was never asked for


def test_cam_dir_maps_the_most_probable_label_as_the_app_does(random_weights_dir, examples_dir, tmp_path):
    image = examples_dir / "00007471_000.jpg"
    proc = run_cli("predict", "--task", "diagnosis", "--json", "--weights", str(random_weights_dir),
                   "--cam-dir", str(tmp_path), str(image))
    record = json.loads(proc.stdout)
    top = max(record["probabilities"], key=record["probabilities"].get)
    assert record["cam"]["label"] == top


def test_folders_and_an_out_file(examples_dir, random_weights_dir, tmp_path):
    import csv
    import shutil

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(examples_dir / "4fed5061.jpg", folder / "a.jpg")
    shutil.copy(examples_dir / "00002754_000.jpg", folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("not an image, not picked up")
    out = tmp_path / "results.csv"
    proc = run_cli("predict", "--task", "screening", "--weights", str(random_weights_dir),
                   "--quiet", "--out", str(out), str(folder))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["file"]).name for r in rows] == ["a.jpg", "b.jpg"]
    assert rows[0]["label"] in SCREENING_CLASSES and set(SCREENING_CLASSES) <= set(rows[0])
    jsonl = tmp_path / "results.jsonl"
    run_cli("predict", "--task", "diagnosis", "--weights", str(random_weights_dir), "--quiet",
            "--out", str(jsonl), str(folder / "sub"))
    assert [json.loads(l)["task"] for l in jsonl.read_text().splitlines()] == ["diagnosis"]
    (tmp_path / "empty").mkdir()
    empty = run_cli("predict", "--task", "screening", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no PNG, JPEG or DICOM files" in empty.stderr


def test_help_version_and_info(random_weights_dir):
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("diachestxr ")
    info = run_cli("info", "--weights", str(random_weights_dir))
    assert info.returncode == 0 and "screening: alexnet" in info.stdout and len(info.stdout) < 1000
    assert re.search(r"checkpoint [0-9a-f]{12}", info.stdout)  # which weights, exactly
    assert "WARNING" not in info.stderr  # the unreachable Hub is not a warning
    full = json.loads(run_cli("info", "--json", "--weights", str(random_weights_dir)).stdout)
    assert set(full) == {"screening", "diagnosis"}


def test_any_failure_reading_one_file_is_that_files_error(monkeypatch, capsys, examples_dir,
                                                          random_weights_dir):
    """Whatever library raises (here a decoder's RuntimeError), the batch goes on: exit 2,
    one {"file", "error"} line naming the file, no traceback."""
    from diachestxr import batch, cli

    real = batch.read_xray
    broken = str(examples_dir / "IM-0117-0001.jpeg")

    def read(source, name=None):
        if str(source) == broken:
            raise RuntimeError("decoder exploded")
        return real(source, name)

    monkeypatch.setattr(batch, "read_xray", read)  # the reader of the CLI's and the app's batches
    good = str(examples_dir / "4fed5061.jpg")
    status = cli.main(["predict", "--task", "screening", "--json", "-q", "--weights",
                       str(random_weights_dir), broken, good])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 2 and [l["file"] for l in lines] == [broken, good]
    assert lines[0]["error"] == "IM-0117-0001.jpeg: cannot read this file (RuntimeError: decoder exploded)"
    assert lines[1]["label"] in SCREENING_CLASSES


def test_a_prediction_without_maps_loads_neither_grad_cam_nor_scikit_learn(examples_dir,
                                                                            random_weights_dir):
    """pytorch-grad-cam's package imports scikit-learn, scipy and matplotlib (~1.5 s of every
    start): only a process that makes a map or a metric pays for them."""
    code = (
        "import sys; from diachestxr import cli; "
        f"status = cli.main(['predict', '--task', 'diagnosis', '-q', '--weights', {str(random_weights_dir)!r}, "
        f"{str(examples_dir / '00001968_000.jpg')!r}]); "
        "print('LOADED', sorted(m for m in ('pytorch_grad_cam', 'sklearn', 'matplotlib', 'scipy') if m in sys.modules)); "
        f"cli.main(['predict', '--task', 'diagnosis', '-q', '--weights', {str(random_weights_dir)!r}, "
        f"'--cam-dir', {str(random_weights_dir.parent / 'cams')!r}, {str(examples_dir / '00001968_000.jpg')!r}]); "
        "print('LOADED', 'pytorch_grad_cam' in sys.modules)")
    import os

    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "DIACHESTXR_HUB_REPO": "none"})
    assert proc.returncode == 0, proc.stderr
    without_maps, with_maps = [l for l in proc.stdout.splitlines() if l.startswith("LOADED")]
    assert without_maps == "LOADED []" and with_maps == "LOADED True"
