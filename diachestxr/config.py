"""The checkpoint config: what travels beside `<task>.safetensors` as `<task>.json`.

One typed record (timm's `PretrainedCfg` is the model), one reader (`CheckpointConfig.read`
/ `from_dict`) and one writer (`write` / `to_dict`). The file carries a schema version
(`format`); an older file is migrated here on reading, a newer or foreign one is refused with
a message that says what to do. The metrics it holds follow docs/metrics-json.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .registry import ModelSpec

# 1: the first versioned files (bundled up to v0.6): keys absent when a step never ran.
# 2: every field present, with its neutral value (temperature 1.0, no thresholds, ...).
CONFIG_FORMAT = 2


class ConfigError(ValueError):
    """A checkpoint config that cannot be read: the message says why and what to do."""


@dataclass
class CheckpointConfig:
    # what the network is: checked against the task's ModelSpec when loading
    task: str
    arch: str
    labels: tuple[str, ...]
    multilabel: bool
    # how an image becomes its input (these override the registry's ModelSpec)
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    equalize: bool = False
    crop: bool = False
    # decisions: diagnosis thresholds per label, screening's COVID-19 probability (None: the
    # argmax), how they were chosen, and the temperature the logits are divided by
    thresholds: dict[str, float] = field(default_factory=dict)
    covid19_threshold: float | None = None
    operating_point: dict = field(default_factory=dict)
    temperature: float = 1.0
    calibration: dict | None = None
    prevalence: dict[str, float] = field(default_factory=dict)  # diagnosis: training-split shares
    # the record: how it was trained and how it scores (docs/metrics-json.md)
    training: dict = field(default_factory=dict)
    validation: dict | None = None
    test_metrics: dict | None = None
    leave_one_hospital_out: list[dict] = field(default_factory=list)
    training_data: Any = None
    limitations: list[str] = field(default_factory=list)
    format: int = CONFIG_FORMAT

    def __post_init__(self) -> None:
        self.labels, self.mean, self.std = tuple(self.labels), tuple(self.mean), tuple(self.std)
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"the temperature must be a positive number, got {self.temperature}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_spec(cls, spec: ModelSpec, **fields: Any) -> CheckpointConfig:
        """A config describing `spec`'s network, with `fields` on top (the writers' start)."""
        return cls(task=spec.task, arch=spec.arch, labels=spec.labels, multilabel=spec.multilabel,
                   input_size=spec.input_size, mean=spec.mean, std=spec.std,
                   equalize=spec.equalize, crop=spec.crop, **fields)

    @classmethod
    def from_dict(cls, data: Any) -> CheckpointConfig:
        """The one reader of the JSON form: migrates older formats, refuses foreign ones."""
        if not isinstance(data, dict) or not {"task", "arch", "labels"} <= data.keys():
            raise ConfigError("not a DiaChestXR checkpoint config (it needs at least task, "
                              "arch and labels)")
        version = data.get("format")
        if not isinstance(version, int) or version < 1:
            raise ConfigError(f"unknown config format {version!r}; export the checkpoint "
                              "again with this version of DiaChestXR")
        if version > CONFIG_FORMAT:
            raise ConfigError(f"config format {version} was written by a newer DiaChestXR "
                              f"(this one reads up to {CONFIG_FORMAT}); upgrade the package")
        data = _MIGRATIONS[version](dict(data)) if version < CONFIG_FORMAT else data
        names = {f.name for f in dataclasses.fields(cls)}
        foreign = sorted(set(data) - names)
        if foreign:
            raise ConfigError(f"unknown config fields {foreign}; the file was not written by "
                              "DiaChestXR, or by a version newer than this one")
        try:
            return cls(**data)
        except TypeError as e:  # a required field missing, or a value of the wrong type
            raise ConfigError(f"incomplete or invalid checkpoint config ({e})") from None

    @classmethod
    def read(cls, path: str | os.PathLike) -> CheckpointConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, ConfigError, TypeError, ValueError) as e:
            raise ConfigError(f"{path}: {e}") from None

    # ------------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out = {"format": out.pop("format"), **out}  # the version first, as a reader meets it
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def replace(self, **changes: Any) -> CheckpointConfig:
        return dataclasses.replace(self, **changes)

    def apply_to(self, spec: ModelSpec) -> ModelSpec:
        """`spec` with this checkpoint's input pipeline (size, normalisation, CLAHE, crop)."""
        return dataclasses.replace(spec, input_size=int(self.input_size), mean=self.mean,
                                   std=self.std, equalize=self.equalize, crop=self.crop)


def _from_format_1(data: dict) -> dict:
    """Format 1 left a key out when its step never ran (uncalibrated: no temperature; no
    leave-one-hospital-out report: none) and stored null for some; 2 always holds a value.
    Two early screening reports it held were folded into test_metrics and are dropped; a
    self-supervised backbone's record moves into `training`, a free note into `limitations`."""
    for retired in ("adult_check", "test_recall_by_source"):
        data.pop(retired, None)
    if "pretraining" in data:
        data["training"] = {**(data.get("training") or {}), **data.pop("pretraining")}
    if "note" in data:
        data["limitations"] = _as_list(data.get("limitations")) + [data.pop("note")]
    defaults = {"thresholds": {}, "operating_point": {}, "temperature": 1.0, "prevalence": {},
                "training": {}, "leave_one_hospital_out": [], "limitations": []}
    for key, empty in defaults.items():
        if data.get(key) is None:
            data[key] = empty
    data["limitations"] = _as_list(data["limitations"])
    data["format"] = 2
    return data


def _as_list(value: Any) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


_MIGRATIONS = {1: _from_format_1}
