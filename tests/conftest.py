"""Shared fixtures. Integration tests need the real images in ../shared (CI has them):
a missing ../shared is a failure, never a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DIACHESTXR_SHARED", ROOT.parent / "shared"))
EXAMPLES = SHARED / "examples"
DATA = SHARED / "data"


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
    """Random-weight checkpoints of both tasks in the real on-disk format (for tests that
    check plumbing, not accuracy)."""
    from diachestxr.models import build_model
    from diachestxr.registry import SPECS
    from diachestxr.weights import save_checkpoint

    out = tmp_path_factory.mktemp("random-weights")
    for task, spec in SPECS.items():
        torch.manual_seed(0)
        config = {"note": "random weights for tests"}
        if spec.multilabel:
            config["thresholds"] = dict.fromkeys(spec.labels, 0.5)
        save_checkpoint(build_model(spec), config, out, spec)
    return out


@pytest.fixture(scope="session")
def random_predictor(random_weights_dir):
    from diachestxr import Predictor

    with Predictor(weights_dir=random_weights_dir) as predictor:
        yield predictor


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch):
    """Tests never reach the real Hub; tests of the Hub path point HF_ENDPOINT at a local server."""
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
