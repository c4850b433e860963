"""Peak memory per hostile input (CLI and server) and server memory under many sessions, as JSON.

    python benchmarks/memory.py [--task diagnosis] [--sessions 20,200] [--skip-server]

- cli: for each case of the hostile corpus (tests/hostile.py, written on the fly), the peak
  RSS of a whole `python -m diachestxr predict --task TASK --json FILE` process (its own
  os.wait4 rusage), its exit status and its answer (first 100 characters); goal <= 1.5 GB.
- server: `python app.py` on a free port; for each case sent to /screen and /diagnose, the
  server's peak RSS during the request above its RSS just before (Linux: /proc/PID/clear_refs
  resets the peak); goal <= +300 MB. Then the session load test: N sessions (a new client
  each) call /diagnose with a real radiograph; RSS after 20 and after 200 (goal: within 300 MB);
  then --rounds rounds of 8 clients at once, a quarter of their files hostile: RSS after each
  round (goal: round 5 within 150 MB of round 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RADIOGRAPH = ROOT / "examples" / "00007471_000.jpg"  # an adult NIH radiograph, No Finding


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cli_peaks(files: dict, folder: Path, task: str) -> dict:
    out = {}
    for name, case in files.items():
        with tempfile.TemporaryFile() as stdout:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "diachestxr", "predict", "--task", task,
                                     "--json", "-q", str(folder / name)], cwd=ROOT,
                                    stdout=stdout, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
            wall = time.perf_counter() - t0
            stdout.seek(0)
            lines = stdout.read().decode().strip().splitlines()
        answer = json.loads(lines[-1]) if lines else {}
        out[name] = {"kind": case.kind, "peak_rss_mb": round(usage.ru_maxrss / 1024),
                     "exit": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 2),
                     "answer": (answer.get("error") or answer.get("label")
                                or ",".join(answer.get("findings", [])) or "no finding")[:100]}
        print(f"cli {name}: {out[name]}", file=sys.stderr)
    return out


def mixed_load(url: str, pid: int, files: dict, folder: Path, rounds: int, clients: int = 8,
               per_client: int = 6) -> dict:
    """`rounds` rounds of `clients` clients at once, each sending `per_client` requests to
    /screen and /diagnose in turn, a quarter of them hostile files (every refusal case and the
    36-49 MP images);
    the server's RSS after each round (goal, issue #20: round 5 within 150 MB of round 1)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    hostile = [folder / n for n, c in files.items() if c.refusal or c.heavy]  # large ones too

    def client_run(k: int) -> int:
        client, failed = Client(url, verbose=False), 0
        for i in range(per_client):
            image = hostile[(k + i) % len(hostile)] if (k + i) % 4 == 0 else RADIOGRAPH
            try:
                client.predict(handle_file(str(image)), api_name="/screen" if i % 2 else "/diagnose")
            except Exception:  # noqa: BLE001 -- the refusals are expected
                failed += 1
        return failed

    rss = []
    for r in range(rounds):
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client_run, range(r * clients, (r + 1) * clients)))
        time.sleep(2)
        rss.append(round(_status_kb(pid, "VmRSS") / 1024))
        print(f"server after mixed-load round {r + 1}: {rss[-1]} MB", file=sys.stderr)
    return {"clients": clients, "requests_per_round": clients * per_client, "rss_mb_after_round": rss,
            "growth_after_round_1_mb": rss[-1] - rss[0] if rss else None}


def server_report(files: dict, folder: Path, sessions: list[int], rounds: int = 5,
                  per_request_wanted: bool = True) -> dict:
    from gradio_client import Client, handle_file

    from benchmarks.app_latency import start_app
    from diachestxr.web.session import IDLE_S

    log = Path(tempfile.mkdtemp()) / "app.log"
    proc, url, _ = start_app(None, log)
    pid = proc.pid
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(RADIOGRAPH)), api_name="/diagnose")  # warm
        per_request = {}
        for name, case in (files.items() if per_request_wanted else ()):
            for endpoint in ("/screen", "/diagnose"):
                time.sleep(IDLE_S + 0.5)  # the last request's heap went back first
                before = _status_kb(pid, "VmRSS")
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
                t0 = time.perf_counter()
                try:
                    client.predict(handle_file(str(folder / name)), api_name=endpoint)
                    answer = "answered"
                except Exception as e:  # noqa: BLE001 -- a refusal is the expected answer
                    answer = str(e)[:100]
                per_request[f"{name} {endpoint}"] = {
                    "kind": case.kind, "peak_above_before_mb": round((_status_kb(pid, "VmHWM") - before) / 1024),
                    "wall_s": round(time.perf_counter() - t0, 2), "answer": answer}
                print(f"server {name} {endpoint}: {per_request[f'{name} {endpoint}']}", file=sys.stderr)
        load = {}
        done = 0
        for target in sessions:
            while done < target:
                Client(url, verbose=False).predict(handle_file(str(RADIOGRAPH)), api_name="/diagnose")
                done += 1
            time.sleep(2)
            load[f"rss_mb_after_{target}_sessions"] = round(_status_kb(pid, "VmRSS") / 1024)
            print(f"server after {target} sessions: {load}", file=sys.stderr)
        mixed = mixed_load(url, pid, files, folder, rounds) if rounds else {}
        return {"per_request": per_request, "sessions": load, "mixed_load": mixed}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="diagnosis", choices=("screening", "diagnosis"))
    ap.add_argument("--sessions", default="20,200", help="comma-separated session counts")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of 8-client mixed load (0: none)")
    ap.add_argument("--skip-per-request", action="store_true", help="no per-file server peaks")
    args = ap.parse_args()

    from diachestxr.io import read_xray
    from tests.hostile import write_corpus

    folder = Path(tempfile.mkdtemp(prefix="diachestxr-hostile-"))
    files = write_corpus(folder, read_xray(RADIOGRAPH))
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}}
    if not args.skip_cli:
        report["cli"] = cli_peaks(files, folder, args.task)
        report["cli_worst_peak_mb"] = max(v["peak_rss_mb"] for v in report["cli"].values())
    if not args.skip_server:
        report["server"] = server_report(files, folder, [int(n) for n in args.sessions.split(",") if n],
                                         args.rounds, not args.skip_per_request)
        report["server_worst_request_mb"] = max((v["peak_above_before_mb"]
                                                for v in report["server"]["per_request"].values()), default=None)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
