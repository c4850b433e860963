"""`diachestxr predict|evaluate|serve|info` (also `python -m diachestxr ...`).

Heavy imports (torch, pytorch-grad-cam) happen inside the commands that need them, so
`--help` and `--version` answer at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .io import printable, quiet_pydicom
from .registry import BATCH_SIZE, DEFAULT_MAP_METHOD, MAP_METHODS, PNG_COMPRESS_LEVEL, TASKS

EXIT_USER_ERROR = 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
PROGRESS_FROM = 10  # files: below this a progress bar is more noise than help
WEIGHTS_HELP = ("a folder with <task>.safetensors + <task>.json (default: DIACHESTXR_WEIGHTS_DIR, "
                "else the Hub, else the bundled checkpoint)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diachestxr", description=(
        "Chest X-ray screening (COVID-19 / Pneumonia / Normal) and NIH ChestX-ray14 diagnosis "
        "with Grad-CAM. Research demo, not for clinical use."))
    parser.add_argument("--version", action="version", version=f"diachestxr {__version__}")
    _add_loudness(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = (_predict_parser(sub), _evaluate_parser(sub), _serve_parser(sub), _info_parser(sub))
    for command in commands:
        _add_loudness(command, default=argparse.SUPPRESS)  # so a command does not reset them
    return parser


def _predict_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="predict images or folders of images",
                       description="Predict PNG, JPEG or DICOM chest X-rays; folders are searched "
                                   "recursively. One unreadable file is reported and the others "
                                   "go on (exit status 2 if any failed).")
    p.add_argument("--task", choices=TASKS, required=True,
                   help="screening (COVID-19 / Pneumonia / Normal) or diagnosis (14 NIH labels)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files or folders")
    p.add_argument("--sample", action="append", default=[], metavar="NAME",
                   help="a sample image bundled with the package, by its file name in "
                        "examples/manifest.csv (e.g. 4fed5061.jpg); may be repeated")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="also write every result to FILE: .csv (one row per image) or .jsonl")
    p.add_argument("--cam-dir", type=Path, metavar="DIR",
                   help="write one heatmap overlay PNG per image here")
    p.add_argument("--report-dir", type=Path, metavar="DIR",
                   help="write one PDF report per image here (radiograph, heatmaps, "
                        "probabilities, model and how far to trust it)")
    p.add_argument("--cam-method", default=DEFAULT_MAP_METHOD, choices=MAP_METHODS,
                   help=f"the map method for --cam-dir and --report-dir "
                        f"(default: {DEFAULT_MAP_METHOD})")
    p.add_argument("--weights", metavar="DIR", help=WEIGHTS_HELP)
    p.add_argument("--threshold", type=float, help="diagnosis: one threshold for every label "
                   "(default: the checkpoint's per-label operating points)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"images per forward pass (default: {BATCH_SIZE}, the fastest measured)")
    p.add_argument("--no-gate", action="store_true",
                   help="skip the radiograph check that refuses what is not a frontal chest "
                        "radiograph (for folders known to hold radiographs)")
    return p


def _evaluate_parser(sub) -> argparse.ArgumentParser:
    e = sub.add_parser("evaluate", help="metrics over a labelled CSV (metrics.json and plots)")
    e.add_argument("--task", choices=TASKS, required=True, help="the model to evaluate")
    e.add_argument("--csv", type=Path, required=True,
                   help="labels.csv with a path column (relative to its folder) and labels")
    e.add_argument("--split", help="only rows whose split column has this value (e.g. test)")
    e.add_argument("--weights", metavar="DIR", help=WEIGHTS_HELP)
    e.add_argument("--out", type=Path, default=Path("metrics.json"),
                   help="where metrics.json goes (default: ./metrics.json)")
    e.add_argument("--plots-dir", type=Path, help="where the PNG plots go (default: beside --out)")
    e.add_argument("--extra-adults", type=Path, metavar="DIAGNOSIS_CSV",
                   help="screening: also report metrics on adults, adding this NIH labels.csv's "
                        "rows of the same split (no finding: Normal, Pneumonia: Pneumonia, other "
                        "findings: not COVID-19)")
    return e


def _serve_parser(sub) -> argparse.ArgumentParser:
    s = sub.add_parser("serve", help="start the web app (needs the [app] extra: gradio)",
                       description="Serve the web app (the same as the repository's app.py): "
                                   "both tasks, their API endpoints /screen and /diagnose. "
                                   "Needs gradio: pip install \"diachestxr[app]\".")
    s.add_argument("--host", help="address to listen on (default: GRADIO_SERVER_NAME, else "
                                  "127.0.0.1; 0.0.0.0 listens on every interface)")
    s.add_argument("--port", type=int, help="port (default: GRADIO_SERVER_PORT, else 7860)")
    s.add_argument("--share", action="store_true",
                   help="also open a temporary public link through Gradio's share servers")
    s.add_argument("--weights", metavar="DIR", help=WEIGHTS_HELP)
    return s


def _info_parser(sub) -> argparse.ArgumentParser:
    i = sub.add_parser("info", help="which weights each task uses, with their headline metrics")
    i.add_argument("--weights", metavar="DIR", help=WEIGHTS_HELP)
    i.add_argument("--json", action="store_true", help="the full record, model cards included")
    return i


def _add_loudness(parser: argparse.ArgumentParser, default) -> None:
    """-v/-q, accepted before or after the command."""
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", default=default,
                      help="log progress and where the weights come from")
    loud.add_argument("-q", "--quiet", action="store_true", default=default,
                      help="errors only, no progress bars")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    quiet_pydicom(verbose=args.verbose)
    try:
        return {"predict": predict, "evaluate": evaluate, "serve": serve,
                "info": info}[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RuntimeError as err:
        from .weights import WeightsError  # loaded by every command by now

        if not isinstance(err, WeightsError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


# ------------------------------------------------------------------------------ predict
def expand_inputs(items: list[str]) -> list[str]:
    """Files as given; folders replaced by the image files under them (sorted)."""
    files = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{item}: no PNG, JPEG or DICOM files in this folder")
            files += found
        else:
            files.append(item)
    return files


def sample_files(names: list[str]) -> list[str]:
    """--sample: the bundled sample images' paths (an unknown name: ValueError naming them all)."""
    from .examples import sample_path

    return [str(sample_path(name)) for name in names]


def predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import predict_files
    from .inference import Predictor

    if args.out and args.out.suffix.lower() not in (".csv", ".jsonl"):
        raise ValueError(f"--out {args.out}: use a .csv or .jsonl file name")
    files = expand_inputs(args.images) + sample_files(args.sample)
    if not files:
        raise ValueError("predict: give IMAGE files or folders, or --sample NAME "
                         "(a bundled sample image)")
    missing = [f for f in files if not Path(f).is_file()]
    if len(missing) == len(files):  # nothing to read: say so before loading a model
        for f in missing:
            print(f"{printable(f, limit=1000)}: error: no such file", file=sys.stderr)
        return EXIT_USER_ERROR
    # a refused image becomes its file's error (batch.predict_files), the others go on
    predictor = Predictor(tasks=[args.task], weights_dir=args.weights,
                          gate="off" if args.no_gate else "refuse")
    for folder in (args.cam_dir, args.report_dir):
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
    model_info = predictor.info(args.task) if args.report_dir else None  # the same for every report
    records, status = [], 0
    bar = tqdm(total=len(files), unit="img", desc=args.task,
               disable=args.quiet or len(files) < PROGRESS_FROM)
    options = dict(thresholds=args.threshold, method=args.cam_method,
                   explain="default" if args.cam_dir or args.report_dir else "none")
    for path, outcome in predict_files(predictor, files, args.task,
                                       batch_size=args.batch_size, **options):
        if isinstance(outcome, Exception):
            status = EXIT_USER_ERROR
            record = {"file": path, "error": str(outcome)}
        else:
            record = _record(args, path, outcome, model_info)
        records.append(record)
        if args.json:
            bar.write(json.dumps(record), file=sys.stdout)
        elif "error" in record:
            bar.write(f"{printable(path, limit=1000)}: error: {record['error']}", file=sys.stderr)
        else:
            bar.write(_table(record), file=sys.stdout)
        bar.update(1)
    bar.close()
    if args.out:
        _write_records(args.out, records, args.task)
    return status


def _record(args: argparse.Namespace, path: str, result, model_info: dict | None = None) -> dict:
    from PIL import Image

    record = {"file": path, **result.to_dict()}
    if args.report_dir:  # before thresholds leave the record: the report prints them
        from .report import write_report

        report_file = args.report_dir / f"{Path(path).stem}.{args.task}.pdf"
        # the user's own file: its name may appear in the report (the web app passes none)
        write_report(report_file, {**record, "method": args.cam_method}, result.image,
                     {label: e.cam for label, e in result.explanations.items()}, model_info,
                     name=Path(path).name)
        record["report"] = str(report_file)
    if args.task == "diagnosis":
        record.pop("thresholds")
    if args.cam_dir:
        label, explanation = next(iter(result.explanations.items()))
        cam_file = args.cam_dir / f"{Path(path).stem}.{args.task}.png"
        Image.fromarray(explanation.overlay).save(cam_file, compress_level=PNG_COMPRESS_LEVEL)
        record["cam"] = {"file": str(cam_file), "label": label, "method": args.cam_method}
    return record


def _write_records(out: Path, records: list[dict], task: str) -> None:
    """.jsonl: the records as printed by --json; .csv: one row per image (diachestxr.batch)."""
    if out.suffix.lower() == ".jsonl":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        from .batch import write_csv

        write_csv(out, records, task)


def _table(record: dict) -> str:
    lines = [printable(record["file"], limit=1000)]  # a file name may hold terminal escapes
    if record["task"] == "screening":
        lines.append(f"  prediction: {record['label']}")
        lines += [f"  {label:<20} {p:6.1%}" for label, p in
                  sorted(record["confidences"].items(), key=lambda kv: -kv[1])]
    else:
        lines.append(f"  findings: {', '.join(record['findings']) or 'none above threshold'}")
        lines += [f"  {label:<20} {p:6.1%}{'  *' if label in record['findings'] else ''}"
                  for label, p in sorted(record["probabilities"].items(), key=lambda kv: -kv[1])]
    if "radiograph_check" in record:
        check = record["radiograph_check"]
        lines.append(f"  radiograph check: score {check['score']:.2f} "
                     f"(accepted from {check['threshold']:.2f})")
    if "cam" in record:
        lines.append(f"  heatmap ({record['cam']['label']}, {record['cam']['method']}): "
                     f"{record['cam']['file']}")
    if "report" in record:
        lines.append(f"  report: {record['report']}")
    return "\n".join(lines)


# --------------------------------------------------------------------- serve, evaluate, info
def serve(args: argparse.Namespace) -> int:
    from .web import MissingExtraError, build_demo, launch

    try:
        demo = build_demo(weights_dir=args.weights)
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    launch(demo, host=args.host, port=args.port, share=args.share)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_csv

    if args.extra_adults and args.task != "screening":
        raise ValueError("--extra-adults only applies to --task screening")
    metrics = evaluate_csv(args.task, args.csv, split=args.split, weights_dir=args.weights,
                           out=args.out, plots_dir=args.plots_dir, extra_adults=args.extra_adults,
                           progress=not args.quiet)
    print(json.dumps(metrics, indent=2))
    return 0


def info(args: argparse.Namespace) -> int:
    from .inference import Predictor

    predictor = Predictor(weights_dir=args.weights)
    records = {t: predictor.info(t) for t in predictor.models}
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for task, r in records.items():
        headline = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in r["headline_metrics"].items() if v is not None)
        print(f"{task}: {r['arch']}, {len(r['labels'])} labels, weights from {r['source']} "
              f"({r['location']}), checkpoint {r['checkpoint_sha256']}")
        for line in r["outlook"]:  # how far to trust it: a stranger's film first
            print(f"  {line}")
        print(f"  test split: {headline or 'no metrics recorded'}")
    print(f"diachestxr {__version__}; the full record: diachestxr info --json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
