"""`diachestxr evaluate`: the metric math on hand-made cases, the metrics.json contract
(docs/metrics-json.md) on synthetic CSVs with random-weight checkpoints, and the CLI
end to end on real images."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from diachestxr import Predictor, cli
from diachestxr.evaluate import evaluate_csv, read_labelled_csv
from diachestxr.io import ImageReadError
from diachestxr.labels import (NIH_LABELS, NOT_COVID, SCREENING_CLASSES, UNKNOWN,
                               screening_target_of_nih)
from diachestxr.metrics import (adult_screening_metrics, balanced_accuracy, diagnosis_metrics,
                                 mean_auroc, operating_points, screening_metrics,
                                 specificity_threshold)
from diachestxr.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
SCREENING_KEYS = ["task", "n", "classes", "accuracy", "macro_auroc", "per_class", "confusion_matrix"]
PER_CLASS_KEYS = ["n_pos", "auroc", "sensitivity", "specificity", "ppv"]
DIAGNOSIS_KEYS = ["task", "n", "labels", "mean_auroc", "per_label"]
PER_LABEL_KEYS = ["n_pos", "auroc", "threshold", "sensitivity", "specificity", "n_unknown"]


# ----------------------------------------------------------------------- metric math
def test_screening_metrics_known_answer():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1],   # COVID-19 -> COVID-19
                      [0.3, 0.6, 0.1],   # COVID-19 -> Pneumonia
                      [0.1, 0.7, 0.2],   # Pneumonia -> Pneumonia
                      [0.2, 0.5, 0.3],   # Pneumonia -> Pneumonia
                      [0.1, 0.2, 0.7],   # Normal -> Normal
                      [0.5, 0.1, 0.4]])  # Normal -> COVID-19
    m = screening_metrics(y, probs, SCREENING_CLASSES)
    assert m["n"] == 6 and m["classes"] == list(SCREENING_CLASSES)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    covid, pneumonia, normal = (m["per_class"][c] for c in SCREENING_CLASSES)
    # one-vs-rest AUROC by counting ordered (positive, negative) pairs
    assert covid == {"n_pos": 2, "auroc": pytest.approx(7 / 8), "sensitivity": 0.5,
                     "specificity": 0.75, "ppv": 0.5}
    assert pneumonia == {"n_pos": 2, "auroc": pytest.approx(7 / 8), "sensitivity": 1.0,
                         "specificity": 0.75, "ppv": pytest.approx(2 / 3)}
    assert normal == {"n_pos": 2, "auroc": 1.0, "sensitivity": 0.5, "specificity": 1.0, "ppv": 1.0}
    assert m["macro_auroc"] == pytest.approx((7 / 8 + 7 / 8 + 1) / 3)
    assert m["macro_auroc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert balanced_accuracy(m) == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_screening_metrics_class_without_positives_is_null_and_left_out():
    y = np.array([1, 1, 2, 2])  # no COVID-19 at all
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.1, 0.5, 0.4]])
    m = screening_metrics(y, probs, SCREENING_CLASSES)
    covid = m["per_class"]["COVID-19"]
    assert covid["n_pos"] == 0 and covid["auroc"] is None and covid["sensitivity"] is None
    assert covid["specificity"] == 0.75 and covid["ppv"] == 0.0  # one false COVID-19 call
    pneu, norm = m["per_class"]["Pneumonia"]["auroc"], m["per_class"]["Normal"]["auroc"]
    assert m["macro_auroc"] == pytest.approx((pneu + norm) / 2)
    assert m["confusion_matrix"][0] == [0, 0, 0]


def test_diagnosis_metrics_thresholds_and_nulls():
    labels = ["A", "B", "C"]
    targets = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]])
    probs = np.array([[0.9, 0.2, 0.1], [0.3, 0.4, 0.6], [0.3, 0.9, 0.2], [0.1, 0.1, 0.3]])
    m = diagnosis_metrics(targets, probs, labels, {"A": 0.3, "B": 0.5, "C": 0.25})
    assert m["n"] == 4 and m["labels"] == labels
    a, b, c = (m["per_label"][l] for l in labels)
    # A: scores >= 0.3 are positive -> predicted [1, 1, 1, 0]
    assert a == {"n_pos": 2, "auroc": pytest.approx(roc_auc_score([1, 0, 1, 0], probs[:, 0])),
                 "threshold": 0.3, "sensitivity": 1.0, "specificity": 0.5, "n_unknown": 0}
    assert b["n_pos"] == 4 and b["auroc"] is None and b["specificity"] is None  # no negatives
    assert b["sensitivity"] == 0.25
    assert c["n_pos"] == 0 and c["auroc"] is None and c["sensitivity"] is None
    assert c["specificity"] == 0.5
    assert m["mean_auroc"] == a["auroc"]  # the only label with both classes
    assert m["no_finding"] == {"n": 0, "findings_median": None, "findings_mean": None}


def test_unknown_cells_change_no_metric_and_no_operating_point():
    """A -1 cell is left out of its label's numbers: the report equals, label by label, the
    report over the rows where that label is known -- not the one that reads -1 as 0."""
    rng = np.random.default_rng(0)
    targets = (rng.random((60, 3)) < 0.4).astype(float)
    probs = np.clip(targets * 0.3 + rng.random((60, 3)) * 0.7, 0, 1)
    unknown = targets.copy()
    unknown[rng.random((60, 3)) < 0.2] = UNKNOWN
    labels = ["A", "B", "C"]
    thresholds = operating_points(unknown, probs, labels)
    m = diagnosis_metrics(unknown, probs, labels, thresholds)
    for i, label in enumerate(labels):
        rows = unknown[:, i] != UNKNOWN
        alone = diagnosis_metrics(targets[rows][:, [i]], probs[rows][:, [i]], [label], thresholds)
        assert thresholds[label] == operating_points(targets[rows][:, [i]], probs[rows][:, [i]],
                                                     [label])[label]
        assert m["per_label"][label] == {**alone["per_label"][label], "n_unknown": int((~rows).sum())}
        assert m["per_label"][label]["n_unknown"] > 0
        # reading -1 as "absent" would give another AUROC
        assert m["per_label"][label]["auroc"] != pytest.approx(
            roc_auc_score(unknown[:, i] > 0.5, probs[:, i]))
    assert m["mean_auroc"] == pytest.approx(mean_auroc(unknown, probs))
    # a row with an unknown cell is not "no finding", even if every known cell is 0
    assert m["no_finding"]["n"] == int((unknown == 0).all(1).sum()) < int((targets == 0).all(1).sum())


def test_read_labelled_csv_reads_minus_one_and_empty_as_unknown(tmp_path):
    rows = [{"path": "a.png", **dict.fromkeys(NIH_LABELS, "0"), "Pneumonia": "1", "Edema": "-1",
             "Mass": ""},
            {"path": "b.png", **dict.fromkeys(NIH_LABELS, "0")}]
    path = _write_csv(tmp_path / "dx.csv", ["path", *NIH_LABELS], rows)
    _, targets = read_labelled_csv(path, "diagnosis")
    assert targets[0, NIH_LABELS.index("Pneumonia")] == 1
    assert targets[0, NIH_LABELS.index("Edema")] == UNKNOWN == targets[0, NIH_LABELS.index("Mass")]
    assert (targets[1] == 0).all()
    # a NIH row with unknown cells is no screening "Normal"
    assert screening_target_of_nih(targets[0]) == SCREENING_CLASSES.index("Pneumonia")
    only_unknown = np.where(np.arange(14) == 3, UNKNOWN, 0.0)
    assert screening_target_of_nih(only_unknown) == NOT_COVID
    rows[1]["Hernia"] = "2"
    with pytest.raises(ValueError, match=r"Hernia='2' for b.png.*-1 or empty \(unknown\)"):
        read_labelled_csv(_write_csv(tmp_path / "bad.csv", ["path", *NIH_LABELS], rows), "diagnosis")


def test_adult_screening_metrics_known_answer():
    covid, pneumonia, normal, not_covid = 0, 1, 2, -1
    y = np.array([covid, covid, normal, normal, pneumonia, not_covid])
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1],   # one COVID-19 found, one missed
                      [0.1, 0.1, 0.8], [0.6, 0.1, 0.3],   # one Normal right, one called COVID-19
                      [0.1, 0.3, 0.6], [0.2, 0.7, 0.1]])  # Pneumonia called Normal; other: fine
    m = adult_screening_metrics(y, probs, SCREENING_CLASSES)
    assert m["n"] == 6 and m["n_covid19"] == 2
    assert m["covid19_sensitivity"] == 0.5 and m["non_covid19_called_covid19"] == 0.25
    assert m["covid19_vs_non_covid19_auroc"] == pytest.approx(
        roc_auc_score([1, 1, 0, 0, 0, 0], probs[:, 0]))
    assert m["normal"] == {"n": 2, "called_normal": 0.5, "called_covid19": 0.5}
    assert m["pneumonia"] == {"n": 1, "called_pneumonia": 0.0, "called_normal": 1.0}


def test_evaluate_screening_on_adults_with_nih_rows(screening_csv, random_weights_dir, tmp_path):
    rows = []
    for i, findings in enumerate([{}, {"Pneumonia": 1}, {"Mass": 1}]):
        _noise_png(tmp_path / "images" / f"n{i}.png", 200 + i)
        rows.append({"path": f"images/n{i}.png", **dict.fromkeys(NIH_LABELS, 0), **findings,
                     "source": "nih_starter", "split": "test"})
    nih = _write_csv(tmp_path / "nih.csv", ["path", *NIH_LABELS, "source", "split"], rows)
    metrics = evaluate_csv("screening", screening_csv, split="test", weights_dir=random_weights_dir,
                           out=None, extra_adults=nih)
    adult = metrics["adult"]
    # the screening CSV's "nih" rows (2) are adults, its kermany224 rows are not; + 3 NIH rows
    assert adult["n"] == 5 and adult["n_covid19"] == 0 and adult["nih_only"]["n"] == 3
    assert adult["normal"]["n"] == 1 + 1 and adult["pneumonia"]["n"] == 1 + 1
    assert adult["maps"]["n"] <= 5 and adult["maps"]["uniform_map_share"] == pytest.approx(0.64)
    assert metrics["n"] == 4  # the contract's keys still describe the screening CSV alone


def test_operating_points_hold_the_specificity_on_the_data_they_come_from():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    score = rng.random(400) + 0.5 * y
    thr = specificity_threshold(y, score, 0.95)
    negatives = score[y == 0]
    assert (negatives >= thr).mean() <= 0.05  # at most 5 % of negatives called positive
    assert (negatives >= np.max(negatives[negatives < thr])).mean() > 0.05  # the lowest such
    assert specificity_threshold(np.ones(5), np.arange(5.0)) == 0.5  # no negatives: default
    points = operating_points(np.stack([y, 1 - y], 1), np.stack([score, -score], 1), ["A", "B"])
    assert list(points) == ["A", "B"] and points["A"] == thr


# ------------------------------------------------------------------ synthetic CSVs
def _noise_png(path: Path, seed: int, size: int = 64) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def screening_csv(tmp_path) -> Path:
    """Pneumonia and Normal only (no COVID-19), one `val` row to be filtered out."""
    (tmp_path / "images").mkdir()
    rows = []
    for i, (label, split) in enumerate([("Pneumonia", "test"), ("Normal", "test"),
                                        ("Pneumonia", "test"), ("Normal", "test"),
                                        ("Normal", "val")]):
        _noise_png(tmp_path / "images" / f"{i}.png", i)
        rows.append({"path": f"images/{i}.png", "label": label, "split": split,
                     "source": "kermany224" if i < 2 else "nih"})
    return _write_csv(tmp_path / "labels.csv", ["path", "label", "split", "source"], rows)


@pytest.fixture
def diagnosis_csv(tmp_path) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    rows = []
    for i in range(3):
        _noise_png(tmp_path / "images" / f"d{i}.png", 100 + i, size=160)
        row = {"path": f"images/d{i}.png", **dict.fromkeys(NIH_LABELS, 0)}
        row["Effusion"] = int(i > 0)
        rows.append(row)
    return _write_csv(tmp_path / "diagnosis.csv", ["path", *NIH_LABELS], rows)  # no split column


def test_evaluate_screening_writes_the_contract(screening_csv, random_weights_dir, tmp_path):
    out = tmp_path / "eval" / "metrics.json"
    metrics = evaluate_csv("screening", screening_csv, split="test", weights_dir=random_weights_dir,
                           out=out)
    assert json.loads(out.read_text()) == metrics
    assert list(metrics) == SCREENING_KEYS + ["low_resolution", "radiograph_check", "by_source"]
    assert metrics["task"] == "screening" and metrics["n"] == 4
    # noise images: every row is still predicted (metrics need them all), and every one is
    # counted as a refusal of the radiograph check
    assert metrics["radiograph_check"]["refused"] == 4
    assert len(metrics["radiograph_check"]["refused_files"]) == 4
    by_source = metrics["by_source"]
    assert list(by_source) == ["kermany224", "nih"]
    assert [by_source[s]["n"] for s in by_source] == [2, 2]
    assert by_source["nih"]["per_class"]["Pneumonia"]["n_pos"] == 1
    assert list(metrics["per_class"]) == list(SCREENING_CLASSES)
    for values in metrics["per_class"].values():
        assert list(values) == PER_CLASS_KEYS
    assert metrics["per_class"]["COVID-19"]["n_pos"] == 0
    assert metrics["per_class"]["COVID-19"]["auroc"] is None  # no positives: null, not 0.5
    assert [v["n_pos"] for v in metrics["per_class"].values()] == [0, 2, 2]
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == 4 and cm[0].sum() == 0 and cm[1].sum() == 2
    for name in ("screening_roc.png", "screening_pr.png", "screening_confusion.png"):  # beside --out
        assert Image.open(tmp_path / "eval" / name).size[0] > 300


def test_evaluate_matches_the_predictor(screening_csv, random_weights_dir, random_predictor):
    """The batched path gives the probabilities `Predictor.screen` gives one by one."""
    paths, _ = read_labelled_csv(screening_csv, "screening", "test")
    probs = Predictor.from_models(load_model("screening", random_weights_dir).model).probabilities(
        paths[:2], "screening", batch_size=2)
    for path, row in zip(paths, probs):
        expected = random_predictor.screen(path).confidences
        assert row == pytest.approx([expected[c] for c in SCREENING_CLASSES], abs=1e-5)


def test_evaluate_scores_low_resolution_copies(diagnosis_csv, random_weights_dir):
    """The low-resolution block is the mean AUROC of the images shrunk to LOW_RESOLUTION_SIDE."""
    from diachestxr.evaluate import LOW_RESOLUTION_SIDE
    from diachestxr.io import read_xray, shrink
    from diachestxr.metrics import mean_auroc

    metrics = evaluate_csv("diagnosis", diagnosis_csv, weights_dir=random_weights_dir, out=None,
                           progress=False)
    paths, targets = read_labelled_csv(diagnosis_csv, "diagnosis")
    model = load_model("diagnosis", random_weights_dir).model
    small = [shrink(read_xray(p), LOW_RESOLUTION_SIDE) for p in paths]
    assert max(small[0].shape) == LOW_RESOLUTION_SIDE < max(read_xray(paths[0]).shape)
    expected = mean_auroc(targets, Predictor.from_models(model).probabilities(small, "diagnosis"))
    assert metrics["low_resolution"] == {"side": LOW_RESOLUTION_SIDE,
                                         "mean_auroc": pytest.approx(expected, abs=1e-6)}
    full = mean_auroc(targets, Predictor.from_models(model).probabilities(paths, "diagnosis"))
    assert metrics["mean_auroc"] == pytest.approx(full, abs=1e-6)


def test_evaluate_diagnosis_by_source_group_with_unknown_cells(random_weights_dir, tmp_path):
    """Broad rows, 64 px rows and No Finding / Pneumonia rows are reported apart, and an
    unknown cell leaves its row out of that label's numbers, pooled and per group."""
    (tmp_path / "images").mkdir()
    rows = []
    for i, (source, effusion) in enumerate([("nih_starter", "1"), ("nih_extra", "0"),
                                            ("nih_extra", "-1"), ("nih_lowres64", "1"),
                                            ("nih_lowres64", "0"), ("nih_austin", "")]):
        _noise_png(tmp_path / "images" / f"s{i}.png", 300 + i, size=64 if "64" in source else 160)
        rows.append({"path": f"images/s{i}.png", **dict.fromkeys(NIH_LABELS, 0),
                     "Effusion": effusion, "source": source})
    csv_path = _write_csv(tmp_path / "groups.csv", ["path", *NIH_LABELS, "source"], rows)
    metrics = evaluate_csv("diagnosis", csv_path, weights_dir=random_weights_dir, out=None,
                           progress=False)
    groups = metrics["by_source_group"]
    assert list(groups) == ["broad", "broad_64px", "no_finding_pneumonia"]
    assert [groups[g]["n"] for g in groups] == [3, 2, 1]
    assert groups["broad"]["per_label"]["Effusion"]["n_unknown"] == 1
    assert groups["broad"]["per_label"]["Effusion"]["auroc"] in (0.0, 1.0)  # 1 pos, 1 neg known
    assert groups["broad_64px"]["per_label"]["Effusion"]["auroc"] is not None
    # each group is also scored on its rows shrunk to LOW_RESOLUTION_SIDE
    assert all(0 <= g["low_resolution_mean_auroc"] <= 1 for g in groups.values()
               if g["low_resolution_mean_auroc"] is not None)
    assert groups["broad_64px"]["low_resolution_mean_auroc"] is not None
    assert metrics["per_label"]["Effusion"]["n_unknown"] == 2
    assert metrics["per_label"]["Effusion"]["n_pos"] == 2
    assert metrics["no_finding"]["n"] == 2  # the rows with an unknown Effusion are not "no finding"
    assert list(metrics["by_source"]) == ["nih_austin", "nih_extra", "nih_lowres64", "nih_starter"]


def test_evaluate_diagnosis_uses_the_checkpoint_thresholds(diagnosis_csv, random_weights_dir,
                                                           tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(random_weights_dir, weights)
    config = json.loads((weights / "diagnosis.json").read_text())
    config["thresholds"] = {label: 0.0 if label == "Effusion" else 1.0 for label in NIH_LABELS}
    (weights / "diagnosis.json").write_text(json.dumps(config))
    plots = tmp_path / "plots"
    metrics = evaluate_csv("diagnosis", diagnosis_csv, weights_dir=weights,
                           out=tmp_path / "m.json", plots_dir=plots)
    assert list(metrics) == DIAGNOSIS_KEYS + ["no_finding", "low_resolution", "maps",
                                              "radiograph_check"]
    assert metrics["n"] == 3 and metrics["labels"] == list(NIH_LABELS)
    # the one radiograph without findings crosses only Effusion's threshold of 0
    assert metrics["no_finding"] == {"n": 1, "findings_median": 1.0, "findings_mean": 1.0}
    assert metrics["maps"]["true_findings"] == 2  # Effusion in two rows
    for values in metrics["per_label"].values():
        assert list(values) == PER_LABEL_KEYS
    effusion = metrics["per_label"]["Effusion"]
    assert effusion["threshold"] == 0.0 and effusion["n_pos"] == 2
    assert effusion["sensitivity"] == 1.0 and effusion["specificity"] == 0.0  # all called positive
    assert effusion["auroc"] is not None
    mass = metrics["per_label"]["Mass"]
    assert mass["threshold"] == 1.0 and mass["auroc"] is None and mass["sensitivity"] is None
    assert metrics["mean_auroc"] == effusion["auroc"]  # only Effusion has both classes
    assert (plots / "diagnosis_roc.png").is_file() and (plots / "diagnosis_pr.png").is_file()
    assert not (plots / "diagnosis_confusion.png").exists()


# ----------------------------------------------------------------------------- errors
def test_unknown_screening_label_is_a_clear_error(tmp_path):
    csv_file = _write_csv(tmp_path / "l.csv", ["path", "label"],
                          [{"path": "a.png", "label": "Normal"},
                           {"path": "b.png", "label": "Tuberculosis"}])
    with pytest.raises(ValueError, match=r"Tuberculosis.*b\.png.*COVID-19"):
        read_labelled_csv(csv_file, "screening")


@pytest.mark.parametrize("columns, rows, split, message", [
    (["path", "label"], [{"path": "a.png", "label": "Normal"}], "test", "no 'split' column"),
    (["path", "label", "split"], [{"path": "a.png", "label": "Normal", "split": "val"}], "test",
     r"no rows with split == 'test'; splits present: \['val'\]"),
    (["path", "Atelectasis"], [{"path": "a.png", "Atelectasis": 1}], None, "missing column"),
])
def test_malformed_csvs(tmp_path, columns, rows, split, message):
    csv_file = _write_csv(tmp_path / "l.csv", columns, rows)
    task = "diagnosis" if "Atelectasis" in columns else "screening"
    with pytest.raises(ValueError, match=message):
        read_labelled_csv(csv_file, task, split)


def test_unreadable_image_names_the_file(screening_csv, random_weights_dir, tmp_path):
    (screening_csv.parent / "images" / "1.png").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"images/1\.png.*not a recognised image"):
        evaluate_csv("screening", screening_csv, split="test", weights_dir=random_weights_dir,
                     out=tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_cli_user_errors_exit_2_without_traceback(tmp_path, capsys, random_weights_dir):
    csv_file = _write_csv(tmp_path / "l.csv", ["path", "label"], [{"path": "a.png", "label": "Flu"}])
    code = cli.main(["evaluate", "--task", "screening", "--csv", str(csv_file),
                     "--weights", str(random_weights_dir), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "Flu" in err and "Traceback" not in err


# ---------------------------------------------------------------- real images, real CLI
def test_cli_evaluate_on_real_images(data_dir, random_weights_dir, tmp_path):
    """`python -m diachestxr evaluate` on 6 real test radiographs (2 per class), via a CSV
    in another folder whose paths are absolute."""
    src = data_dir / "screening"
    rows, per_class = [], {}
    for row in csv.DictReader((src / "labels.csv").open(newline="")):
        if row["split"] == "test" and per_class.get(row["label"], 0) < 2:
            per_class[row["label"]] = per_class.get(row["label"], 0) + 1
            rows.append({"path": str((src / row["path"]).resolve()), "label": row["label"],
                         "split": "test"})
    assert len(rows) == 6
    rows.append({**rows[0], "split": "val"})  # filtered out by --split test
    csv_file = _write_csv(tmp_path / "subset.csv", ["path", "label", "split"], rows)
    out = tmp_path / "out" / "metrics.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "diachestxr", "evaluate", "--task", "screening",
                           "--csv", str(csv_file), "--split", "test", "--weights",
                           str(random_weights_dir), "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert json.loads(proc.stdout) == metrics
    assert list(metrics)[:len(SCREENING_KEYS)] == SCREENING_KEYS and metrics["n"] == 6
    assert [v["n_pos"] for v in metrics["per_class"].values()] == [2, 2, 2]
    assert all(v["auroc"] is not None for v in metrics["per_class"].values())
    assert sum(map(sum, metrics["confusion_matrix"])) == 6
    assert (out.parent / "screening_roc.png").is_file()
    assert (out.parent / "screening_confusion.png").is_file()
