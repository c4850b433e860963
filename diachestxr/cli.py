"""`python -m diachestxr predict|evaluate|info`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .io import ImageReadError
from .registry import DEFAULT_MAP_METHOD, MAP_METHODS, TASKS
from .weights import WeightsError

EXIT_USER_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diachestxr", description=(
        "Chest X-ray screening and diagnosis with Grad-CAM. Research demo, not for clinical use."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and weight resolution")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="predict one or more images")
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or DICOM files")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--cam-dir", type=Path, help="write one Grad-CAM overlay PNG per image here")
    p.add_argument("--weights", help="a folder with <task>.safetensors + <task>.json")
    p.add_argument("--threshold", type=float, help="diagnosis: one threshold for every label "
                   "(default: the checkpoint's calibrated per-label thresholds)")
    p.add_argument("--cam-method", default=DEFAULT_MAP_METHOD, choices=MAP_METHODS,
                   help=f"the map method for --cam-dir (default: {DEFAULT_MAP_METHOD})")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")

    e = sub.add_parser("evaluate", help="metrics over a labelled CSV (metrics.json, ROC/confusion PNGs)")
    e.add_argument("--task", choices=TASKS, required=True)
    e.add_argument("--csv", type=Path, required=True, help="labels.csv (paths relative to its folder)")
    e.add_argument("--split", help="only rows whose split column has this value")
    e.add_argument("--weights", help="a folder with <task>.safetensors + <task>.json")
    e.add_argument("--out", type=Path, default=Path("metrics.json"))
    e.add_argument("--plots-dir", type=Path, help="where the PNG plots go (default: beside --out)")

    i = sub.add_parser("info", help="which weights each task resolves to, and their model card")
    i.add_argument("--weights", help="a folder with <task>.safetensors + <task>.json")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "predict":
            return predict(args)
        if args.command == "evaluate":
            from .evaluate import evaluate_csv
            metrics = evaluate_csv(args.task, args.csv, split=args.split, weights_dir=args.weights,
                                   out=args.out, plots_dir=args.plots_dir)
            print(json.dumps(metrics, indent=2))
            return 0
        from .inference import Predictor
        with Predictor(weights_dir=args.weights) as predictor:
            print(json.dumps({t: predictor.info(t) for t in predictor.models}, indent=2))
        return 0
    except (WeightsError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


def predict(args: argparse.Namespace) -> int:
    from .inference import Predictor
    from .io import read_xray

    predictor = Predictor(tasks=[args.task], weights_dir=args.weights)
    if args.cam_dir:
        args.cam_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for start in range(0, len(args.images), args.batch_size):
        paths = args.images[start:start + args.batch_size]
        images: dict[str, object] = {}
        for path in paths:  # read first: one bad file is reported, the others go on
            try:
                images[path] = read_xray(path)
            except ImageReadError as err:
                images[path] = err
        readable = [p for p in paths if not isinstance(images[p], ImageReadError)]
        results = dict(zip(readable, predictor.iter_predict(
            [images[p] for p in readable], args.task, thresholds=args.threshold,
            explain="default" if args.cam_dir else "none", method=args.cam_method)))
        for path in paths:
            if path in results:
                _print_result(args, path, results[path])
                continue
            status = EXIT_USER_ERROR
            if args.json:
                print(json.dumps({"file": path, "error": str(images[path])}), flush=True)
            else:
                print(f"{path}: error: {images[path]}", file=sys.stderr, flush=True)
    return status


def _print_result(args: argparse.Namespace, path: str, result) -> None:
    from PIL import Image

    record = {"file": path, **result.to_dict()}
    if args.task == "diagnosis":
        record.pop("thresholds")
    if args.cam_dir:
        label, explanation = next(iter(result.explanations.items()))
        cam_file = args.cam_dir / f"{Path(path).stem}.{args.task}.png"
        Image.fromarray(explanation.overlay).save(cam_file)
        record["cam"] = {"file": str(cam_file), "label": label, "method": args.cam_method}
    print(json.dumps(record) if args.json else _table(record), flush=True)


def _table(record: dict) -> str:
    lines = [record["file"]]
    if record["task"] == "screening":
        lines.append(f"  prediction: {record['label']}")
        lines += [f"  {label:<20} {p:6.1%}" for label, p in
                  sorted(record["confidences"].items(), key=lambda kv: -kv[1])]
    else:
        lines.append(f"  findings: {', '.join(record['findings']) or 'none above threshold'}")
        lines += [f"  {label:<20} {p:6.1%}{'  *' if label in record['findings'] else ''}"
                  for label, p in sorted(record["probabilities"].items(), key=lambda kv: -kv[1])]
    if "cam" in record:
        lines.append(f"  Grad-CAM ({record['cam']['label']}): {record['cam']['file']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
