"""Weight resolution and verification with local files (the Hub path: tests/test_hub.py)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from diachestxr import weights as W
from diachestxr.models import build_model
from diachestxr.registry import get_spec
from diachestxr.transforms import eval_tensor
from tests.images import chest_like


@pytest.fixture
def offline_empty(monkeypatch, tmp_path):
    """No explicit weights, no Hub, an empty bundled folder."""
    monkeypatch.delenv("DIACHESTXR_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", "none")
    monkeypatch.setattr(W, "BUNDLED_DIR", tmp_path / "bundled")
    return tmp_path / "bundled"


def test_no_weights_anywhere_is_refused(offline_empty):
    with pytest.raises(W.WeightsError, match="Refusing to run with random weights"):
        W.load_model("screening")


def test_bundled_is_the_last_resort(offline_empty, random_weights_dir):
    shutil.copytree(random_weights_dir, offline_empty)
    loaded = W.load_model("diagnosis")
    assert loaded.source.kind == "bundled" and loaded.config.thresholds["Mass"] == 0.5


@pytest.mark.parametrize("via_env", [False, True])
def test_explicit_dir_wins_and_is_never_replaced(offline_empty, random_weights_dir, monkeypatch,
                                                  tmp_path, via_env):
    shutil.copytree(random_weights_dir, offline_empty)  # a bundled one exists too
    if via_env:
        monkeypatch.setenv("DIACHESTXR_WEIGHTS_DIR", str(random_weights_dir))
    loaded = W.load_model("screening", None if via_env else random_weights_dir)
    assert loaded.source.kind == "local" and loaded.source.location == str(random_weights_dir)
    with pytest.raises(W.WeightsError, match="no screening checkpoint there"):
        W.load_model("screening", tmp_path / "elsewhere")


def test_fp16_storage_keeps_the_outputs(tmp_path):
    spec = get_spec("diagnosis")
    torch.manual_seed(1)
    model = build_model(spec).eval()
    W.save_checkpoint(model, None, tmp_path, spec, half=True)
    loaded = W.load_checkpoint(tmp_path / spec.filename, spec).model
    x = eval_tensor(chest_like(), spec).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model(x)), torch.sigmoid(loaded(x)), atol=2e-3)
    assert (tmp_path / spec.filename).stat().st_size < 16e6  # DenseNet121 in fp16: ~14 MB


def test_wrong_task_checkpoint_is_refused(random_weights_dir, tmp_path):
    for name in ("screening.safetensors", "screening.json"):
        shutil.copy(random_weights_dir / name, tmp_path / name.replace("screening", "diagnosis"))
    with pytest.raises(W.WeightsError, match="diagnosis task needs a densenet121"):
        W.load_model("diagnosis", tmp_path)


def test_shape_mismatch_and_damage_are_refused(random_weights_dir, tmp_path):
    spec = get_spec("screening")
    shutil.copytree(random_weights_dir, tmp_path / "w")
    cfg = json.loads((tmp_path / "w" / spec.config_filename).read_text())
    # a DenseNet's tensors behind a config that claims AlexNet
    shutil.copy(random_weights_dir / "diagnosis.safetensors", tmp_path / "w" / spec.filename)
    with pytest.raises(W.WeightsError, match="tensors do not match"):
        W.load_model("screening", tmp_path / "w")
    (tmp_path / "w" / spec.filename).write_bytes(b"garbage")
    with pytest.raises(W.WeightsError, match="not a readable safetensors file"):
        W.load_model("screening", tmp_path / "w")
    (tmp_path / "w" / spec.config_filename).unlink()
    with pytest.raises(W.WeightsError, match="config screening.json"):
        W.load_model("screening", tmp_path / "w")
    assert cfg["labels"] == list(spec.labels)
