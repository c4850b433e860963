"""The Hub path of weight resolution and publishing, through the real huggingface_hub code
(hf_hub_download, HfApi.create_commit, the HF cache) against tests/fake_hub.py.

huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE / HF_HUB_CACHE when it is imported, so
in-process tests patch `huggingface_hub.constants` (the library reads those attributes at
call time), and the timing test runs in a fresh process with the environment set first.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest

from diachestxr import weights
from diachestxr.registry import SPECS, TASKS
from training import push_to_hub as push

from tests.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_fake_test_token"
REPO = "tester/diachestxr-models"


def _point_hf_at(monkeypatch, endpoint: str, cache: Path, offline: bool = False) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("DIACHESTXR_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("DIACHESTXR_HUB_REVISION", raising=False)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub(token=TOKEN) as fake:
        _point_hf_at(monkeypatch, fake.url, tmp_path / "hf-cache")
        yield fake


@pytest.fixture
def no_bundled(monkeypatch, tmp_path):
    """No bundled weights: a Hub failure must surface instead of being papered over."""
    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path / "no-bundled-weights")


def _single_task_run(src: Path, task: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    spec = SPECS[task]
    for name in (spec.filename, spec.config_filename):
        shutil.copy(src / name, dest / name)
    return dest


# ------------------------------------------------------------------------------ (i) push + load
def test_push_then_load_from_hub(hub, random_weights_dir, tmp_path, monkeypatch, no_bundled):
    run = _single_task_run(random_weights_dir, "screening", tmp_path / "run-screening")
    _single_task_run(random_weights_dir, "diagnosis", run)  # one run folder, both tasks
    config = json.loads((run / "screening.json").read_text())
    config["training"] = {"command": "python -m training.train --task screening --epochs 3",
                          "epochs_run": 3, "best_epoch": 2, "wall_time_s": 120.0,
                          "config": {"init": "scratch", "epochs": 3}}
    (run / "screening.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(
        {"task": "screening", "n": 3, "classes": list(SPECS["screening"].labels),
         "accuracy": 0.5, "macro_auroc": 0.75,
         "per_class": {c: {"n_pos": 1, "auroc": 0.75, "sensitivity": 1.0, "specificity": 0.5,
                           "ppv": 0.5} for c in SPECS["screening"].labels},
         "confusion_matrix": [[1, 0, 0], [0, 1, 0], [1, 0, 0]]}))

    assert push.main([str(run), "--repo", REPO, "--tag", "v1", "--token", TOKEN]) == 0

    files = hub.files(REPO, "v1")
    for task in TASKS:
        assert files[SPECS[task].filename] == (run / SPECS[task].filename).read_bytes()
        assert files[SPECS[task].config_filename] == (run / SPECS[task].config_filename).read_bytes()
    readme = files["README.md"].decode()
    assert readme.startswith("---\n") and "not a medical device" in readme
    assert "python -m training.train --task screening --epochs 3" in readme  # exact command
    assert "macro AUROC **0.750**" in readme  # from RUN_DIR/metrics.json
    assert "Age confound" in readme and "DeGrave" in readme
    assert "screening.md" in files and "diagnosis.md" in files

    monkeypatch.setenv("DIACHESTXR_HUB_REPO", REPO)  # revision: the registry's pinned "v1"
    hub.requests.clear()
    for task in TASKS:
        loaded = weights.load_model(task)
        assert loaded.source.kind == "hub"
        assert loaded.source.location == f"{REPO}@v1"
        assert loaded.files[0].read_bytes() == (run / SPECS[task].filename).read_bytes()
    assert ("GET", f"/{REPO}/resolve/v1/diagnosis.safetensors") in hub.requests


def test_push_keeps_other_tasks_card_and_guards_tags(hub, random_weights_dir, tmp_path):
    screening = _single_task_run(random_weights_dir, "screening", tmp_path / "s")
    diagnosis = _single_task_run(random_weights_dir, "diagnosis", tmp_path / "d")
    push.push_to_hub(screening, REPO, tag="v1", token=TOKEN)
    v1 = hub.repos[REPO].tags["v1"]
    push.push_to_hub(diagnosis, REPO, token=TOKEN)  # a later push to main
    readme = hub.files(REPO)["README.md"].decode()
    assert "DiaChestXR screening model" in readme and "DiaChestXR diagnosis model" in readme
    assert hub.repos[REPO].tags["v1"] == v1  # deployments pinned to v1 see no change

    with pytest.raises(SystemExit, match="already exists"):
        push.push_to_hub(diagnosis, REPO, tag="v1", token=TOKEN)
    result = push.push_to_hub(diagnosis, REPO, tag="v1", token=TOKEN, move_tag=True)
    assert hub.repos[REPO].tags["v1"] == result["commit"] != v1
    assert "diagnosis.safetensors" in hub.files(REPO, "v1")


def test_push_refuses_a_broken_checkpoint(hub, random_weights_dir, tmp_path):
    run = _single_task_run(random_weights_dir, "screening", tmp_path / "broken")
    (run / "screening.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SystemExit, match="not publishing"):
        push.push_to_hub(run, REPO, token=TOKEN)
    assert REPO not in hub.repos


def test_push_needs_the_token(hub, random_weights_dir, tmp_path):
    from huggingface_hub.errors import HfHubHTTPError

    run = _single_task_run(random_weights_dir, "screening", tmp_path / "run")
    with pytest.raises(HfHubHTTPError):
        push.push_to_hub(run, REPO, token="hf_wrong")


def test_card_only_writes_task_cards(random_weights_dir, tmp_path):
    assert push.main([str(random_weights_dir), "--card-only", str(tmp_path)]) == 0
    card = (tmp_path / "diagnosis.md").read_text()
    assert card.startswith("# DiaChestXR diagnosis model (densenet121)")
    assert "not a medical device" in card and "Pleural_Thickening" in card
    assert "The training command was not recorded" in card
    assert "Age confound" in (tmp_path / "screening.md").read_text()


def test_the_radiograph_check_is_published_and_resolved_like_the_models(
        hub, random_weights_dir, tmp_path, monkeypatch, no_bundled, caplog):
    """A run folder holding the gate publishes it; with nothing bundled, a Predictor takes
    it from the Hub (local folder without one -> Hub -> bundled, as for the models)."""
    from diachestxr import Predictor
    from diachestxr.registry import GATE_FILES

    run = tmp_path / "run"
    shutil.copytree(random_weights_dir, run)
    for name in (GATE_FILES.filename, GATE_FILES.config_filename):
        shutil.copy(ROOT / "diachestxr" / "weights" / name, run / name)
    result = push.push_to_hub(run, REPO, tag="v1", token=TOKEN)
    assert {"gate.safetensors", "gate.json"} <= set(result["files"])
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", REPO)
    with caplog.at_level(logging.INFO, logger="diachestxr.gate"):
        predictor = Predictor(tasks=["screening"], weights_dir=random_weights_dir)
    assert predictor.gate is not None
    assert f"radiograph check loaded from hub: {REPO}@v1" in caplog.text


# ------------------------------------------------------------------ (ii) pre-filled cache, offline
def test_prefilled_cache_with_hf_hub_offline(hub, random_weights_dir, tmp_path, monkeypatch,
                                             no_bundled):
    push.push_to_hub(random_weights_dir, REPO, tag="v1", token=TOKEN)
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", REPO)
    from huggingface_hub import constants, hf_hub_download

    for spec in SPECS.values():  # fill the standard cache the standard way
        for name in (spec.filename, spec.config_filename):
            hf_hub_download(REPO, name, revision="v1")
    hub.stop()  # from here on any network use would fail
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for task in TASKS:
        loaded = weights.load_model(task)
        assert loaded.source.kind == "hub", loaded.source
        assert str(tmp_path / "hf-cache") in str(loaded.files[0])


def test_offline_with_empty_cache_falls_back_to_bundled(hub, random_weights_dir, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(weights, "BUNDLED_DIR", random_weights_dir)
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", REPO)
    assert weights.load_model("screening").source.kind == "bundled"
    assert hub.requests == []


# -------------------------------------------------------- (iii) unreachable Hub: fast fallback
def test_unreachable_hub_costs_at_most_3s_more_than_offline(random_weights_dir):
    """Each scenario in a fresh process (huggingface_hub keeps per-process state, e.g. the
    agent-harness registry it fetches once), with a real deployment's environment: a fresh
    HF_HOME, no HF_* variables but the one tested (telemetry on). benchmarks/weights_load.py
    reports the same with medians of 5 runs."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from weights_load import BlackHole, run_once
    finally:
        sys.path.pop(0)
    with BlackHole() as endpoint:  # connection attempts time out, as with a dropped route
        unreachable = run_once({"HF_ENDPOINT": endpoint}, str(random_weights_dir))
    offline = run_once({"HF_HUB_OFFLINE": "1"}, str(random_weights_dir))
    for result in (offline, unreachable):
        assert [s.split(":")[0] for s in result["sources"].values()] == ["bundled", "bundled"]
    # Building the networks costs the same in both; the Hub's cost is in resolving where the
    # weights are, which is measured apart from CPU-bound (and on a busy machine noisy) loading.
    assert unreachable["resolve_s"] - offline["resolve_s"] <= 3.0, (offline, unreachable)
    assert "INFO diachestxr.weights: Hugging Face Hub at" in unreachable["stderr"]  # logged once,
    assert unreachable["stderr"].count("is unreachable") == 1  # at INFO: a fallback, not a fault


# -------------------------------------------------- (iv) reachable Hub without the repo/revision
def test_missing_repo_falls_back_with_a_warning(hub, random_weights_dir, monkeypatch, caplog):
    monkeypatch.setattr(weights, "BUNDLED_DIR", random_weights_dir)
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", "nobody/no-such-repo")
    with caplog.at_level(logging.WARNING, logger="diachestxr.weights"):
        loaded = weights.load_model("screening")
    assert loaded.source.kind == "bundled"
    assert any("nobody/no-such-repo" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records), caplog.text
    assert ("HEAD", "/nobody/no-such-repo/resolve/v1/screening.safetensors") in hub.requests


def test_missing_revision_falls_back_with_a_warning(hub, random_weights_dir, monkeypatch, caplog):
    push.push_to_hub(random_weights_dir, REPO, token=TOKEN)  # on main, but no v1 tag
    monkeypatch.setattr(weights, "BUNDLED_DIR", random_weights_dir)
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", REPO)
    with caplog.at_level(logging.WARNING, logger="diachestxr.weights"):
        assert weights.load_model("diagnosis").source.kind == "bundled"
    assert any(f"{REPO}@v1" in r.getMessage() for r in caplog.records), caplog.text
    monkeypatch.setenv("DIACHESTXR_HUB_REVISION", "main")
    assert weights.load_model("diagnosis").source.kind == "hub"


def test_missing_repo_without_bundled_weights_refuses(hub, monkeypatch, no_bundled):
    monkeypatch.setenv("DIACHESTXR_HUB_REPO", "nobody/no-such-repo")
    with pytest.raises(weights.WeightsError, match="Refusing to run with random weights"):
        weights.load_model("screening")
