"""The bundled sample images by name: diachestxr.examples.sample_path and `predict --sample`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diachestxr import cli
from diachestxr.examples import MANIFEST, read_manifest, sample_names, sample_path


def test_every_sample_in_the_manifest_resolves_to_its_file():
    rows = read_manifest()
    assert len(rows) == 13 and sample_names() == [r["file"] for r in rows]
    for row in rows:
        path = sample_path(row["file"])
        assert isinstance(path, Path) and path.is_absolute() and path.is_file()
        assert path.name == row["file"] and path.parent == MANIFEST.parent.resolve()
    assert sample_path("4fed5061") == sample_path("4fed5061.jpg")  # the stem works too
    assert set(sample_names("diagnosis")) == {r["file"] for r in rows if r["task"] == "diagnosis"}


def test_an_unknown_sample_is_refused_naming_the_samples():
    with pytest.raises(ValueError) as err:
        sample_path("chest.png")
    message = str(err.value)
    assert "'chest.png'" in message
    assert all(name in message for name in sample_names())
    assert "screening: 4fed5061.jpg" in message and "diagnosis: 00005610_000.jpg" in message


def test_samples_do_not_depend_on_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIACHESTXR_EXAMPLES_DIR", str(tmp_path))  # an empty folder: not consulted first
    assert sample_path("00001968_000.jpg").is_file()


def test_predict_a_bundled_sample(random_weights_dir, capsys):
    status = cli.main(["predict", "--task", "screening", "--json", "-q", "--no-gate", "--weights",
                       str(random_weights_dir), "--sample", "4fed5061.jpg",
                       "--sample", "00001968_000"])
    assert status == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["file"]).name for r in records] == ["4fed5061.jpg", "00001968_000.jpg"]
    assert all(r["task"] == "screening" and "error" not in r for r in records)


def test_predict_an_unknown_sample_or_nothing_is_a_clear_error(capsys):
    assert cli.main(["predict", "--task", "diagnosis", "--sample", "xray.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown sample image 'xray.png'; the samples are: screening: ")
    assert "00009683_000.jpg" in err and "Traceback" not in err

    assert cli.main(["predict", "--task", "diagnosis"]) == 2
    assert "give IMAGE files or folders, or --sample NAME" in capsys.readouterr().err
