"""`python -m training.train` end to end with a tiny setting, resuming, and the reader of
the official NIH ChestX-ray14 layout."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image

from diachestxr.labels import NIH_LABELS
from diachestxr.registry import get_spec
from diachestxr.weights import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--limit", "12", "--epochs", "2", "--batch-size", "4", "--input-size", "64",
        "--init", "scratch"]


def _args(task: str, data_dir: Path, out: Path, cache: Path) -> list[str]:
    return ["--task", task, "--data", str(data_dir / task / "labels.csv"), "--out", str(out),
            "--cache-dir", str(cache), *TINY]


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> dict[str, Path]:
    """Both tasks trained by the real command line, the two processes side by side."""
    base = tmp_path_factory.mktemp("train")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {}
    for task in ("screening", "diagnosis"):
        cmd = [sys.executable, "-m", "training.train", *_args(task, data_dir, base / task, base / "cache")]
        procs[task] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    for task, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{task}:\n{err[-3000:]}"
        assert out.strip().splitlines()[-1] == str(base / task)  # prints the run folder
    return {task: base / task for task in procs}


@pytest.mark.parametrize("task", ["screening", "diagnosis"])
def test_train_writes_a_loadable_run(runs, task):
    run = runs[task]
    spec = get_spec(task)
    assert (run / spec.filename).is_file() and (run / spec.config_filename).is_file()
    assert (run / "state.pt").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all("train_loss" in r and np.isfinite(r["train_loss"]) for r in rows)
    config = json.loads((run / spec.config_filename).read_text())
    assert config["input_size"] == 64 and config["labels"] == list(spec.labels)
    assert config["training"]["command"].startswith("python -m training.train --task " + task)
    assert config["training"]["config"]["init"] == "scratch"
    if spec.multilabel:
        assert set(config["thresholds"]) == set(NIH_LABELS)
        # chosen on the broad-sample validation rows: the mean of their AUROC and that of
        # their 64 px copies
        from training.train import selection_score

        for r in rows:
            if r["broad_mean_auroc"] is None:  # no label with both positives and negatives
                continue
            assert 0 <= r["low_resolution_broad_mean_auroc"] <= 1
            assert r["selection_score"] == pytest.approx(
                (r["broad_mean_auroc"] + r["low_resolution_broad_mean_auroc"]) / 2)
        assert selection_score(rows[0], "mean_auroc", 0.0) == rows[0]["selection_score"]
    loaded = load_checkpoint(run / spec.filename, task)  # the package loads what training wrote
    assert loaded.spec.input_size == 64


def test_resume_continues_from_state(runs, data_dir, tmp_path, caplog):
    from training.train import main

    run = runs["screening"]
    args = _args("screening", data_dir, run, run.parent / "cache")
    args[args.index("--epochs") + 1] = "3"
    with caplog.at_level("INFO", logger="training"):
        main([*args, "--resume"])
    assert "resumed from" in caplog.text and "at epoch 2" in caplog.text
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # epochs 1-2 not repeated


def test_ema_run_keeps_the_averaged_weights(data_dir, tmp_path):
    """With --ema-epochs the checkpoint holds the moving average, not the last step's weights."""
    import torch
    from safetensors.torch import load_file
    from training.train import main

    out = tmp_path / "ema"
    args = _args("diagnosis", data_dir, out, tmp_path / "cache")
    args[args.index("--epochs") + 1] = "1"  # the best epoch is then the last one
    args[args.index("--batch-size") + 1] = "2"  # two steps: the average starts at the first
    main([*args, "--ema-epochs", "10"])  # a long time constant: far from the last step
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=False)
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    saved = load_file(str(out / "diagnosis.safetensors"))
    name = "classifier.weight"
    # AdamW's second step moves weights by about its lr (5e-4); fp16 rounds by about 1e-5
    assert (saved[name].float() - ema[name].float()).abs().max() < 1e-4
    assert (saved[name].float() - state["model"][name].float()).abs().max() > 2e-4


def test_distributed_data_parallel_with_torchrun(data_dir, tmp_path):
    """Two processes (gloo on CPU; nccl on GPUs) train one model and stop together."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
           "training.train", *_args("diagnosis", data_dir, out, tmp_path / "cache"), "--patience", "1"]
    cmd[cmd.index("--epochs") + 1] = "3"
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "device cpu x2" in proc.stderr
    assert (out / "diagnosis.safetensors").is_file()
    rows = (out / "metrics.jsonl").read_text().splitlines()  # rank 0 alone validates and logs
    assert 1 <= len(rows) <= 3


# ------------------------------------------------------------------- NIH official layout
def _nih_layout(root: Path) -> Path:
    """A miniature of the NIH download: Data_Entry_2017.csv, train_val_list.txt,
    test_list.txt and images_00N/images/*.png."""
    entries = [("00000001_000.png", "Cardiomegaly|Effusion", "1"),
               ("00000001_001.png", "No Finding", "1"),
               ("00000002_000.png", "Pleural_Thickening", "2"),
               ("00000003_000.png", "Hernia|Mass|Nodule", "3"),
               ("00000004_000.png", "No Finding", "4"),      # in test_list.txt
               ("00000005_000.png", "Atelectasis", "5")]     # listed but not downloaded
    rng = np.random.default_rng(0)
    for i, (name, _, _) in enumerate(entries[:5]):
        folder = root / f"images_00{1 + i // 3}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(folder / name)
    with (root / "Data_Entry_2017.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                    "Patient Gender", "View Position", "OriginalImage[Width", "Height]",
                    "OriginalImagePixelSpacing[x", "y]"])
        for name, findings, patient in entries:
            w.writerow([name, findings, name[9:12].lstrip("0") or "0", patient, "58", "M", "PA",
                        "2500", "2048", "0.143", "0.143"])
    (root / "train_val_list.txt").write_text("\n".join(
        e[0] for e in entries if e[0] != "00000004_000.png") + "\n")
    (root / "test_list.txt").write_text("00000004_000.png\n")
    return root / "Data_Entry_2017.csv"


def test_read_nih_table(tmp_path):
    from training.data import read_nih_table

    table = _nih_layout(tmp_path)
    records = read_nih_table(table, tmp_path, tmp_path / "train_val_list.txt")
    by_name = {r.path.name: r for r in records}
    # test_list images and images missing on disk are left out
    assert sorted(by_name) == ["00000001_000.png", "00000001_001.png", "00000002_000.png",
                               "00000003_000.png"]
    def positives(name):
        return [NIH_LABELS[i] for i in np.flatnonzero(by_name[name].target)]
    assert positives("00000001_000.png") == ["Cardiomegaly", "Effusion"]
    assert positives("00000001_001.png") == []  # "No Finding"
    assert positives("00000002_000.png") == ["Pleural_Thickening"]
    assert positives("00000003_000.png") == ["Mass", "Nodule", "Hernia"]
    assert by_name["00000003_000.png"].path.parent.parent.name == "images_002"
    assert by_name["00000001_000.png"].target.dtype == np.float32

    test = read_nih_table(table, tmp_path, tmp_path / "test_list.txt")
    assert [r.path.name for r in test] == ["00000004_000.png"]


def test_read_nih_table_rejects_unknown_findings(tmp_path):
    from training.data import read_nih_table

    table = _nih_layout(tmp_path)
    table.write_text(table.read_text().replace("Pleural_Thickening", "Pleural Thickening"))
    with pytest.raises(ValueError, match="Pleural Thickening"):
        read_nih_table(table, tmp_path)


def test_nih_table_splits_patient_wise(tmp_path):
    from training.train import TrainConfig, load_splits

    table = _nih_layout(tmp_path)
    train, val = load_splits(TrainConfig(task="diagnosis", data=str(table), nih_val_fraction=0.34))
    assert len(train) + len(val) == 4 and val
    patients = lambda recs: {r.meta["Patient ID"] for r in recs}  # noqa: E731
    assert not patients(train) & patients(val)  # patient 1's two images stay together


@pytest.mark.parametrize("kind", ["bce", "asl"])
def test_unknown_labels_change_neither_the_loss_nor_its_gradient(kind):
    """U-Ignore: an UNKNOWN cell's logit may be anything; the loss and every other gradient
    stay as they are, and the loss is the mean over the known cells."""
    from torch.nn import functional as F
    from training.train import diagnosis_loss

    from diachestxr.labels import UNKNOWN

    torch.manual_seed(0)
    y = (torch.rand(6, 14) < 0.3).float()
    y[0, 3] = y[2, 6] = y[5, 13] = UNKNOWN
    known = y >= 0
    losses, grads = [], []
    for shift in (0.0, 5.0):
        logits = torch.randn(6, 14, generator=torch.Generator().manual_seed(1))
        logits[~known] += shift  # only the unknown cells' logits differ
        logits.requires_grad_(True)
        loss = diagnosis_loss(logits, y, kind=kind)
        loss.backward()
        losses.append(loss.item()), grads.append(logits.grad.clone())
    assert losses[0] == pytest.approx(losses[1])
    assert (grads[0][~known] == 0).all() and (grads[1][~known] == 0).all()
    assert torch.allclose(grads[0], grads[1])
    if kind == "bce":
        logits = torch.randn(6, 14, generator=torch.Generator().manual_seed(1))
        expected = F.binary_cross_entropy_with_logits(logits[known], y[known])
        assert diagnosis_loss(logits, y).item() == pytest.approx(expected.item())


def test_asymmetric_loss_ignores_easy_negatives_and_keeps_positives_bce():
    """--loss asl: a negative whose probability is under the margin adds nothing; a hard
    negative adds less than its BCE; a positive adds exactly its BCE."""
    from torch.nn import functional as F
    from training.train import ASL_MARGIN, diagnosis_loss

    def one(logit: float, target: float, kind: str) -> float:
        return diagnosis_loss(torch.tensor([[logit]]), torch.tensor([[target]]), kind=kind).item()

    easy = math.log(ASL_MARGIN / 2 / (1 - ASL_MARGIN / 2))  # p = margin / 2
    assert one(easy, 0.0, "asl") == 0.0 < one(easy, 0.0, "bce")
    assert 0 < one(1.0, 0.0, "asl") < one(1.0, 0.0, "bce")
    assert one(-1.0, 1.0, "asl") == pytest.approx(
        F.binary_cross_entropy_with_logits(torch.tensor(-1.0), torch.tensor(1.0)).item())


def test_unknown_policy_and_positive_weights(data_dir):
    """--unknown ones turns the training split's unknown cells into positives (validation
    keeps them unknown); --pos-weight weighs each label's positives by its imbalance."""
    from training.train import POS_WEIGHT_CAP, TrainConfig, load_splits, positive_weights

    from diachestxr.labels import UNKNOWN

    csv_path = str(data_dir / "diagnosis" / "labels.csv")
    ignore_train, ignore_val = load_splits(TrainConfig(task="diagnosis", data=csv_path))
    ones_train, ones_val = load_splits(TrainConfig(task="diagnosis", data=csv_path, unknown="ones"))
    before, after = np.stack([r.target for r in ignore_train]), np.stack([r.target for r in ones_train])
    assert (before == UNKNOWN).sum() > 50  # the nih_austin rows (139 cells in all splits)
    assert not (after == UNKNOWN).any()
    assert (after[before == UNKNOWN] == 1).all() and (after[before != UNKNOWN] == before[before != UNKNOWN]).all()
    assert all((a.target == b.target).all() for a, b in zip(ignore_val, ones_val))
    weights = positive_weights(ignore_train, 0.5)
    known = before != UNKNOWN
    ratio = ((before == 0) & known).sum(0) / (before == 1).sum(0)
    assert weights == pytest.approx(np.minimum(np.sqrt(ratio), POS_WEIGHT_CAP), rel=1e-6)
    with pytest.raises(SystemExit, match="--unknown maybe"):
        load_splits(TrainConfig(task="diagnosis", data=csv_path, unknown="maybe"))


def test_broad_share_sets_the_broad_rows_share_of_the_draws(data_dir):
    """--broad-share: that share of the sampling weight on the broad-sample rows, spread
    evenly; 0 draws every row alike."""
    from training.train import TrainConfig, broad_rows, load_splits, source_group_weights

    train, _ = load_splits(TrainConfig(task="diagnosis", data=str(data_dir / "diagnosis" / "labels.csv")))
    broad = broad_rows(train)
    assert 0 < broad.sum() < len(train)
    assert (source_group_weights(train, 0.0) == 1).all()
    weights = source_group_weights(train, 0.7)
    assert weights[broad].sum() / weights.sum() == pytest.approx(0.7)
    assert len(set(weights[broad])) == 1 and len(set(weights[~broad])) == 1
    with pytest.raises(SystemExit, match="between 0 and 1"):
        source_group_weights(train, 1.5)


def test_bundle_reports_shortcut_checks_and_keeps_a_better_checkpoint(runs, data_dir, tmp_path,
                                                                      monkeypatch, capsys):
    import training.bundle as bundle

    run = runs["screening"]
    assert bundle.main([str(run), "--data", str(data_dir), "--out", str(tmp_path),
                        "--note", "a note"]) == 0  # written only where it is told
    written = sorted(tmp_path.iterdir())
    assert [p.name for p in written] == ["screening.json", "screening.md", "screening.safetensors"]
    config = json.loads((tmp_path / "screening.json").read_text())
    metrics = config["test_metrics"]
    assert sum(v["n"] for v in metrics["by_source"].values()) == metrics["n"]
    assert metrics["by_source"]["mhh_covid"]["per_class"]["COVID-19"]["n_pos"] > 0
    assert metrics["adult"]["nih_only"]["n"] > 0  # the NIH test radiographs, all adults
    card = (tmp_path / "screening.md").read_text()
    assert "Adults only" in card and "By source" in card and "a note" in card
    # the same run again is not better on validation: the bundled files stay as they are
    assert bundle.bundle(run, data_dir, [], out=tmp_path) == []
    assert "kept that checkpoint" in capsys.readouterr().out


def test_an_ensemble_is_scored_on_the_mean_of_its_runs_probabilities(runs, data_dir, tmp_path,
                                                                     capsys):
    """training.ensemble: each run's validation score, then the score of their mean
    probabilities (what `--teacher` distils); a run with itself is that run."""
    import shutil

    from safetensors.torch import load_file, save_file

    from training import ensemble
    from training.bundle import ensemble_score, validation_outputs

    run, other = runs["diagnosis"], tmp_path / "other"  # the run with another head
    shutil.copytree(run, other)
    weights = load_file(other / "diagnosis.safetensors")
    head = next(k for k in weights if k.endswith("weight") and weights[k].shape[0] == 14)
    weights[head] = torch.randn(weights[head].shape, generator=torch.Generator().manual_seed(0))
    save_file(weights, other / "diagnosis.safetensors")
    assert ensemble.main(["--data", str(data_dir), str(run), str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[1] for line in lines] == [str(run), str(other), "ensemble of all 2"]
    a, b = (validation_outputs("diagnosis", r, data_dir) for r in (run, other))
    mean = {**a, "probs": (a["probs"] + b["probs"]) / 2, "low": (a["low"] + b["low"]) / 2}
    scores = [float(line.split()[0]) for line in lines]
    assert scores[2] == pytest.approx(ensemble_score("diagnosis", [mean]), abs=1e-4)
    assert scores[2] not in scores[:2]  # the mean ranks the images unlike either run
    assert ensemble_score("diagnosis", [a, a]) == pytest.approx(ensemble_score("diagnosis", [a]))


def test_bf16_and_fp32_training_agree(data_dir, tmp_path):
    """The same seeded tiny run in both precisions: same batches, so the losses differ only
    by bf16 rounding (the default where the CPU has native bf16)."""
    from training.train import TrainConfig, cpu_has_native_bf16, train

    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(task="diagnosis", data=str(data_dir / "diagnosis" / "labels.csv"),
                          out=str(tmp_path / precision), init="scratch", epochs=2, batch_size=4,
                          input_size=64, limit=12, cache_dir=str(tmp_path / "cache"),
                          precision=precision)
        run = train(cfg)
        losses[precision] = [json.loads(line)["train_loss"]
                             for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05), losses
    if cpu_has_native_bf16():  # "auto" picks bf16 on this machine
        from training.train import use_bf16

        assert use_bf16(torch.device("cpu"), "auto")


@pytest.mark.parametrize("strength", ["none", "light", "lowres", "default", "borders", "hospital",
                                      "contrastive"])
def test_augmentations_keep_the_model_input_format(strength):
    from diachestxr.transforms import eval_tensor, train_transform

    from tests.images import chest_like

    spec = get_spec("screening")
    cached = torch.from_numpy(chest_like(256, 256)).unsqueeze(0)
    x = train_transform(spec, strength)(cached)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    if strength == "none":  # the eval transform's view of the same image
        expected = eval_tensor(cached[0].numpy(), spec)
        assert (x - expected).abs().mean() < 0.05  # the two resizers differ a little


def test_border_masking_fills_only_bands_along_the_edges():
    from diachestxr.transforms import MAX_BORDER, mask_borders

    torch.manual_seed(3)
    x = mask_borders(torch.full((1, 100, 100), 0.5))
    changed = (x != 0.5)[0]
    inner = int(100 * MAX_BORDER) + 1
    assert not changed[inner:-inner, inner:-inner].any()  # the centre is never touched
    assert changed.any()


def test_film_artifacts_look_like_other_hospitals_films():
    """Each artifact keeps the radiograph's size and type and does what it says: a band of
    one gray level along an edge, a dark margin all round, clipped darks, burnt-in labels."""
    from diachestxr.transforms import FILM_ARTIFACTS, film_artifacts

    from tests.images import chest_like

    gray = chest_like(200, 180)
    rng = np.random.default_rng(0)
    for name, (artifact, _) in FILM_ARTIFACTS.items():
        out = artifact(rng, gray)
        assert out.shape == gray.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, gray), name
    edges = lambda x: [x[0], x[-1], x[:, 0], x[:, -1]]  # noqa: E731
    banded = FILM_ARTIFACTS["letterbox"][0](np.random.default_rng(1), gray)
    assert any(np.ptp(e.astype(int)) <= 2 for e in edges(banded))  # one gray level along a side
    framed = FILM_ARTIFACTS["in_frame"][0](np.random.default_rng(1), gray)
    assert all(e.max() < 35 for e in edges(framed))  # a dark margin on every side
    ramp = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    exposed = FILM_ARTIFACTS["hard_exposure"][0](np.random.default_rng(2), ramp)
    assert (exposed == 0).sum() > 8 and (exposed == 255).sum() >= 8  # darks and lights clipped
    labelled = FILM_ARTIFACTS["burnt_labels"][0](np.random.default_rng(3), gray)
    assert (labelled >= 220).sum() > (gray >= 220).sum()  # white boxes or letters
    assert film_artifacts(np.random.default_rng(4), gray).shape == gray.shape


def test_holdout_leaves_a_source_out_of_training_and_scores_the_run_on_it(runs, data_dir):
    """--holdout keeps a hospital out of train and val; training.holdout then ranks that
    source's COVID-19 radiographs against adults the run never trained on."""
    from training.holdout import holdout_report
    from training.train import TrainConfig, load_splits

    cfg = TrainConfig(task="screening", data=str(data_dir / "screening" / "labels.csv"),
                      extra_adults=str(data_dir / "diagnosis" / "labels.csv"))
    train, val = load_splits(cfg)
    held = load_splits(dataclasses.replace(cfg, holdout="mhh_covid,nih"))
    for full, kept in zip((train, val), held):
        sources = {r.meta["source"] for r in kept}
        assert "mhh_covid" not in sources and not any(s.startswith("nih") for s in sources)
        assert len(kept) == sum(r.meta["source"] != "mhh_covid" and not r.meta["source"].startswith("nih")
                                for r in full)
    report = holdout_report(runs["screening"], ["mhh_covid"], data_dir)
    entry = report["by_source"]["mhh_covid"]
    assert entry["n"] == entry["n_covid19"] > 0  # every split of a COVID-19-only source
    against = entry["against_unseen_adults"]
    assert against["n"] == entry["n"] + report["unseen_adult_negatives"]
    assert 0 <= against["covid19_vs_non_covid19_auroc"] <= 1
    assert "within_source" not in entry  # no non-COVID radiograph of its own
    from diachestxr.card import model_card
    from diachestxr.config import CheckpointConfig

    config = CheckpointConfig.read(runs["screening"] / "screening.json")
    card = model_card(config.replace(leave_one_hospital_out=[{"name": "no-mhh", **report}]))
    assert "Hospitals it never saw" in card
    assert card.index("Hospitals it never saw") < card.index("Validation split")  # first
    assert f"| `mhh_covid` | no-mhh | {entry['n']} |" in card


def test_low_resolution_round_trip_removes_fine_detail_only():
    from diachestxr.transforms import low_resolution

    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    fine = ((xx + yy) % 2).float()[None]  # a 1-pixel checkerboard
    coarse = (xx < 64).float()[None]  # two halves
    torch.manual_seed(0)
    for _ in range(5):
        assert low_resolution(fine).shape == (1, 128, 128)
        assert low_resolution(fine).std() < 0.25 * fine.std()  # the checkerboard is gone
        assert (low_resolution(coarse) - coarse).abs().mean() < 0.05  # the halves stay


def test_equalisation_runs_in_training_and_inference_alike(tmp_path):
    """spec.equalize (CLAHE) travels in the checkpoint config and both transforms apply it."""
    import dataclasses

    from diachestxr.models import build_model
    from diachestxr.transforms import eval_tensor, train_transform
    from diachestxr.weights import save_checkpoint
    from tests.images import chest_like

    spec = dataclasses.replace(get_spec("screening"), equalize=True)
    gray = chest_like(256, 256)
    trained_view = train_transform(spec, "none")(torch.from_numpy(gray).unsqueeze(0))
    # CLAHE runs on the cached 256 px image in training and on the 224 px input at inference:
    # the same function, a few gray levels apart on average (0.06 in normalised units)
    assert (trained_view - eval_tensor(gray, spec)).abs().mean() < 0.08
    assert (eval_tensor(gray, spec) - eval_tensor(gray, get_spec("screening"))).abs().mean() > 0.05
    save_checkpoint(build_model(spec), None, tmp_path, spec)
    assert load_checkpoint(tmp_path / spec.filename, "screening").spec.equalize


def test_body_crop_runs_in_training_and_inference_alike(tmp_path):
    """spec.crop cuts a black frame away, in both transforms, and travels in the config."""
    import dataclasses

    import numpy as np

    from diachestxr.models import build_model
    from diachestxr.transforms import crop_to_body, eval_tensor, train_transform
    from diachestxr.weights import save_checkpoint
    from tests.images import chest_like

    framed = np.zeros((300, 400), np.uint8)
    framed[40:260, 60:340] = np.maximum(chest_like(220, 280), 90)  # a body in a black frame
    body = crop_to_body(framed)
    assert 220 <= body.shape[0] <= 250 and 280 <= body.shape[1] <= 310  # the frame is gone (3 % margin)
    flat = np.full((64, 64), 128, np.uint8)
    assert crop_to_body(flat).shape == flat.shape  # no clear body: the whole image
    spec = dataclasses.replace(get_spec("screening"), crop=True)
    trained_view = train_transform(spec, "none")(torch.from_numpy(framed).unsqueeze(0))
    assert (trained_view - eval_tensor(framed, spec)).abs().mean() < 0.05
    assert (eval_tensor(framed, spec) - eval_tensor(framed, get_spec("screening"))).abs().mean() > 0.2
    save_checkpoint(build_model(spec), None, tmp_path, spec)
    assert load_checkpoint(tmp_path / spec.filename, "screening").spec.crop


def test_balanced_sources_share_a_class_by_the_square_root_of_their_counts():
    import numpy as np

    from training.data import Record, stratified_weights

    def records(n: int, target: int, group: str, source: str) -> list:
        return [Record(f"{source}{i}.png", np.array(target), group, {"source": source}) for i in range(n)]

    recs = (records(100, 2, "adult", "nih_pneumonia_normal") + records(4, 2, "adult", "actualmed_covid")
            + records(50, 2, "pediatric", "kermany224") + records(30, 0, "adult", "mhh_covid"))
    plain, balanced = stratified_weights(recs, 3), stratified_weights(recs, 3, balance_sources=True)
    share = lambda w, src: w[[r.meta["source"] == src for r in recs]].sum() / w.sum()  # noqa: E731
    assert share(plain, "actualmed_covid") == pytest.approx(share(plain, "nih_pneumonia_normal") * 4 / 100)
    # adult Normal: sqrt(100) : sqrt(4) = 10 : 2 between the two hospitals
    assert share(balanced, "actualmed_covid") == pytest.approx(share(balanced, "nih_pneumonia_normal") * 2 / 10)
    # what a class and a group get overall does not change
    for src in ("kermany224", "mhh_covid"):
        assert share(balanced, src) == pytest.approx(share(plain, src))


def test_the_radiograph_gate_trains_and_loads(data_dir, tmp_path):
    """A tiny run of training/train_gate.py writes a gate the package loads, with its report."""
    import json
    import subprocess
    import sys

    from diachestxr.gate import RadiographGate
    from tests.conftest import ROOT

    subprocess.run([sys.executable, "-m", "training.train_gate", "--data", str(data_dir),
                    "--out", str(tmp_path), "--steps", "3", "--batch-size", "8", "--per-kind", "4",
                    "--limit", "12"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    config = json.loads((tmp_path / "gate.json").read_text())
    assert 0 < config["threshold"] <= 0.5
    report = config["report"]
    assert set(report["held_out_catch_rate"]) == {
        "negative", "rotated", "partial", "document", "photo", "noise", "montage", "binary",
        "rotated_20_35_degrees", "top_or_bottom_stretched"}
    under = report["val_test_false_refusals_under_film_artifacts"]
    assert set(under) == {"as_read", "letterbox", "in_frame", "hard_exposure", "burnt_labels", "all_four"}
    assert all(u["n"] == 4 * 12 and 0 <= u["refused"] <= u["n"] for u in under.values())
    gate = RadiographGate.load(tmp_path)
    assert gate.threshold == config["threshold"]


def test_contrastive_loss_rewards_views_that_find_their_twin():
    from training.pretrain_ssl import nt_xent

    torch.manual_seed(0)
    images = torch.randn(8, 32)
    twins = torch.cat([images, images + 0.01 * torch.randn(8, 32)])
    strangers = torch.randn(16, 32)
    loss_twins, acc_twins = nt_xent(twins, 0.2)
    loss_strangers, acc_strangers = nt_xent(strangers, 0.2)
    assert acc_twins == 1.0 and acc_strangers < 0.5
    assert loss_twins < 0.5 < 2.0 < loss_strangers


def test_self_supervised_pretraining_starts_a_diagnosis_run(data_dir, tmp_path, caplog):
    """A tiny SimCLR run writes a backbone that `training.train --init` takes whole."""
    import logging

    from training.train import init_model

    subprocess.run([sys.executable, "-m", "training.pretrain_ssl", "--data", str(data_dir),
                    "--out", str(tmp_path / "ssl"), "--cache-dir", str(tmp_path / "cache"),
                    "--limit", "8", "--epochs", "1", "--batch-size", "4", "--input-size", "64"],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    rows = [json.loads(line) for line in (tmp_path / "ssl/metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["loss"])
    with caplog.at_level(logging.INFO, logger="training"):
        model = init_model(get_spec("diagnosis"), str(tmp_path / "ssl"))
    assert "initialised" in caplog.text
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "ssl/diagnosis.safetensors"))
    conv0 = model.state_dict()["features.conv0.weight"]
    assert torch.equal(conv0, saved["features.conv0.weight"].float())


def test_soup_averages_the_weights_of_runs(random_weights_dir, tmp_path):
    """training.soup: every floating-point tensor is the mean of the runs' (fp16 storage)."""
    import shutil

    from safetensors.torch import load_file, save_file
    from training.soup import soup

    from diachestxr.card import model_card

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(random_weights_dir, a)
    shutil.copytree(random_weights_dir, b)
    for task in ("screening",):  # one task per run folder
        (a / f"{task}.safetensors").unlink(), (a / f"{task}.json").unlink()
        (b / f"{task}.safetensors").unlink(), (b / f"{task}.json").unlink()
    state = load_file(str(b / "diagnosis.safetensors"))
    state["classifier.weight"] = state["classifier.weight"] + 1.0
    save_file(state, str(b / "diagnosis.safetensors"), metadata={"task": "diagnosis", "arch": "densenet121"})
    written = soup([a, b], tmp_path / "soup")
    mixed, first = load_file(str(written)), load_file(str(a / "diagnosis.safetensors"))
    assert torch.allclose(mixed["classifier.weight"].float(), first["classifier.weight"].float() + 0.5,
                          atol=2e-3)
    assert torch.equal(mixed["features.conv0.weight"], first["features.conv0.weight"])
    config = json.loads((tmp_path / "soup" / "diagnosis.json").read_text())
    assert config["training"]["soup_of"] == [str(a), str(b)]
    assert config["validation"] is None  # the first run's scores are not the average's
    card = model_card(load_checkpoint(written, "diagnosis").config)  # the package loads it
    assert "A weight average (`python -m training.soup`) of 2 runs" in card and f"`{b}`" in card


def test_teacher_targets_blend_labels_and_fill_unknown_cells(random_weights_dir):
    """Distillation: a known cell's target is (1 - d) * label + d * the teachers' mean
    probability; an unknown cell takes the teachers' probability alone."""
    from training.data import Record
    from training.train import with_teacher_targets

    from diachestxr import Predictor
    from diachestxr.labels import UNKNOWN
    from diachestxr.weights import load_checkpoint
    from tests.images import chest_like

    images = np.stack([chest_like(96, 96, seed=i) for i in range(3)])
    targets = np.zeros((3, 14), np.float32)
    targets[0, 2], targets[1, 5] = 1.0, UNKNOWN
    records = [Record(Path(f"{i}.png"), t) for i, t in enumerate(targets)]
    teacher = str(random_weights_dir)
    out = with_teacher_targets(records, images, f"{teacher},{teacher}", 0.25)
    expected = Predictor.from_models(load_checkpoint(random_weights_dir / "diagnosis.safetensors",
                                                     "diagnosis").model).probabilities(images, "diagnosis")
    soft = np.stack([r.target for r in out])
    assert soft[0, 2] == pytest.approx(0.75 + 0.25 * expected[0, 2], abs=1e-5)
    assert soft[0, 3] == pytest.approx(0.25 * expected[0, 3], abs=1e-5)
    assert soft[1, 5] == pytest.approx(expected[1, 5], abs=1e-5)  # unknown: the teachers' alone
    assert (soft >= 0).all() and (soft <= 1).all()
    assert (targets[1, 5] == UNKNOWN)  # the records given are not changed


def test_robustness_to_film_artifacts_reports_every_artifact(random_weights_dir, data_dir):
    from diachestxr.transforms import FILM_ARTIFACTS
    from training.robustness import robustness

    report = robustness("screening", random_weights_dir, data_dir, adults_only=True, limit=40)
    assert report["n"] == 40 and set(report["by_artifact"]) == {*FILM_ARTIFACTS, "all_four"}
    for entry in report["by_artifact"].values():
        assert 0 <= entry["called_class_changed"] <= 1 and entry["mean_abs_probability_change"] >= 0
