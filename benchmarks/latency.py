"""Latency of screen/diagnose at batch 1 on real radiographs, against the bare forward pass
measured in the same run, as JSON.

    python benchmarks/latency.py [--weights DIR] [--runs 15] [--images ../shared/examples]

Per task: read (file -> canonical array), preprocess (array -> tensor), forward (the bare
model, no gradients: the floor), predict_no_maps / predict_default / predict_all_maps
(Predictor.predict on an array: probabilities plus 0, the default and every class's map,
overlays excluded), overlay (one map drawn at display size), end_to_end (screen/diagnose
from the file, the default maps and their overlays). Medians over --runs after a warm-up,
cycling through the images; the `*_vs_forward` ratios are stable across machines where
milliseconds are not. `bf16` measures bf16 autocast on the forward pass: its speed-up and
its largest probability error (not adopted: it changes results beyond 1e-5). `onnxruntime`
measures the bare forward exported to ONNX and run by ONNX Runtime, when it is installed
(`pip install onnx onnxruntime`; not a dependency of the package).
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diachestxr import Predictor, read_xray  # noqa: E402
from diachestxr.explain import overlay  # noqa: E402
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
    model = predictor.models[task].model
    spec = model.spec
    grays = [read_xray(f) for f in files]
    tensors = [eval_tensor(g, spec).unsqueeze(0).contiguous(memory_format=torch.channels_last)
               for g in grays]

    def forward(t, bf16=False):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(t)

    def predict(explain):
        return lambda g: predictor.predict([g], task, explain=explain)

    explanations = [next(iter(r.explanations.values())) for r in predictor.predict(grays, task)]
    call = predictor.screen if task == "screening" else predictor.diagnose
    stages = {
        "read": median_ms(read_xray, files, runs),
        "preprocess": median_ms(lambda g: eval_tensor(g, spec), grays, runs),
        "forward": median_ms(forward, tensors, runs),
        "predict_no_maps": median_ms(predict("none"), grays, runs),
        "predict_default": median_ms(predict("default"), grays, runs),
        "predict_all_maps": median_ms(predict("all"), grays, runs),
        "overlay": median_ms(lambda e: overlay(e.image, e.cam), explanations, runs),
        "end_to_end": median_ms(lambda f: [e.overlay for e in call(f).explanations.values()], files, runs),
    }
    stages["maps"] = {"default": 1 if task == "screening" else 3, "all": len(spec.labels)}
    for key in ("predict_default", "predict_all_maps", "end_to_end"):
        stages[f"{key}_vs_forward"] = round(stages[key] / stages["forward"], 2)
    # bf16 autocast: speed and error against fp32, on the same tensors
    with torch.no_grad():
        fp32 = [forward(t).float() for t in tensors]
        bf16 = [forward(t, bf16=True).float() for t in tensors]
    act = (lambda z: torch.sigmoid(z)) if spec.multilabel else (lambda z: z.softmax(1))
    errors = [float((act(a) - act(b)).abs().max()) for a, b in zip(fp32, bf16)]
    stages["bf16"] = {"forward": median_ms(lambda t: forward(t, bf16=True), tensors, runs),
                      "max_probability_error": round(max(errors), 5),
                      "median_probability_error": round(float(np.median(errors)), 5)}
    stages["bf16"]["speedup"] = round(stages["forward"] / stages["bf16"]["forward"], 2)
    stages["onnxruntime"] = onnx_forward(model, tensors, fp32, act, runs)
    return stages


def onnx_forward(model, tensors, reference, act, runs: int) -> dict | str:
    """The bare forward through ONNX Runtime (CPU), its speed-up and its probability error."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "not installed (pip install onnx onnxruntime)"
    import io

    buffer = io.BytesIO()
    torch.onnx.export(model, (tensors[0].contiguous(),), buffer, input_names=["x"],
                      output_names=["logits"], dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    inputs = [t.contiguous().numpy() for t in tensors]
    run = lambda x: session.run(None, {"x": x})[0]  # noqa: E731
    errors = [float((act(torch.from_numpy(run(x))) - act(r)).abs().max())
              for x, r in zip(inputs, reference)]
    return {"forward": median_ms(run, inputs, runs), "max_probability_error": max(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "examples")
    args = parser.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".dcm"))
    if not files:
        raise SystemExit(f"no images in {args.images}")
    predictor = Predictor(weights_dir=args.weights)
    result = {"machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "device": str(predictor.device), "python": platform.python_version(),
                          "torch": torch.__version__},
              "images": len(files), "runs": args.runs, "unit": "ms (median)",
              **{task: bench_task(predictor, task, files, args.runs) for task in predictor.models}}
    for task in predictor.models:
        onnx = result[task]["onnxruntime"]
        if isinstance(onnx, dict):
            onnx["speedup"] = round(result[task]["forward"] / onnx["forward"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
