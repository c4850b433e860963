"""Train the screening (AlexNet) or diagnosis (DenseNet121) model. Read top to bottom.

    python -m training.train --task screening --data ../shared/data/screening/labels.csv \
        --extra-adults ../shared/data/diagnosis/labels.csv --out runs/screening
    python -m training.train --task diagnosis --data ../shared/data/diagnosis/labels.csv \
        --init runs/densenet-pretrain --out runs/diagnosis

One process uses the GPU when there is one (mixed precision) or the CPU; several GPUs with
`torchrun --nproc_per_node N -m training.train ...` (DistributedDataParallel).
The best-on-validation model is written as <task>.safetensors + <task>.json (the format the
package loads); `state.pt` holds the resumable training state (`--resume`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, WeightedRandomSampler
from tqdm import tqdm

from diachestxr.config import CheckpointConfig
from diachestxr.evaluate import low_resolution_probabilities
from diachestxr.metrics import (FINDING_SPECIFICITY, adult_screening_metrics, balanced_accuracy,
                                 mean_auroc, operating_points, screening_metrics)
from diachestxr.inference import Predictor
from diachestxr.labels import DIAGNOSIS_SOURCE_GROUPS, NOT_COVID, SCREENING_CLASSES, known
from diachestxr.models import build_model
from diachestxr.registry import CAM_LAYERS, ModelSpec, get_spec
from diachestxr.transforms import TRAIN_CACHE_SCALE, resize_gray, train_transform
from diachestxr.weights import save_checkpoint

from .data import (Record, XRayDataset, from_sources, load_images, nih_rows_as_screening,
                   read_labels_csv, read_nih_table, stratified_weights)

log = logging.getLogger("training")

# How the diagnosis thresholds were chosen (stored in the checkpoint config; the app says it)
OPERATING_POINT = {"rule": "per label, the lowest threshold with this specificity on validation",
                   "specificity": FINDING_SPECIFICITY, "split": "val"}
TRAIN_PROBE = 200  # training images scored each epoch to tell underfitting from overfitting
POS_WEIGHT_CAP = 20.0  # --pos-weight: Hernia's ~1 % prevalence would otherwise weigh 100x


@dataclass
class TrainConfig:
    task: str = "screening"
    data: str = "../shared/data/screening/labels.csv"  # labels.csv, or NIH Data_Entry_2017.csv
    nih_images: str = ""  # with a Data_Entry csv: the folder holding the NIH images
    nih_val_fraction: float = 0.1  # with a Data_Entry csv: patients held out for validation
    extra_adults: str = ""  # screening: a diagnosis labels.csv whose adult normals/pneumonias join
    out: str = "runs/latest"
    arch: str = ""  # "": the registry's; e.g. densenet121 to pre-train a backbone on screening data
    init: str = "imagenet"  # imagenet | scratch | PATH (a run dir or .safetensors; matching layers)
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.05  # screening only: softer, better-calibrated confidences
    # diagnosis: what an unknown (-1 or empty) training label means. ignore: left out of the
    # loss (CheXpert's U-Ignore); ones: a positive (U-Ones). Validation always leaves it out.
    unknown: str = "ignore"
    # diagnosis: 0 off; else each label's positives weigh (negatives / positives) ** this in
    # the loss (0.5: the square root), capped at POS_WEIGHT_CAP, against label imbalance
    pos_weight: float = 0.0
    # diagnosis: bce, or asl: the asymmetric loss of Ridnik et al. (ICCV 2021) with their
    # defaults, which down-weights the many easy negatives of a rare label (gamma- 4, a 0.05
    # probability margin) and keeps the positives' full BCE (gamma+ 0)
    loss: str = "bce"
    # diagnosis: distillation. Comma-separated runs (or .safetensors) whose averaged
    # probabilities on the (unaugmented) training images become soft targets: a known cell's
    # target is (1 - distill) * label + distill * teachers, an unknown cell's the teachers'.
    # An ensemble's knowledge in one network's cost at inference.
    teacher: str = ""
    distill: float = 0.5
    # 0: off. Else validate and keep an exponential moving average of the weights with this
    # time constant in epochs: with few images, single epochs' weights are noisy and their
    # average generalises better (on our 50 diagnosis validation images, averaging epochs 6
    # and 12 scored 0.654 mean AUROC where each alone scored 0.646 and 0.613).
    ema_epochs: float = 0.0
    augment: str = "default"  # none | light | default | borders (diachestxr.transforms.AUGMENT)
    equalize: bool = False  # CLAHE in training and inference (stored in the checkpoint config)
    crop: bool = False  # crop to the body in training and inference (stored in the checkpoint config)
    balance_sources: bool = False  # screening: hospitals' shares within a class ~ sqrt(count)
    # diagnosis: 0, rows drawn uniformly; else the share of each epoch drawn from the
    # broad-sample rows (train.broad_rows; 43 % of the train split), which hold nearly all the
    # positives of 13 labels, against the No Finding / Pneumonia rows
    broad_share: float = 0.0
    # comma-separated sources (a labels.csv `source`, or "nih") left out of train and val: the
    # leave-one-hospital-out test (training/holdout.py scores the run on them)
    holdout: str = ""
    samples_per_epoch: int = 0  # 0: the train split's size
    input_size: int = 0  # 0: the registry's
    patience: int = 5  # early stopping, in epochs without a better validation score
    limit: int = 0  # use only the first N train/val rows (smoke tests)
    seed: int = 0
    workers: int = 0
    # auto: bf16 autocast + channels_last on GPUs and on CPUs with native bf16 (AVX-512 BF16 /
    # AMX: 2.1-2.3x the fp32 img/s of DenseNet121 here), fp32 elsewhere; fp32 forces full precision
    precision: str = "auto"
    cache_dir: str = ".cache/images"
    resume: bool = False
    notes: list = field(default_factory=list)


# ------------------------------------------------------------------------------ data
def load_splits(cfg: TrainConfig) -> tuple[list[Record], list[Record]]:
    if Path(cfg.data).name.startswith("Data_Entry"):
        if cfg.task != "diagnosis":
            raise SystemExit("a Data_Entry_2017 table only serves the diagnosis task")
        root = Path(cfg.nih_images or Path(cfg.data).parent)
        train_val = read_nih_table(cfg.data, root, _maybe(root.parent / "train_val_list.txt",
                                                          root / "train_val_list.txt"))
        # patient-wise validation split, so no patient is on both sides
        rng = random.Random(cfg.seed)
        patients = sorted({r.meta["Patient ID"] for r in train_val})
        val_p = set(rng.sample(patients, max(1, int(len(patients) * cfg.nih_val_fraction))))
        train = [r for r in train_val if r.meta["Patient ID"] not in val_p]
        val = [r for r in train_val if r.meta["Patient ID"] in val_p]
    else:
        train = read_labels_csv(cfg.data, cfg.task, "train")
        val = read_labels_csv(cfg.data, cfg.task, "val")
    if cfg.extra_adults:
        train += nih_rows_as_screening(cfg.extra_adults, "train")
        val += nih_rows_as_screening(cfg.extra_adults, "val")
    if cfg.holdout:
        left_out = set(cfg.holdout.split(","))
        train, val = ([r for r in rows if not from_sources(r, left_out)] for rows in (train, val))
    if cfg.task == "diagnosis":
        if cfg.unknown not in ("ignore", "ones"):
            raise SystemExit(f"--unknown {cfg.unknown}: choose ignore or ones")
        if cfg.unknown == "ones":  # training targets only; validation leaves unknowns out
            train = [dataclasses.replace(r, target=np.where(known(r.target), r.target, 1.0)
                                         .astype(np.float32)) for r in train]
    if cfg.limit:
        train, val = _head_per_class(train, cfg.limit), _head_per_class(val, cfg.limit)
    return train, val


def _maybe(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _head_per_class(records: list[Record], n: int) -> list[Record]:
    """The first rows, but with every class represented (tiny smoke-test runs)."""
    out, seen = [], {}
    for r in records:
        key = int(r.target) if r.target.ndim == 0 else 0
        if seen.get(key, 0) < max(2, n // 3):
            out.append(r)
            seen[key] = seen.get(key, 0) + 1
    return out[:max(n, len(seen) * 2)]


# ----------------------------------------------------------------------------- model
def init_model(spec: ModelSpec, init: str) -> nn.Module:
    if init in ("imagenet", "scratch"):
        try:
            return build_model(spec, imagenet=init == "imagenet")
        except Exception as e:  # no network: say so instead of a long urllib traceback
            raise SystemExit(f"could not download ImageNet weights ({e}); offline, use "
                             "--init scratch or --init PATH") from None
    path = Path(init)
    model = build_model(spec)
    # Take every tensor whose name and shape match: the backbone of a checkpoint trained on
    # another chest X-ray task (e.g. the same DenseNet pre-trained on the screening data).
    files = [path] if path.suffix == ".safetensors" else sorted(path.glob("*.safetensors"))
    if not files:
        raise SystemExit(f"--init {init}: no .safetensors checkpoint there")
    from safetensors.torch import load_file
    source = load_file(str(files[0]))
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("features.") for k in matched):
        raise SystemExit(f"--init {files[0]}: no layer matches a {spec.arch}")
    model.load_state_dict(matched, strict=False)
    log.info("initialised %d/%d tensors from %s", len(matched), len(own), files[0])
    return model


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether training steps run under bf16 autocast (see TrainConfig.precision)."""
    if precision not in ("auto", "bf16", "fp32"):
        raise SystemExit(f"--precision {precision}: choose auto, bf16 or fp32")
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cuda" or cpu_has_native_bf16()


def cpu_has_native_bf16() -> bool:
    """True on CPUs whose oneDNN kernels run bf16 natively (emulated bf16 is slower than fp32)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# ------------------------------------------------------------------------------- run
def validation_score(spec: ModelSpec, probs: np.ndarray, records: list[Record],
                     low_resolution_probs: np.ndarray | None = None) -> dict:
    """Validation numbers of one epoch (metrics.jsonl) and what selection_score needs.
    Diagnosis: the mean AUROC of every row, of the broad-sample rows, and of the broad rows
    shrunk to LOW_RESOLUTION_SIDE px (low_resolution_probs: every row's outputs there)."""
    if spec.multilabel:
        targets = np.stack([r.target for r in records])
        broad = broad_rows(records)
        scores = {"mean_auroc": mean_auroc(targets, probs),
                  "broad_mean_auroc": mean_auroc(targets[broad], probs[broad]) if broad.any() else None}
        if low_resolution_probs is not None and broad.any():
            scores["low_resolution_broad_mean_auroc"] = mean_auroc(targets[broad],
                                                                   low_resolution_probs[broad])
        return scores
    y = np.array([int(r.target) for r in records])
    labelled = y != NOT_COVID
    report = screening_metrics(y[labelled], probs[labelled], spec.labels)
    adult = np.array([r.group == "adult" for r in records])
    adults = adult_screening_metrics(y[adult], probs[adult], spec.labels)
    return {"macro_auroc": report["macro_auroc"], "accuracy": report["accuracy"],
            "balanced_accuracy": balanced_accuracy(report),
            # the age shortcut, threshold-free: COVID-19 against every other adult radiograph
            "adult_covid_auroc": adults["covid19_vs_non_covid19_auroc"],
            # read these two together: a model that calls COVID-19 less lowers both
            "covid19_sensitivity": report["per_class"]["COVID-19"]["sensitivity"],
            "adult_non_covid_called_covid": adults["non_covid19_called_covid19"],
            "adult_normal_called_normal": adults["normal"]["called_normal"]}


def broad_rows(records: list[Record]) -> np.ndarray:
    """The diagnosis rows of the broad samples (every label as NIH labels it, full resolution
    or 64 px), not those selected as No Finding / Pneumonia. Rows without a `source` (NIH's
    own table, itself a broad sample) all count."""
    no_finding_pneumonia = DIAGNOSIS_SOURCE_GROUPS["no_finding_pneumonia"]
    return np.array([r.meta.get("source", "") not in no_finding_pneumonia for r in records])


def source_group_weights(records: list[Record], broad_share: float) -> np.ndarray:
    """Per-row sampling weights (diagnosis): uniform, or with `broad_share` of the draws on
    the broad-sample rows, spread evenly among them (TrainConfig.broad_share)."""
    if not broad_share:
        return np.ones(len(records))
    if not 0 < broad_share < 1:
        raise SystemExit(f"--broad-share {broad_share}: give a share between 0 and 1")
    broad = broad_rows(records)
    if broad.all() or not broad.any():
        raise SystemExit("--broad-share needs both broad-sample and No Finding / Pneumonia rows")
    return np.where(broad, broad_share / broad.sum(), (1 - broad_share) / (~broad).sum())


def selection_score(scores: dict, score_name: str, train_loss: float) -> float:
    """What picks the best epoch (training) and the bundled model (training.bundle), on
    validation and threshold-free. Screening: the macro AUROC averaged with the AUROC of
    COVID-19 against adult non-COVID radiographs, so a model that scores by recognising
    adults loses to one that separates the disease among adults, and no model wins by merely
    calling COVID-19 less often. Diagnosis: the mean AUROC of the broad-sample rows averaged
    with theirs on copies shrunk to LOW_RESOLUTION_SIDE px -- the No Finding / Pneumonia rows
    are easy and would hide the other 13 labels, and models are judged on a stranger's film,
    full size and shrunk."""
    if (broad := scores.get("broad_mean_auroc")) is not None:
        other = scores.get("low_resolution_broad_mean_auroc")
        return broad if other is None else (broad + other) / 2
    if scores.get(score_name) is None:
        return -train_loss
    if scores.get("adult_covid_auroc") is not None:
        return (scores[score_name] + scores["adult_covid_auroc"]) / 2
    return scores[score_name]


def screening_loss(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy on labelled images; -log(1 - p(COVID-19)) on NOT_COVID partial labels."""
    labelled = y != NOT_COVID
    loss = logits.new_zeros(())
    if labelled.any():
        loss = F.cross_entropy(logits[labelled], y[labelled], label_smoothing=smoothing, reduction="sum")
    if (~labelled).any():
        log_p = F.log_softmax(logits[~labelled], dim=1)
        covid = SCREENING_CLASSES.index("COVID-19")
        not_covid = torch.logsumexp(torch.cat([log_p[:, :covid], log_p[:, covid + 1:]], 1), 1)
        loss = loss - not_covid.sum()
    return loss / len(y)


def positive_weights(records: list[Record], power: float) -> np.ndarray:
    """Per-label loss weights of the positives: (negatives / positives) ** power, over the
    known cells, capped at POS_WEIGHT_CAP (see TrainConfig.pos_weight)."""
    targets = np.stack([r.target for r in records])
    pos = (targets == 1).sum(0)
    neg = (targets == 0).sum(0)
    return np.minimum((neg / np.maximum(pos, 1)) ** power, POS_WEIGHT_CAP).astype(np.float32)


def with_teacher_targets(records: list[Record], images: np.ndarray, teachers: str,
                         distill: float) -> list[Record]:
    """Diagnosis records whose targets blend their labels with the mean probabilities of
    the `teachers` (comma-separated runs) on `images` (see TrainConfig.teacher)."""
    from diachestxr.weights import load_checkpoint

    from .push_to_hub import find_checkpoints

    files = [Path(t) if t.endswith(".safetensors") else find_checkpoints(t)["diagnosis"][0]
             for t in teachers.split(",")]
    soft = np.mean([Predictor.from_models(load_checkpoint(f, "diagnosis").model)
                    .probabilities(images, "diagnosis", progress=True) for f in files], 0)
    log.info("distilling %d teacher(s) into soft targets (weight %.2f)", len(files), distill)
    return [dataclasses.replace(r, target=np.where(known(r.target),
                                                   (1 - distill) * r.target + distill * s, s)
                                .astype(np.float32)) for r, s in zip(records, soft)]


ASL_GAMMA_NEG, ASL_MARGIN = 4.0, 0.05  # --loss asl: Ridnik et al.'s defaults


def diagnosis_loss(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None = None,
                   kind: str = "bce") -> torch.Tensor:
    """BCE-with-logits (or the asymmetric loss, kind="asl") over the known cells only: an
    UNKNOWN (-1) target adds nothing to the loss or its gradient (CheXpert's U-Ignore), so a
    batch's loss is the mean over its known cells. pos_weight (L,) weighs each label's
    positives (imbalance). Targets may be soft (distillation)."""
    mask = known(y)
    y = y.clamp(min=0)
    if kind == "asl":
        # positives: plain -log p; negatives: the probability shifted down by the margin
        # (easy negatives below it add nothing) and focused by (p_m) ** gamma-
        p_neg = (torch.sigmoid(logits) - ASL_MARGIN).clamp(min=0)
        log_1m = torch.log((1 - p_neg).clamp(min=1e-8))
        pos = -F.logsigmoid(logits) * (pos_weight if pos_weight is not None else 1)
        loss = y * pos - (1 - y) * p_neg.pow(ASL_GAMMA_NEG) * log_1m
    else:
        loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight,
                                                  reduction="none")
    return (loss * mask).sum() / mask.sum().clamp(min=1)


def train(cfg: TrainConfig) -> Path:
    """Train per `cfg`; returns the run folder holding the best checkpoint."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
                          if torch.cuda.is_available() else "cpu")
    main = rank == 0
    torch.manual_seed(cfg.seed + rank), np.random.seed(cfg.seed + rank), random.seed(cfg.seed + rank)

    spec = get_spec(cfg.task)
    if cfg.input_size:
        spec = dataclasses.replace(spec, input_size=cfg.input_size)
    if cfg.arch:
        spec = dataclasses.replace(spec, arch=cfg.arch, cam_layer=CAM_LAYERS[cfg.arch])
    if cfg.equalize or cfg.crop:
        spec = dataclasses.replace(spec, equalize=cfg.equalize or spec.equalize, crop=cfg.crop)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_recs, val_recs = load_splits(cfg)
    cache_size = round(spec.input_size * TRAIN_CACHE_SCALE)
    train_imgs = load_images(train_recs, cache_size, cfg.cache_dir)
    val_imgs = load_images(val_recs, spec.input_size, cfg.cache_dir)
    # A fixed sample of training images, scored in eval mode like validation: a model that
    # cannot rank its own training images underfits (the fix differs from overfitting's).
    probe = np.random.default_rng(cfg.seed).permutation(len(train_recs))[:TRAIN_PROBE]
    probe_recs = [train_recs[i] for i in probe]
    probe_imgs = np.stack([resize_gray(train_imgs[i], spec.input_size) for i in probe])
    log.info("%s: %d train / %d val images, %s, device %s x%d", cfg.task, len(train_recs),
             len(val_recs), spec.arch, device, world)

    bf16 = use_bf16(device, cfg.precision)
    # channels_last: the layout oneDNN's and cuDNN's fast bf16 convolutions want
    model = init_model(spec, cfg.init).to(device, memory_format=torch.channels_last if bf16
                                           else torch.contiguous_format)
    ddp_model = nn.parallel.DistributedDataParallel(model) if distributed else model
    if spec.multilabel:
        pos_weight = (torch.as_tensor(positive_weights(train_recs, cfg.pos_weight), device=device)
                      if cfg.pos_weight else None)
        if cfg.loss not in ("bce", "asl"):
            raise SystemExit(f"--loss {cfg.loss}: choose bce or asl")
        criterion = lambda logits, y: diagnosis_loss(logits, y, pos_weight, cfg.loss)  # noqa: E731
        weights = source_group_weights(train_recs, cfg.broad_share)
        if cfg.teacher:  # after the weights and the probe, which read the labels themselves
            train_recs = with_teacher_targets(train_recs, train_imgs, cfg.teacher, cfg.distill)
    else:
        if cfg.loss != "bce":
            raise SystemExit(f"--loss {cfg.loss}: screening trains with cross-entropy only")
        criterion = lambda logits, y: screening_loss(logits, y, cfg.label_smoothing)  # noqa: E731
        weights = stratified_weights(train_recs, len(spec.labels), cfg.balance_sources)
    per_epoch = (cfg.samples_per_epoch or len(train_recs)) // world
    sampler = WeightedRandomSampler(weights, per_epoch, replacement=True,
                                    generator=torch.Generator().manual_seed(cfg.seed + rank))
    loader = DataLoader(XRayDataset(train_imgs, train_recs, train_transform(spec, cfg.augment)),
                        batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                        drop_last=len(train_recs) > cfg.batch_size,
                        persistent_workers=cfg.workers > 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(loader)
    warmup = max(1, int(cfg.warmup_epochs * len(loader)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps))))))
    # the model that is validated and saved: the weights' moving average, or the weights
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(
        1 - 1 / max(1.0, cfg.ema_epochs * len(loader))), use_buffers=True) if cfg.ema_epochs else None)
    kept = ema.module if ema else model
    # bf16 keeps fp32's exponent range: no loss scaling needed
    log.info("precision: %s", "bf16 autocast + channels_last" if bf16 else "fp32")

    start_epoch, best, stale, history = 0, -1.0, 0, []
    state_file = out / "state.pt"
    if cfg.resume and state_file.is_file():
        state = torch.load(state_file, map_location=device, weights_only=False)  # our own file
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema:
            ema.load_state_dict(state["ema"])
        start_epoch, best, stale, history = (state["epoch"] + 1, state["best"], state["stale"],
                                             state["history"])
        log.info("resumed from %s at epoch %d", state_file, start_epoch)

    score_name = "mean_auroc" if spec.multilabel else "macro_auroc"
    t0 = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        ddp_model.train()
        total, n, epoch_start = 0.0, 0, time.time()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not main, unit="batch")
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device)
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = ddp_model(x)
            loss = criterion(logits.float(), y.float() if spec.multilabel else y.long())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema:
                ema.update_parameters(model)
            total, n = total + loss.item() * len(x), n + len(x)
            bar.set_postfix(loss=f"{total / n:.4f}")
        train_img_per_s = n * world / (time.time() - epoch_start)  # the steps, not validation
        if main:
            predictor = Predictor.from_models(kept)  # the path the app and `evaluate` use
            probs = predictor.probabilities(val_imgs, spec.task)
            scores = validation_score(  # diagnosis: also the copies shrunk (see selection_score)
                spec, probs, val_recs,
                low_resolution_probabilities(predictor, val_imgs, spec.task) if spec.multilabel else None)
            train_scores = validation_score(spec, predictor.probabilities(probe_imgs, spec.task),
                                            probe_recs)
            row = {"epoch": epoch + 1, "train_loss": total / max(n, 1), **scores,
                   f"train_{score_name}": train_scores[score_name],
                   "lr": scheduler.get_last_lr()[0], "elapsed_s": round(time.time() - t0, 1),
                   "train_img_per_s": round(train_img_per_s, 1)}
            row["selection_score"] = score = selection_score(scores, score_name, row["train_loss"])
            history.append(row)
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
            log.info("epoch %d: %s", epoch + 1, json.dumps(row))
            if score > best:
                best, stale = score, 0
                save_checkpoint(kept, run_config(cfg, spec, probs, val_recs, history, t0), out, spec)
            else:
                stale += 1
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch, "best": best,
                        "stale": stale, "history": history,
                        "ema": ema.state_dict() if ema else None}, state_file)
        if distributed:  # every rank must leave the loop at the same epoch
            flag = torch.tensor([stale], device=device)
            dist.broadcast(flag, src=0)
            stale = int(flag.item())
        if stale >= cfg.patience:
            log.info("early stop: no better %s for %d epochs", score_name, stale)
            break
    if main and (out / spec.config_filename).is_file():
        # the checkpoint's config was written at its best epoch: record the whole run
        config = CheckpointConfig.read(out / spec.config_filename)
        config.training.update(epochs_run=len(history), wall_time_s=round(time.time() - t0, 1))
        config.write(out / spec.config_filename)
    if distributed:
        dist.destroy_process_group()
    return out


def run_config(cfg: TrainConfig, spec: ModelSpec, val_probs: np.ndarray, val_recs: list[Record],
               history: list, t0: float) -> CheckpointConfig:
    """What goes into <task>.json beside the weights (diachestxr.config)."""
    config = CheckpointConfig.for_spec(
        spec, validation=history[-1],
        training={"command": command_line(cfg), "config": dataclasses.asdict(cfg),
                  "epochs_run": len(history), "best_epoch": history[-1]["epoch"],
                  "wall_time_s": round(time.time() - t0, 1)})
    if spec.multilabel:
        targets = np.stack([r.target for r in val_recs])
        # Per-label operating points chosen on validation; `diagnose` uses them.
        config.thresholds = operating_points(targets, val_probs, spec.labels)
        config.operating_point = OPERATING_POINT
    return config


def command_line(cfg: TrainConfig) -> str:
    """The command that reproduces `cfg` (its non-default fields), also when called from Python."""
    defaults = TrainConfig()
    args = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name == "notes" or (value == getattr(defaults, f.name) and f.name not in ("task", "data")):
            continue
        flag = f"--{f.name.replace('_', '-')}"
        args.append(flag if isinstance(value, bool) else f"{flag} {value}")
    return "python -m training.train " + " ".join(args)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "notes":
            continue
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="store_true")
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default)
    return TrainConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_args(argv)
    print(train(cfg))


if __name__ == "__main__":
    main()
