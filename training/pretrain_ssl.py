"""Self-supervised pre-training of a backbone on unlabelled chest X-rays (SimCLR). Read top to bottom.

    python -m training.pretrain_ssl --data ../shared/data --minutes 60 --out runs/ssl
    python -m training.train --task diagnosis --init runs/ssl ...   # then fine-tune

Every train-split radiograph of both tasks (no val or test image, no label) is seen as two
random views; the network learns to tell the two views of one radiograph from the views of
every other radiograph in the batch (NT-Xent loss, Chen et al. 2020). Unlike supervised
pre-training on the screening labels, nothing here can teach "children's radiographs are
Pneumonia": there is no label to confound with age.

Writes <out>/diagnosis.safetensors holding the backbone (`features.*`; `--init` takes the
tensors whose names and shapes match) after each epoch, `state.pt` to continue (`--resume`),
and metrics.jsonl with the loss and the contrastive accuracy (how often a view's nearest
neighbour in the batch is its twin) per epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from diachestxr.models import build_model
from diachestxr.registry import get_spec
from diachestxr.transforms import TRAIN_CACHE_SCALE, train_transform
from diachestxr.config import CheckpointConfig
from diachestxr.weights import save_checkpoint

from .data import load_images, read_labels_csv
from .train import use_bf16

log = logging.getLogger("training.ssl")


def unlabelled_pool(data_root: Path) -> list:
    """The train-split records of both tasks' labels.csv (their labels are never used)."""
    return [r for task in ("screening", "diagnosis")
            for r in read_labels_csv(data_root / task / "labels.csv", task, "train")]


class SimCLR(nn.Module):
    """The classifier's backbone + a projection MLP (thrown away after pre-training)."""

    def __init__(self, backbone: nn.Module, width: int = 1024, dim: int = 128) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = nn.Sequential(nn.Linear(width, 512), nn.BatchNorm1d(512),
                                       nn.ReLU(), nn.Linear(512, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone.embed(x))


def nt_xent(z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, float]:
    """z: (2B, D), rows i and i+B are the two views of one image. Returns (loss, accuracy)."""
    z = F.normalize(z.float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))  # a view is not its own positive
    n = len(z) // 2
    twin = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, twin), (sim.argmax(1) == twin).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/ssl"))
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="images; 2 views each")
    parser.add_argument("--epochs", type=int, default=20, help="the cosine schedule's length")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long (0: never)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=0, help="use only N images (smoke tests)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--cache-dir", default=".cache/images")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.manual_seed(args.seed)

    # The spec of the model this backbone will start: the diagnosis DenseNet121.
    spec = dataclasses.replace(get_spec("diagnosis"), input_size=args.input_size)
    records = unlabelled_pool(args.data)[:args.limit or None]
    images = load_images(records, round(spec.input_size * TRAIN_CACHE_SCALE), args.cache_dir)
    view = train_transform(spec, "contrastive")
    log.info("%d unlabelled radiographs, %d px views", len(images), spec.input_size)

    bf16 = use_bf16(torch.device("cpu"), args.precision)
    model = SimCLR(build_model(spec)).to(memory_format=torch.channels_last if bf16
                                          else torch.contiguous_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = max(1, len(images) // args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = steps_per_epoch // 2 + 1
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    out, start = args.out, 0
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "state.pt"
    if args.resume and state_file.is_file():
        state = torch.load(state_file, weights_only=False)  # our own file
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["epoch"] + 1
        log.info("resumed at epoch %d", start + 1)

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    for epoch in range(start, args.epochs):
        model.train()
        order = rng.permutation(len(images))
        losses, accs = [], []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
        for step in bar:
            batch = [torch.from_numpy(images[i]).unsqueeze(0)
                     for i in order[step * args.batch_size:(step + 1) * args.batch_size]]
            x = torch.stack([view(img) for img in batch] + [view(img) for img in batch])
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                z = model(x)
            loss, acc = nt_xent(z, args.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item()), accs.append(acc)
            bar.set_postfix(loss=f"{np.mean(losses):.3f}", acc=f"{np.mean(accs):.2f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "accuracy": float(np.mean(accs)),
               "lr": scheduler.get_last_lr()[0], "elapsed_s": round(time.time() - t0, 1)}
        log.info("epoch %d: %s", epoch + 1, json.dumps(row))
        with (out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        record = {"pretraining": "SimCLR (self-supervised)", "images": len(images),
                  "config": settings, "epochs_run": epoch + 1, "last_epoch": row}
        save_checkpoint(model.backbone, CheckpointConfig.for_spec(spec, training=record), out, spec)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch}, state_file)
        if args.minutes and time.time() - t0 > args.minutes * 60:
            log.info("time budget of %.0f min spent after epoch %d", args.minutes, epoch + 1)
            break


if __name__ == "__main__":
    main()
