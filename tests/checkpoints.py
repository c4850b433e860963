"""Random-weight checkpoints in the real on-disk format: for tests and benchmarks that
measure plumbing, not accuracy."""

from __future__ import annotations

from pathlib import Path

import torch

from diachestxr.config import CheckpointConfig
from diachestxr.models import build_model
from diachestxr.registry import SPECS
from diachestxr.weights import save_checkpoint


def write_random_checkpoints(out: Path) -> Path:
    """<task>.safetensors + <task>.json of both tasks in `out` (seeded; thresholds 0.5)."""
    for spec in SPECS.values():
        torch.manual_seed(0)
        config = CheckpointConfig.for_spec(
            spec, limitations=["random weights, for tests and benchmarks only"],
            thresholds=dict.fromkeys(spec.labels, 0.5) if spec.multilabel else {})
        save_checkpoint(build_model(spec), config, out, spec)
    return out
