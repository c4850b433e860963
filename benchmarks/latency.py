"""Per-stage latency of screen/diagnose at batch 1 on real radiographs, as JSON.

    python benchmarks/latency.py [--weights DIR] [--runs 10] [--images ../shared/examples]

Stages: read (file -> canonical array), preprocess (array -> tensor), forward (bare model,
no gradients), gradcam (the batched forward+backward that gives probabilities and maps),
overlay (map -> original size -> heatmap image), end_to_end (Predictor.screen/diagnose).
Medians over --runs after one warm-up, cycling through the images; `overhead_vs_forward` is
end_to_end / forward, which is stable across machines where absolute times are not.
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

from diachestxr import Predictor, read_xray  # noqa: E402
from diachestxr.explain import RankedOutputTarget, overlay, resize_map  # noqa: E402
from diachestxr.transforms import eval_tensor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn, inputs, runs: int) -> float:
    fn(inputs[0])  # warm-up
    times = []
    for i in range(runs):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def bench_task(predictor: Predictor, task: str, files: list[Path], runs: int) -> dict:
    loaded = predictor.models[task]
    explainer = predictor._explainers[task]
    grays = [read_xray(f) for f in files]
    tensors = [eval_tensor(g, loaded.spec) for g in grays]
    targets = [RankedOutputTarget(r) for r in range(1 if task == "screening" else 3)]
    cams = [resize_map(explainer.run(t, targets)[1][0], *g.shape) for t, g in zip(tensors, grays)]

    def forward(t):
        with torch.no_grad():
            loaded.model(t.unsqueeze(0))

    call = predictor.screen if task == "screening" else predictor.diagnose
    stages = {
        "read": median_ms(read_xray, files, runs),
        "preprocess": median_ms(lambda g: eval_tensor(g, loaded.spec), grays, runs),
        "forward": median_ms(forward, tensors, runs),
        "gradcam": median_ms(lambda t: explainer.run(t, targets), tensors, runs),
        "overlay": median_ms(lambda gc: overlay(gc[0], resize_map(gc[1], *gc[0].shape)),
                             list(zip(grays, cams)), runs),
        "end_to_end": median_ms(call, files, runs),
    }
    stages["maps_per_call"] = len(targets)
    stages["overhead_vs_forward"] = round(stages["end_to_end"] / stages["forward"], 2)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "examples")
    args = parser.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".dcm"))
    if not files:
        raise SystemExit(f"no images in {args.images}")
    with Predictor(weights_dir=args.weights) as predictor:
        result = {"machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                              "device": str(predictor.device), "python": platform.python_version(),
                              "torch": torch.__version__},
                  "images": len(files), "runs": args.runs, "unit": "ms (median)",
                  **{task: bench_task(predictor, task, files, args.runs) for task in predictor.models}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
