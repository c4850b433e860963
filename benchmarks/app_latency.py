"""End-to-end latency and throughput of the web app's API, through gradio_client, as JSON.

    python benchmarks/app_latency.py [--random | --weights DIR] [--calls 10] [--warmup 2]
                                     [--clients 8] [--images ../shared/examples]

Starts `python app.py` on a free port (with random weights, a weights folder, or whatever the
app resolves by itself: Hub or bundled) and reports:
- cold start: launch -> the server answers, and launch -> the first /screen result;
- /screen and /diagnose called one at a time, cycling through the images: median / p90 in
  seconds (what an API user waits for: upload, queue, read, model + maps, PNG, download);
- throughput: --clients clients calling /screen at once, answers per second and failures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = ("/screen", "/diagnose")
STARTUP_TIMEOUT_S = 240


def random_weights(out: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.checkpoints import write_random_checkpoints

    return write_random_checkpoints(out)


def start_app(weights: Path | None, log_path: Path) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "DIACHESTXR_EXAMPLES_DOWNLOAD": "0"}
    if weights is not None:
        env["DIACHESTXR_WEIGHTS_DIR"] = str(weights)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    while True:
        if proc.poll() is not None:
            sys.exit(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5):
                return proc, url, time.perf_counter() - t0
        except OSError:
            if time.perf_counter() - t0 > STARTUP_TIMEOUT_S:
                proc.kill()
                sys.exit(f"app.py did not answer within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.5)


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"calls": len(times), "median_s": round(statistics.median(times), 3),
            "p90_s": round(p90, 3), "min_s": round(ordered[0], 3), "max_s": round(ordered[-1], 3)}


def throughput(url: str, images: list[Path], clients: int, calls: int) -> dict:
    """`clients` threads, each with its own Client, each making `calls` /screen calls."""
    from gradio_client import Client, handle_file

    connected = [Client(url, verbose=False) for _ in range(clients)]
    failures, done = [], []
    start = threading.Barrier(clients + 1)

    def work(i: int, client) -> None:
        start.wait()
        for j in range(calls):
            try:
                client.predict(handle_file(str(images[(i + j) % len(images)])), api_name="/screen")
                done.append(1)
            except Exception as e:  # noqa: BLE001 -- counted and reported, not raised
                failures.append(repr(e)[:200])

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(connected)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"endpoint": "/screen", "clients": clients, "answers": len(done),
            "failures": len(failures), "first_failure": failures[0] if failures else None,
            "seconds": round(elapsed, 2), "answers_per_s": round(len(done) / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--random", action="store_true", help="random weights (plumbing speed)")
    which.add_argument("--weights", type=Path, help="a folder with <task>.safetensors + .json")
    parser.add_argument("--calls", type=int, default=10, help="timed calls per endpoint")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per endpoint first")
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent /screen clients for the throughput run (0: skip it)")
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "examples")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    images = sorted(p for p in args.images.iterdir()
                    if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".dcm"))
    if not images:
        sys.exit(f"no images in {args.images}")
    with tempfile.TemporaryDirectory(prefix="app-latency-") as tmp:
        weights = random_weights(Path(tmp) / "weights") if args.random else args.weights
        launched = time.perf_counter()
        proc, url, startup_s = start_app(weights, Path(tmp) / "app.log")
        try:
            client = Client(url, verbose=False)
            client.predict(handle_file(str(images[0])), api_name="/screen")
            first_answer_s = time.perf_counter() - launched
            report = {"benchmark": "app_latency", "url": url, "startup_s": round(startup_s, 1),
                      "first_answer_s": round(first_answer_s, 1),
                      "weights": "random" if args.random else str(args.weights or "app default"),
                      "images": str(args.images), "warmup_calls": args.warmup,
                      "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                  "platform": platform.platform()},
                      "endpoints": {}}
            for endpoint in ENDPOINTS:
                for i in range(args.warmup):
                    client.predict(handle_file(str(images[i % len(images)])), api_name=endpoint)
                times = []
                for i in range(args.calls):
                    t0 = time.perf_counter()
                    result, *_ = client.predict(handle_file(str(images[i % len(images)])),
                                                api_name=endpoint)
                    times.append(time.perf_counter() - t0)
                report["endpoints"][endpoint] = summary(times)
                report.setdefault("model", {})[endpoint] = result["model"]
            if args.clients:
                report["throughput"] = throughput(url, images, args.clients, args.calls)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
