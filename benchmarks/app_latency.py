"""End-to-end latency and throughput of the web app's API, through gradio_client, as JSON.

    python benchmarks/app_latency.py [--random | --weights DIR] [--calls 10] [--warmup 2]
                                     [--clients 8] [--images ../shared/examples]
                                     [--repo PATH] [--against PATH]

Starts `python app.py` on a free port (with random weights, a weights folder, or whatever the
app resolves by itself: Hub or bundled) and reports:
- cold start: launch -> the server answers, and launch -> the first /screen result;
- /screen and /diagnose called one at a time, cycling through the images: median / p90 in
  seconds (what an API user waits for: upload, queue, read, model + maps, PNG, download);
- throughput: --clients clients calling /screen at once, answers per second and failures.

--repo runs another checkout's app.py (e.g. a `git worktree` of an older commit) with this
interpreter; --against starts a second checkout's app as well and measures both in one run:
the servers start one after the other, the timed calls alternate between them call by call
(who goes first alternates too), so a noisy machine slows both alike; the report adds the
ratios of the medians (repo / against).
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


TRIVIAL = "trivial"  # --trivial: the second server is benchmarks/trivial_app.py


def start_app(weights: Path | None, log_path: Path,
              repo: Path | str = ROOT) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "DIACHESTXR_EXAMPLES_DOWNLOAD": "0"}
    if weights is not None:
        env["DIACHESTXR_WEIGHTS_DIR"] = str(weights)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    command = ([sys.executable, str(ROOT / "benchmarks" / "trivial_app.py")] if repo == TRIVIAL
               else [sys.executable, "app.py"])
    env["PYTHONPATH"] = str(ROOT)  # the trivial app takes the queue settings from the package
    proc = subprocess.Popen(command, cwd=ROOT if repo == TRIVIAL else repo, env=env,
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


def cold_start(weights: Path | None, log_path: Path, repo: Path, image: Path):
    """Start one app; (its process, URL, launch -> answering, launch -> first /screen)."""
    from gradio_client import Client, handle_file

    launched = time.perf_counter()
    proc, url, startup_s = start_app(weights, log_path, repo)
    Client(url, verbose=False).predict(handle_file(str(image)), api_name="/screen")
    return proc, url, startup_s, time.perf_counter() - launched


def timed_calls(urls: dict[str, str], images: list[Path], calls: int, warmup: int) -> dict:
    """{name: {endpoint: summary}}: each endpoint's calls alternate between the servers."""
    from gradio_client import Client, handle_file

    clients = {name: Client(url, verbose=False) for name, url in urls.items()}
    names = list(clients)
    report = {name: {"endpoints": {}, "model": {}} for name in names}
    for endpoint in ENDPOINTS:
        for i in range(warmup):
            for name in names:
                clients[name].predict(handle_file(str(images[i % len(images)])), api_name=endpoint)
        times = {name: [] for name in names}
        for i in range(calls):
            for name in (names if i % 2 == 0 else names[::-1]):
                t0 = time.perf_counter()
                result, *_ = clients[name].predict(handle_file(str(images[i % len(images)])),
                                                   api_name=endpoint)
                times[name].append(time.perf_counter() - t0)
                report[name]["model"][endpoint] = result["model"]
        for name in names:
            report[name]["endpoints"][endpoint] = summary(times[name])
    return report


def throughputs(urls: dict[str, str], images: list[Path], clients: int, calls: int) -> dict:
    """{name: throughput}; with two servers, in halves ordered A B B A, so a load that drifts
    during the run weighs on both alike."""
    if len(urls) == 1:
        return {name: throughput(url, images, clients, calls) for name, url in urls.items()}
    names = list(urls)
    halves = {name: [] for name in names}
    for name in names + names[::-1]:
        halves[name].append(throughput(urls[name], images, clients, max(1, calls // 2)))
    merged = {}
    for name, parts in halves.items():
        answers, seconds = sum(p["answers"] for p in parts), sum(p["seconds"] for p in parts)
        failures = [p["first_failure"] for p in parts if p["first_failure"]]
        merged[name] = {"endpoint": "/screen", "clients": clients, "answers": answers,
                        "failures": sum(p["failures"] for p in parts),
                        "first_failure": failures[0] if failures else None,
                        "seconds": round(seconds, 2), "answers_per_s": round(answers / seconds, 1)}
    return merged


def profile_table(log: str) -> dict:
    """{request or start-up name: {"n", "total_ms", "steps": {step: median ms}}} from the
    app's DIACHESTXR_PROFILE=1 lines (diachestxr.profile), medians over the lines of a name."""
    seen: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for line in log.splitlines():
        if "diachestxr.profile:" not in line:
            continue
        head, _, steps = line.split("diachestxr.profile:", 1)[1].partition(" ms")
        name, total = head.strip().rsplit(" ", 1)
        parsed: dict[str, float] = {}
        for item in steps.removeprefix(": ").split(" · ") if steps else ():
            step, _, ms = item.rpartition(" ")
            parsed[step] = parsed.get(step, 0.0) + float(ms)  # a step met twice: its sum
        seen.setdefault(name, []).append((float(total), parsed))
    table = {}
    for name, rows in seen.items():
        names = list(dict.fromkeys(step for _, steps in rows for step in steps))
        table[name] = {"n": len(rows), "total_ms": round(statistics.median(t for t, _ in rows), 1),
                       "steps": {step: round(statistics.median(r.get(step, 0.0) for _, r in rows), 1)
                                 for step in names}}
    return table


def ratios(repo: dict, against: dict) -> dict:
    """repo / against for the medians, the cold start and throughput (< 1: repo is faster,
    except answers per second, where > 1 is)."""
    out = {f"{e} median": round(repo["endpoints"][e]["median_s"] / against["endpoints"][e]["median_s"], 3)
           for e in ENDPOINTS}
    out["first answer"] = round(repo["first_answer_s"] / against["first_answer_s"], 3)
    if "throughput" in repo and against["throughput"]["answers_per_s"]:
        out["answers per s"] = round(repo["throughput"]["answers_per_s"]
                                     / against["throughput"]["answers_per_s"], 3)
    return out


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
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose app.py runs")
    against = parser.add_mutually_exclusive_group()
    against.add_argument("--against", type=Path, help="a second checkout, measured in the same run")
    against.add_argument("--trivial", action="store_true",
                         help="measure against benchmarks/trivial_app.py (the same Gradio, no "
                              "work) in the same run: the app's cost as ratios of the floor")
    parser.add_argument("--profile", action="store_true",
                        help="run the app with DIACHESTXR_PROFILE=1 and add the median of each "
                             "step of its requests and start-up (from its log)")
    args = parser.parse_args()

    images = sorted(p for p in args.images.iterdir()
                    if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".dcm"))
    if not images:
        sys.exit(f"no images in {args.images}")
    if args.profile:
        os.environ["DIACHESTXR_PROFILE"] = "1"
    second = TRIVIAL if args.trivial else args.against
    repos = {"repo": args.repo, **({"against": second} if second else {})}
    procs = []
    with tempfile.TemporaryDirectory(prefix="app-latency-") as tmp:
        weights = random_weights(Path(tmp) / "weights") if args.random else args.weights
        try:
            runs, urls = {}, {}
            for name, repo in repos.items():
                proc, urls[name], startup_s, first_s = cold_start(
                    weights, Path(tmp) / f"{name}.log", repo, images[0])
                procs.append(proc)
                runs[name] = {"checkout": str(repo), "startup_s": round(startup_s, 1),
                              "first_answer_s": round(first_s, 1)}
            for name, measured in timed_calls(urls, images, args.calls, args.warmup).items():
                runs[name].update(measured)
            if args.clients:
                for name, measured in throughputs(urls, images, args.clients, args.calls).items():
                    runs[name]["throughput"] = measured
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
        if args.profile:
            runs["repo"]["profile"] = profile_table((Path(tmp) / "repo.log").read_text())
    report = {"benchmark": "app_latency",
              "weights": "random" if args.random else str(args.weights or "app default"),
              "images": str(args.images), "warmup_calls": args.warmup,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform()}}
    if second:
        report.update(runs=runs, ratios=ratios(runs["repo"], runs["against"]))
    else:  # the single-checkout report run_all.py reads
        report.update({k: v for k, v in runs["repo"].items() if k != "checkout"},
                      url=urls["repo"])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
