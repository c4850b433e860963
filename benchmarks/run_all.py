"""Every benchmark in one run, on a quiet machine: the source of every figure in
docs/benchmarks.md.

    python benchmarks/run_all.py [--max-load 0.6] [--wait 900] [--against OLD_CHECKOUT]
                                 [--only latency,batch_size] [--write]

It waits until the 1-minute load average is at or below --max-load (at most --wait seconds;
the load is recorded either way), then runs each benchmark script in its own process, one
after the other, and records its JSON, wall time and the load before and after it. With
--write it saves docs/benchmarks.json (everything) and rewrites the block of
docs/benchmarks.md between the `benchmarks:start` / `benchmarks:end` markers (the summary and
every table; the page's hand-written text around the block stays).
--against gives cli_startup an older checkout to measure in the same run (ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = {  # name: arguments (the slow ones with fewer repetitions than their defaults)
    "latency": ["--runs", "15"],
    "batch_size": ["--rounds", "5"],
    "cli_startup": ["--runs", "5"],
    "training_throughput": ["--steps", "6"],
    "weights_load": ["--runs", "3"],
    "app_latency": ["--calls", "15", "--trivial", "--profile"],
    "report": ["--runs", "7"],
    "memory": ["--sessions", "20"],
    "result_storage": ["--stored", "50000", "--repeats", "5"],
}


def wait_for_quiet(max_load: float, wait_s: float) -> dict:
    t0 = time.monotonic()
    while os.getloadavg()[0] > max_load and time.monotonic() - t0 < wait_s:
        time.sleep(10)
    load = os.getloadavg()[0]
    return {"waited_s": round(time.monotonic() - t0), "load_1min": round(load, 2),
            "quiet": load <= max_load}


def run(name: str, args: list[str]) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
                          cwd=ROOT, capture_output=True, text=True)
    record = {"command": f"python benchmarks/{name}.py {' '.join(args)}".strip(),
              "wall_s": round(time.perf_counter() - t0, 1), "load_before": round(load, 2),
              "load_after": round(os.getloadavg()[0], 2)}
    if proc.returncode != 0:
        return {**record, "error": proc.stderr[-2000:]}
    text = proc.stdout
    return {**record, "result": json.loads(text[text.index("{"):])}


def get(data: dict, *keys, default=None):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def summary_rows(results: dict) -> list[tuple[str, str]]:
    """The summary table's figures, each read from this run's results."""
    rows = []
    lat = get(results, "latency", "result") or {}
    for task, maps in (("screening", "1 / 3"), ("diagnosis", "3 / 14")):
        t = lat.get(task) or {}
        if t:
            rows.append((f"{task}: bare forward; predict with default / all maps ({maps} maps)",
                         f"{t['forward']} ms; {t['predict_default_vs_forward']}x / "
                         f"{t['predict_all_maps_vs_forward']}x the forward"))
            rows.append((f"{task}: bf16 autocast forward (not adopted)",
                         f"{t['bf16']['speedup']}x faster, probabilities move up to "
                         f"{t['bf16']['max_probability_error']}"))
    batch = get(results, "batch_size", "result") or {}
    if batch:
        size, img, ratio = batch["default_batch_size"], batch["img_per_s"], batch["vs_batch_32"]
        for maps in ("none", "all"):
            ours, old = f"{maps} maps, batch {size}", f"{maps} maps, batch 32"
            rows.append((f"Predictor.predict, {batch['images']} diagnosis images, "
                         f"{'no' if maps == 'none' else 'all'} maps: "
                         f"batch {size} (default) against 32",
                         f"{img[ours]} against {img[old]} img/s ({ratio[ours]}x)"))
    cli = get(results, "cli_startup", "result") or {}
    for case in ("--help", "predict diagnosis, 1 image"):
        if isinstance(row := cli.get(case), dict) and isinstance(row.get("repo"), dict):
            text = f"{row['repo']['median_s']} s"
            if "ratio" in row:
                text += f" ({row['ratio']}x the older checkout's {row['against']['median_s']} s)"
            rows.append((f"`diachestxr {case}` (fresh process)", text))
    for r in get(results, "training_throughput", "result", "results", default=[]):
        rows.append((f"training step, {r['model']} at {r['size']} px: fp32 → bf16 + channels_last",
                     f"{r['fp32']} → {r['bf16_channels_last']} img/s ({r['bf16_speedup']}x)"))
    app = get(results, "app_latency", "result") or {}
    ours, floor = get(app, "runs", "repo") or app, get(app, "runs", "against") or {}
    if ours:
        ratio = app.get("ratios", {})

        def versus(key: str, ours_value, floor_value) -> str:  # "0.16 s (1.28x the trivial app's 0.13 s)"
            return (f"{ours_value} ({ratio[key]}x the trivial app's {floor_value})"
                    if key in ratio else str(ours_value))
        for e, v in ours.get("endpoints", {}).items():
            rows.append((f"app through gradio_client: {e} median",
                         versus(f"{e} median", f"{v['median_s']} s",
                                f"{get(floor, 'endpoints', e, 'median_s')} s")))
        if thr := ours.get("throughput"):
            rows.append((f"app, {thr.get('clients', 8)} concurrent /screen clients",
                         versus("answers per s", f"{thr.get('answers_per_s')} answers/s",
                                f"{get(floor, 'throughput', 'answers_per_s')}")
                         + f", {thr.get('failures')} failed"))
        rows.append(("app: start to first /screen answer",
                     versus("first answer", f"{ours.get('first_answer_s')} s",
                            f"{floor.get('first_answer_s')} s")))
    wl = get(results, "weights_load", "result") or {}
    if wl.get("offline"):
        rows.append(("loading both models: HF_HUB_OFFLINE=1 / Hub unreachable (timeouts)",
                     f"{wl['offline']['load_s']} s / "
                     f"{get(wl, 'unreachable (connect timeout)', 'load_s')} s"))
    mem = get(results, "memory", "result") or {}
    if mem.get("cli_worst_peak_mb") is not None:
        rows.append(("peak RSS, worst hostile file: CLI / one server request above baseline",
                     f"{mem['cli_worst_peak_mb']} MB / +{mem.get('server_worst_request_mb')} MB"))
    store = get(results, "result_storage", "result") or {}
    if store.get("ratio_full_over_empty") is not None:
        ms = store["ms_per_result_file"]
        rows.append((f"one result file with {store['stored']:,} stored results against none",
                     f"{ms['full']} against {ms['empty']} ms ({store['ratio_full_over_empty']}x)"))
    return rows


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"Generated by `python benchmarks/run_all.py --write` on {report['date']} "
             f"(commit {report['commit']}), {env['cpu']} with {env['cores']} cores, "
             f"Python {env['python']}, torch {env['torch']}. Load before: "
             f"{report['quiet']['load_1min']} (waited {report['quiet']['waited_s']} s for <= "
             f"{report['max_load']}). Raw results: `docs/benchmarks.json`.", "",
             "| figure | measured |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(report["benchmarks"])]
    for name, record in report["benchmarks"].items():
        lines += ["", f"### {name}", "", f"`{record['command']}`: {record['wall_s']} s, load "
                  f"{record['load_before']} → {record['load_after']}", ""]
        if "error" in record:
            lines += ["Failed:", "", "```", record["error"].strip(), "```"]
            continue
        lines += ["| key | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in flatten(record["result"])]
    return "\n".join(lines) + "\n"


def flatten(data, prefix: str = ""):
    """(path, value) rows of a nested JSON value; long texts (logs) are cut."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from flatten(value, f"{prefix} / {key}" if prefix else str(key))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            yield from flatten(value, f"{prefix} / {i}")
    else:
        yield prefix, str(data).replace("|", "\\|").replace("\n", " ")[:200]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-load", type=float, default=0.6)
    parser.add_argument("--wait", type=float, default=900)
    parser.add_argument("--against", type=Path, help="an older checkout for cli_startup")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    import torch

    names = args.only.split(",") if args.only else list(BENCHMARKS)
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       capture_output=True, text=True).stdout.strip(),
              "environment": {"cpu": platform.processor() or platform.machine(),
                              "cores": os.cpu_count(), "python": platform.python_version(),
                              "torch": torch.__version__},
              "max_load": args.max_load, "quiet": wait_for_quiet(args.max_load, args.wait),
              "benchmarks": {}}
    for name in names:
        extra = ["--against", str(args.against)] if name == "cli_startup" and args.against else []
        report["benchmarks"][name] = run(name, BENCHMARKS[name] + extra)
        print(f"{name}: {report['benchmarks'][name]['wall_s']} s", file=sys.stderr)
    if args.write:
        (ROOT / "docs" / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
        page = ROOT / "docs" / "benchmarks.md"
        text, n = re.subn(r"(<!-- benchmarks:start -->\n).*?(\n<!-- benchmarks:end -->)",
                          lambda m: m.group(1) + markdown(report).rstrip("\n") + m.group(2),
                          page.read_text(), flags=re.S)
        if n != 1:
            raise SystemExit(f"{page}: no benchmarks:start / benchmarks:end block to rewrite")
        page.write_text(text)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
