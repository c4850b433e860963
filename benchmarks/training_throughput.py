"""Training-step throughput (images/s) of both models in fp32 and in bf16 autocast +
channels_last, as JSON: what `python -m training.train --precision fp32|bf16` costs here.

    python benchmarks/training_throughput.py [--steps 6] [--batch-size 16] [--sizes 224 160]

A step is forward + BCE/cross-entropy + backward + AdamW on random inputs (the data
pipeline is not measured). Median img/s over --steps timed steps after two warm-up steps;
`bf16_speedup` is the ratio, which holds across machines where img/s does not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diachestxr.models import build_model  # noqa: E402
from training.train import cpu_has_native_bf16  # noqa: E402


def images_per_s(task: str, size: int, batch: int, steps: int, bf16: bool) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = build_model(task).train().to(memory_format=fmt)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    n = len(model.spec.labels)
    y = torch.randint(0, 2, (batch, n)).float() if model.spec.multilabel else torch.randint(0, n, (batch,))
    loss_fn = torch.nn.BCEWithLogitsLoss() if model.spec.multilabel else torch.nn.CrossEntropyLoss()
    times = []
    for step in range(steps + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 160])
    args = parser.parse_args()
    report = {"benchmark": "training_throughput", "unit": "images/s (median step)",
              "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__,
                          "python": platform.python_version()},
              "batch_size": args.batch_size, "results": []}
    for task in ("diagnosis", "screening"):
        for size in args.sizes:
            fp32 = images_per_s(task, size, args.batch_size, args.steps, bf16=False)
            bf16 = images_per_s(task, size, args.batch_size, args.steps, bf16=True)
            report["results"].append({"model": build_model(task).spec.arch, "size": size,
                                      "fp32": round(fp32, 1), "bf16_channels_last": round(bf16, 1),
                                      "bf16_speedup": round(bf16 / fp32, 2)})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
