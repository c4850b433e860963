"""The checkpoint config: one typed record, one reader, one writer, a schema version."""

from __future__ import annotations

import json

import pytest

from diachestxr.config import CONFIG_FORMAT, CheckpointConfig, ConfigError
from diachestxr.registry import get_spec
from diachestxr.weights import BUNDLED_DIR


def test_write_then_read_gives_the_same_config(tmp_path):
    spec = get_spec("diagnosis")
    config = CheckpointConfig.for_spec(spec, thresholds=dict.fromkeys(spec.labels, 0.3),
                                       temperature=1.2, limitations=["a note"])
    path = config.write(tmp_path / "diagnosis.json")
    assert json.loads(path.read_text())["format"] == CONFIG_FORMAT
    assert CheckpointConfig.read(path) == config
    assert config.apply_to(spec) == spec  # the pipeline it describes is the spec's


def test_a_format_1_file_is_migrated():
    """What format 1 left out (uncalibrated: no temperature) or held as null reads as the
    neutral value; its retired keys are dropped."""
    spec = get_spec("screening")
    old = {**CheckpointConfig.for_spec(spec).to_dict(), "format": 1, "adult_check": {"n": 3},
           "limitations": "one note", "operating_point": None}
    del old["temperature"], old["leave_one_hospital_out"]
    config = CheckpointConfig.from_dict(old)
    assert config.format == CONFIG_FORMAT and config.temperature == 1.0
    assert config.limitations == ["one note"] and config.operating_point == {}
    assert config.leave_one_hospital_out == []
    # what older writers added: a self-supervised backbone's record, a free note
    ssl = {**CheckpointConfig.for_spec(spec).to_dict(), "format": 1, "note": "random weights",
           "pretraining": {"method": "SimCLR", "images": 10}}
    config = CheckpointConfig.from_dict(ssl)
    assert config.training == {"method": "SimCLR", "images": 10}
    assert config.limitations == ["random weights"]


@pytest.mark.parametrize("change, message", [
    ({"format": CONFIG_FORMAT + 1}, "newer DiaChestXR"),
    ({"format": "2"}, "unknown config format"),
    ({"surprise": 1}, "unknown config fields"),
    ({"temperature": -1.0}, "positive"),
])
def test_a_newer_or_foreign_file_is_refused_with_a_reason(tmp_path, change, message):
    data = {**CheckpointConfig.for_spec(get_spec("screening")).to_dict(), **change}
    (tmp_path / "screening.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message):
        CheckpointConfig.read(tmp_path / "screening.json")
    for foreign in ([], {"name": "resnet"}):
        with pytest.raises(ConfigError, match="not a DiaChestXR checkpoint config"):
            CheckpointConfig.from_dict(foreign)


def test_the_bundled_configs_are_written_in_the_current_format():
    """The bundled files went through the one writer: reading and writing them again
    changes no byte."""
    for task in ("screening", "diagnosis"):
        path = BUNDLED_DIR / f"{task}.json"
        assert CheckpointConfig.read(path).to_dict() == json.loads(path.read_text())
