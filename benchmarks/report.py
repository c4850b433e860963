"""Time to write the PDF report of one result (diachestxr.report.write_report), as JSON.

    python benchmarks/report.py [--weights DIR] [--runs 7]

Per task, on a sample image and the result the app would hold (screening: all three maps;
diagnosis: the default top-ranked maps): the median wall time and CPU time of --runs reports
after a warm-up (the first report in a process also imports matplotlib's PDF backend and
builds its font cache: reported apart as first_s), and the PDF's size. The model's own time is
not included: the report is drawn from a result already in memory. Goal (issue: a report to
take away): under 2 s per image on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diachestxr import Predictor  # noqa: E402
from diachestxr.examples import sample_path  # noqa: E402
from diachestxr.report import write_report  # noqa: E402

SAMPLES = {"screening": "4fed5061.jpg", "diagnosis": "00001968_000.jpg"}


def bench_task(predictor: Predictor, task: str, runs: int, out: Path) -> dict:
    result = predictor.predict([sample_path(SAMPLES[task])], task,
                               explain="all" if task == "screening" else "default")[0]
    args = ({**result.to_dict(), "method": "gradcam"}, result.image,
            {label: e.cam for label, e in result.explanations.items()}, predictor.info(task))
    path = out / f"{task}.pdf"
    t0 = time.perf_counter()
    write_report(path, *args)
    first = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        write_report(path, *args)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"sample": SAMPLES[task], "first_s": round(first, 3),
            "median_wall_s": round(statistics.median(wall), 3),
            "median_cpu_s": round(statistics.median(cpu), 3),
            "max_wall_s": round(max(wall), 3), "pdf_kb": round(path.stat().st_size / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="checkpoint folder (default: the usual resolution)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    predictor = Predictor(weights_dir=args.weights, gate="off")
    with tempfile.TemporaryDirectory() as tmp:
        tasks = {task: bench_task(predictor, task, args.runs, Path(tmp)) for task in SAMPLES}
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
                      "runs": args.runs, "tasks": tasks}, indent=2))


if __name__ == "__main__":
    main()
