"""Predictor on random-weight checkpoints: shapes, contracts, concurrency, Grad-CAM traps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from diachestxr import NIH_LABELS, SCREENING_CLASSES
from diachestxr.inference import findings_at, ranked
from diachestxr.models import build_model
from tests.images import chest_like, png_bytes


@pytest.fixture(scope="module")
def xray():
    return chest_like(300, 260)


def test_screen_contract(random_predictor, xray):
    r = random_predictor.screen(xray)
    assert r.label in SCREENING_CLASSES and list(r.confidences) == list(SCREENING_CLASSES)
    assert sum(r.confidences.values()) == pytest.approx(1.0, abs=1e-6)
    assert r.label == max(r.confidences, key=r.confidences.get)
    assert list(r.explanations) == [r.label]
    assert r.cam.shape == (224, 224) and r.cam.dtype == np.float32  # the model's input size
    assert 0.0 <= r.cam.min() and r.cam.max() <= 1.0
    assert r.explanations[r.label].cam_at(*xray.shape).shape == xray.shape
    assert r.image.shape == xray.shape  # small images are kept as they are
    assert r.overlay.shape == xray.shape + (3,) and r.overlay.dtype == np.uint8


def test_screen_maps_for_any_class(random_predictor, xray):
    all_maps = random_predictor.screen(xray, explain="all")
    assert list(all_maps.explanations) == list(SCREENING_CLASSES)
    one = random_predictor.screen(xray, explain=["Normal"])
    np.testing.assert_allclose(one.explanations["Normal"].cam, all_maps.explanations["Normal"].cam, atol=1e-4)
    with pytest.raises(ValueError, match="unknown label"):
        random_predictor.screen(xray, explain=["Flu"])


def test_all_input_kinds_agree(random_predictor, xray, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(xray))
    results = [random_predictor.screen(src).confidences
               for src in (xray, str(path), path, png_bytes(xray), Image.fromarray(xray))]
    for other in results[1:]:
        assert other == pytest.approx(results[0], abs=1e-6)


def test_diagnose_contract(random_predictor, xray):
    d = random_predictor.diagnose(xray)
    assert list(d.probabilities) == list(NIH_LABELS)
    assert all(0.0 <= p <= 1.0 for p in d.probabilities.values())
    order = ranked(d.probabilities, d.thresholds)
    assert d.findings == [l for l in order if d.probabilities[l] >= d.thresholds[l]]
    # default maps: the 3 top-ranked labels, the app's ranking
    assert list(d.explanations) == order[:3]
    for e in d.explanations.values():
        assert e.cam.shape == (224, 224) and 0.0 <= e.cam.min() and e.cam.max() <= 1.0


def test_the_display_ranking_reads_each_label_against_its_own_threshold():
    """A rare label a little over its low threshold outranks a common one under its high
    threshold (the app once listed "Hernia 5 %" as a finding below "Pneumonia 51 %"); the
    findings lead; with one threshold for all it is the order of probability."""
    probs = {"Pneumonia": 0.51, "Hernia": 0.05, "Effusion": 0.30, "Mass": 0.02}
    thresholds = {"Pneumonia": 0.60, "Hernia": 0.04, "Effusion": 0.20, "Mass": 0.10}
    assert ranked(probs, thresholds) == ["Effusion", "Hernia", "Pneumonia", "Mass"]
    assert findings_at(probs, thresholds) == ["Effusion", "Hernia"]
    assert ranked(probs, dict.fromkeys(probs, 0.5)) == ["Pneumonia", "Effusion", "Hernia", "Mass"]
    assert ranked({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.0}) == ["a", "b"]  # no log(0) error


def test_diagnose_thresholds_and_labels(random_predictor, xray):
    assert random_predictor.diagnose(xray, thresholds=0.0, explain="none").findings.__len__() == 14
    assert random_predictor.diagnose(xray, thresholds=1.0, explain="none").findings == []
    d = random_predictor.diagnose(xray, thresholds={"Hernia": 0.0}, explain=["Hernia", "Mass"])
    assert "Hernia" in d.findings and d.thresholds["Hernia"] == 0.0
    assert list(d.explanations) == ["Hernia", "Mass"]
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_predictor.diagnose(xray, thresholds=1.5)
    with pytest.raises(ValueError, match="unknown label"):
        random_predictor.diagnose(xray, thresholds={"Flu": 0.3})


def test_probabilities_do_not_depend_on_the_explanations(random_predictor, xray):
    """The batched forward pass that makes the maps gives the same probabilities as a plain one."""
    plain = random_predictor.diagnose(xray, explain="none").probabilities
    with_maps = random_predictor.diagnose(xray, explain=["Mass", "Hernia", "Edema"]).probabilities
    assert with_maps == pytest.approx(plain, abs=1e-5)


def test_concurrent_calls_match_sequential(random_predictor):
    images = [chest_like(256, 256, seed=s) for s in range(4)]
    expected = [(random_predictor.screen(im).confidences,
                 random_predictor.diagnose(im, explain="top").probabilities) for im in images]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda im: (random_predictor.screen(im).confidences,
                                        random_predictor.diagnose(im).probabilities), images))
    for (s1, d1), (s2, d2) in zip(expected, got):
        assert s1 == pytest.approx(s2, abs=1e-5) and d1 == pytest.approx(d2, abs=1e-5)


@pytest.mark.parametrize("task", ["screening", "diagnosis"])
def test_no_inplace_relu_and_cam_layer_exists(task):
    from diachestxr.registry import get_spec

    model = build_model(task)
    assert not [m for m in model.modules() if isinstance(m, torch.nn.ReLU) and m.inplace]
    model.get_submodule(get_spec(task).cam_layer)  # raises if the registry names a missing layer
    assert not [m for m in model.modules() if isinstance(m, torch.nn.Sigmoid)]  # logits out




def test_a_covid19_operating_point_decides_the_label(random_predictor, xray):
    """With covid19_threshold in the checkpoint config, COVID-19 is called from that
    probability on, else the more probable of the others; the default map is the label's."""
    config = random_predictor.models["screening"].model.config
    try:
        config.covid19_threshold = 0.0
        r = random_predictor.screen(xray)
        assert r.label == "COVID-19" and list(r.explanations) == ["COVID-19"]
        config.covid19_threshold = 1.0
        r = random_predictor.screen(xray)
        others = {c: p for c, p in r.confidences.items() if c != "COVID-19"}
        assert r.label == max(others, key=others.get) and list(r.explanations) == [r.label]
    finally:
        config.covid19_threshold = None


def test_screening_predictions_rule():
    from diachestxr.metrics import screening_predictions

    probs = np.array([[0.30, 0.50, 0.20], [0.10, 0.20, 0.70], [0.60, 0.10, 0.30]])
    assert list(screening_predictions(probs, SCREENING_CLASSES)) == [1, 2, 0]  # arg-max
    assert list(screening_predictions(probs, SCREENING_CLASSES, 0.25)) == [0, 2, 0]
    assert list(screening_predictions(probs, SCREENING_CLASSES, 0.65)) == [1, 2, 2]


def test_a_small_image_is_answered_with_a_low_resolution_warning(random_predictor, xray):
    """Under 128 px on its shorter side the model sees an enlarged blur: the answer says so
    (the app shows it beside the result; the API and CLI carry it in "warnings")."""
    import cv2

    small = cv2.resize(xray, (48, 60), interpolation=cv2.INTER_AREA)
    warned = random_predictor.screen(small).to_dict()["warnings"]
    assert len(warned) == 1 and "48 x 60 px" in warned[0] and "under 128 px" in warned[0]
    assert random_predictor.diagnose(cv2.resize(xray, (128, 300))).to_dict()["warnings"] == []
    assert random_predictor.diagnose(small).to_dict()["warnings"] == warned
