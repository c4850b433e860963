"""Temperature scaling (diachestxr.calibration, training.calibrate): the fit and the ECE on
synthetic logits, the one inference path with and without a temperature, thresholds that
move with T, and the calibration script end to end on a few real images."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve

from diachestxr.calibration import (ECE_BINS, expected_calibration_error, fit_temperature,
                                    map_threshold, outcomes, prevalence, reliability)
from diachestxr.config import CheckpointConfig
from diachestxr.inference import findings_at, ranked
from diachestxr.labels import NIH_LABELS, UNKNOWN
from diachestxr.metrics import operating_points
from tests.images import chest_like


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _synthetic(multilabel: bool, n: int = 8000, seed: int = 0):
    """True logits, labels drawn from them (a calibrated model at T = 1)."""
    rng = np.random.default_rng(seed)
    if multilabel:
        z = rng.normal(-1.0, 1.5, (n // 10, 10))
        return z, (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(float)
    z = rng.normal(0.0, 1.5, (n, 3))
    p = _softmax(z)
    return z, (rng.random((n, 1)) > p.cumsum(1)).sum(1)


# ------------------------------------------------------------------------- the fit
@pytest.mark.parametrize("multilabel", [False, True])
def test_fit_recovers_a_known_temperature(multilabel):
    z, y = _synthetic(multilabel)
    # a model twice as confident as the truth: its logits are 2 z, so T = 2 undoes it
    assert fit_temperature(2.0 * z, y, multilabel) == pytest.approx(2.0, rel=0.05)
    assert fit_temperature(0.5 * z, y, multilabel) == pytest.approx(0.5, rel=0.05)
    assert fit_temperature(z, y, multilabel) == pytest.approx(1.0, rel=0.05)


def test_unknown_cells_do_not_change_the_fit():
    z, y = _synthetic(True)
    rng = np.random.default_rng(1)
    unknown = rng.random(y.shape) < 0.2
    y_unknown = np.where(unknown, UNKNOWN, y)
    fitted = fit_temperature(2.0 * z, y_unknown, True)
    # whatever the model says on an unknown cell, the fit is the same ...
    wild = np.where(unknown, rng.normal(0, 50, z.shape), 2.0 * z)
    assert fit_temperature(wild, y_unknown, True) == pytest.approx(fitted, rel=1e-6)
    # ... and it is not the fit that reads those cells as negatives
    assert fit_temperature(wild, np.where(unknown, 0.0, y), True) != pytest.approx(fitted, rel=0.05)


# -------------------------------------------------------------------------- the ECE
def test_ece_is_near_zero_when_calibrated_and_larger_when_overconfident():
    for multilabel in (False, True):
        z, y = _synthetic(multilabel, n=60000)
        act = (lambda v: 1 / (1 + np.exp(-v))) if multilabel else _softmax
        calibrated = expected_calibration_error(act(z), y, multilabel)
        overconfident = expected_calibration_error(act(3.0 * z), y, multilabel)
        assert calibrated < 0.01 and overconfident > 0.05 + calibrated


def test_reliability_bins_are_sklearns():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.random(5000), [0.0, 1.0, 1 / 15, 2 / 15]])  # edges included
    y = (rng.random(len(p)) < p ** 1.5).astype(float)
    bins = [b for b in reliability(p, y, ECE_BINS)["bins"] if b["n"]]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=ECE_BINS, strategy="uniform")
    np.testing.assert_allclose([b["accuracy"] for b in bins], prob_true)
    np.testing.assert_allclose([b["confidence"] for b in bins], prob_pred)
    ece = sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / len(p)
    assert reliability(p, y)["ece"] == pytest.approx(ece)


def test_outcomes_screening_top_label_and_diagnosis_known_cells():
    conf, right = outcomes(np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]]), np.array([0, 0]), False)
    assert list(conf) == [0.7, 0.6] and list(right) == [1.0, 0.0]
    conf, pos = outcomes(np.array([[0.2, 0.9]]), np.array([[UNKNOWN, 1.0]]), True)
    assert list(conf) == [0.9] and list(pos) == [1.0]


# ------------------------------------------------------------- the inference path
@pytest.fixture
def temperature(random_predictor):
    """Set a temperature on both loaded models' configs for one test."""
    configs = [random_predictor.models[t].model.config for t in ("screening", "diagnosis")]

    def set_t(value):
        for c in configs:
            c.temperature = 1.0 if value is None else value
    yield set_t
    set_t(None)


def test_no_temperature_or_t_1_gives_the_uncalibrated_probabilities(random_predictor, temperature):
    images = [chest_like(224, 224, seed=s) for s in range(2)]
    for task, act in (("screening", lambda z: z.softmax(1)), ("diagnosis", torch.sigmoid)):
        plain = random_predictor.predict(images, task, explain="none")
        logits = torch.as_tensor(np.stack([r.logits for r in plain]), dtype=torch.float32)
        # what the path computed before temperatures existed, bit for bit
        np.testing.assert_array_equal(np.stack([r.scores for r in plain]), act(logits).numpy())
        temperature(1.0)
        np.testing.assert_array_equal(random_predictor.probabilities(images, task),
                                      np.stack([r.scores for r in plain]))
        temperature(None)
    spec = random_predictor.models["screening"].spec
    assert CheckpointConfig.for_spec(spec).temperature == 1.0  # none stored: the raw outputs
    with pytest.raises(ValueError, match="positive"):
        CheckpointConfig.for_spec(spec, temperature=0)


def test_a_temperature_divides_the_logits(random_predictor, temperature):
    images = [chest_like(224, 224, seed=s) for s in range(2)]
    temperature(2.5)
    for task, act in (("screening", lambda z: z.softmax(1)), ("diagnosis", torch.sigmoid)):
        results = random_predictor.predict(images, task, explain="none")
        logits = torch.as_tensor(np.stack([r.logits for r in results]))
        np.testing.assert_allclose(np.stack([r.scores for r in results]), act(logits / 2.5).numpy(),
                                   atol=1e-6)
    # the maps' targets rank logits: the default maps are still the top-ranked labels
    d = random_predictor.diagnose(images[0])
    assert list(d.explanations) == ranked(d.probabilities, d.thresholds)[:3]
    s = random_predictor.screen(images[0])
    assert s.label == max(s.confidences, key=s.confidences.get) and list(s.explanations) == [s.label]


def test_mapped_diagnosis_thresholds_keep_the_findings(random_predictor, temperature):
    images = [chest_like(224, 224, seed=s) for s in range(2)]
    before = random_predictor.predict(images, "diagnosis", explain="none")
    # per label, a threshold halfway between the two images' scores: one of them is called
    middle = np.stack([r.logits for r in before]).mean(0)
    thresholds = dict(zip(NIH_LABELS, 1 / (1 + np.exp(-middle))))
    temperature(3.0)
    mapped = {l: map_threshold(t, 1.0, 3.0) for l, t in thresholds.items()}
    after = random_predictor.predict(images, "diagnosis", explain="none", thresholds=mapped)
    assert sum(len(findings_at(r.probabilities, thresholds)) for r in before) == 14
    for b, a in zip(before, after):
        assert findings_at(b.probabilities, thresholds) == a.findings
        assert a.probabilities != pytest.approx(b.probabilities, abs=1e-3)  # T did change them
    assert map_threshold(0.0, 1.0, 3.0) == 0.0 and map_threshold(1.0, 1.0, 3.0) == 1.0
    assert map_threshold(map_threshold(0.3, 1.0, 3.0), 3.0, 1.0) == pytest.approx(0.3)


def test_mapping_keeps_every_validation_call_at_the_operating_points():
    """An operating point sits one float above a validation probability; mapping it with T
    must not let float32 rounding flip that radiograph's call."""
    from training.calibrate import _probs, map_diagnosis_thresholds

    z, y = _synthetic(True, n=3000, seed=3)
    z = np.tile(z, (1, 2))[:, :14].astype(np.float32)
    y = np.tile(y, (1, 2))[:, :14]
    thresholds = operating_points(y, _probs(z, True, 1.0), NIH_LABELS)
    mapped, nudge = map_diagnosis_thresholds(thresholds, z, NIH_LABELS, 1.0, 1.7)
    before = _probs(z, True, 1.0) >= np.array(list(thresholds.values()))
    after = _probs(z, True, 1.7) >= np.array(list(mapped.values()))
    assert (before == after).all() and nudge < 1e-6


def test_prevalence_of_the_known_cells():
    y = np.array([[1, 0, UNKNOWN], [0, 0, UNKNOWN], [1, 1, UNKNOWN], [0, UNKNOWN, UNKNOWN]], float)
    assert prevalence(y, ["a", "b", "c"]) == {"a": 0.5, "b": pytest.approx(1 / 3), "c": None}


# ---------------------------------------------------------------- the script
def test_calibrate_writes_a_calibrated_checkpoint(random_weights_dir, data_dir, tmp_path):
    """training.calibrate on a few real screening radiographs (random weights): T and the
    report in the config, the operating point re-chosen, the card's section, the diagram."""
    from training.calibrate import calibrate

    data = tmp_path / "data"
    for task, per_split in (("screening", 2), ("diagnosis", 2)):
        src = data_dir / task / "labels.csv"
        with src.open(newline="") as f:
            reader = csv.DictReader(f)
            rows, seen = [], {}
            for r in reader:
                key = (r["split"], r.get("label", ""))
                if r["split"] in ("val", "test") and seen.get(key, 0) < per_split:
                    seen[key] = seen.get(key, 0) + 1
                    rows.append({**r, "path": str(src.parent / r["path"])})
            fields = reader.fieldnames
        (data / task).mkdir(parents=True)
        with (data / task / "labels.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fields)
            writer.writeheader()
            writer.writerows(rows)
    weights = tmp_path / "w"
    shutil.copytree(random_weights_dir, weights)
    config = json.loads((weights / "screening.json").read_text())
    config["covid19_threshold"] = 0.4
    (weights / "screening.json").write_text(json.dumps(config))

    out = tmp_path / "out"
    new = calibrate("screening", weights, out, data)
    saved = json.loads((out / "screening.json").read_text())
    assert saved["temperature"] == new.temperature > 0
    assert saved["calibration"]["val"]["after"]["nll"] <= saved["calibration"]["val"]["before"]["nll"] + 1e-9
    change = saved["calibration"]["threshold_changes"]["covid19_threshold"]
    assert saved["covid19_threshold"] == change["after"]
    assert saved["test_metrics"]["n"] == 6 and "adult" in saved["test_metrics"]
    card = (out / "screening.md").read_text()
    assert "## Calibration" in card and f"T = {new.temperature:.3f}" in card
    assert (out / "calibration-screening.png").stat().st_size > 10_000
    assert (out / "screening.safetensors").is_file()
