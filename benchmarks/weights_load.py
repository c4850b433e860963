"""Cold start of weight resolution: load both models with the Hub switched off
(HF_HUB_OFFLINE=1) vs with the Hub unreachable, each in a fresh process, and print JSON.

    python benchmarks/weights_load.py [--runs 5] [--weights-dir DIR] [--endpoint URL ...]

Every run is a new Python process with a fresh, empty HF cache (HF_HOME in a temp folder),
so both scenarios fall back to the bundled checkpoints (or --weights-dir, used as the bundled
folder). "unreachable" endpoints, by default: a black hole (a local port whose accept queue
is full, so connection attempts time out, like a firewall that drops packets or an
unroutable address) and a closed local port (connections refused at once).

Reported per scenario (medians): "load_s", the time to resolve + load both checkpoints (what
`load_model` does for both tasks); "resolve_s", the part spent finding where they are (where
the Hub costs time); "process_s", the process wall time (mostly importing torch).
The target (issue 2): unreachable costs at most 3 s more than HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(bundled: str | None) -> None:
    # the unreachable-Hub notice is logged at INFO (a fallback, not a fault): show it
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    import huggingface_hub.file_download  # noqa: F401  (imported by both scenarios alike)

    import diachestxr.weights as weights
    from diachestxr.registry import get_spec

    if bundled:
        weights.BUNDLED_DIR = Path(bundled)
    t1 = time.perf_counter()
    resolved = {task: weights.resolve_weights(get_spec(task)) for task in ("screening", "diagnosis")}
    t2 = time.perf_counter()
    for task, (path, source) in resolved.items():
        weights.load_checkpoint(path, task, source)
    t3 = time.perf_counter()
    print(json.dumps({"load_s": t3 - t1, "resolve_s": t2 - t1, "import_s": t1 - t0,
                      "sources": {task: str(source) for task, (_, source) in resolved.items()}}))


class BlackHole:
    """A local TCP port that never completes a handshake: listen(0) plus one connection that
    is never accepted fills the accept queue, and Linux then drops further SYNs, so clients
    wait for their connect timeout (as with a firewall that drops packets)."""

    def __enter__(self) -> str:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(0)
        port = self.server.getsockname()[1]
        self.filler = socket.create_connection(("127.0.0.1", port), timeout=1)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.filler.close()
        self.server.close()


def closed_port_endpoint() -> str:
    """http://127.0.0.1:<a port nobody listens on>."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_once(env_overrides: dict[str, str], bundled: str | None, timeout: float = 300) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and k != "DIACHESTXR_WEIGHTS_DIR"}
    with tempfile.TemporaryDirectory(prefix="weights-load-hf-") as hf_home:
        env.update({"HF_HOME": hf_home, "PYTHONPATH": str(ROOT), **env_overrides})
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
        if bundled:
            cmd += ["--bundled", bundled]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    result["stderr"] = proc.stderr[-4000:]
    return result


def measure(runs: int = 5, bundled: str | None = None, endpoints: list[str] | None = None) -> dict:
    """{"offline": {...}, "<name>": {...}, "overhead_s": {...}} (medians)."""
    with BlackHole() as black_hole:
        named = {f"unreachable {url}": url for url in endpoints or []} or {
            "unreachable (connect timeout)": black_hole,
            "unreachable (connection refused)": closed_port_endpoint()}
        scenarios = {"offline": {"HF_HUB_OFFLINE": "1"}}
        scenarios.update({name: {"HF_ENDPOINT": url} for name, url in named.items()})
        return _measure(runs, bundled, scenarios)


def _measure(runs: int, bundled: str | None, scenarios: dict[str, dict[str, str]]) -> dict:
    samples: dict[str, list[dict]] = {name: [] for name in scenarios}
    for _ in range(runs):  # interleaved, so background load affects every scenario alike
        for name, env in scenarios.items():
            samples[name].append(run_once(env, bundled))
    out: dict = {"runs": runs, "python": sys.version.split()[0]}
    for name, rs in samples.items():
        out[name] = {"load_s": round(statistics.median(r["load_s"] for r in rs), 3),
                     "resolve_s": round(statistics.median(r["resolve_s"] for r in rs), 3),
                     "process_s": round(statistics.median(r["process_s"] for r in rs), 3),
                     "sources": rs[-1]["sources"]}
    out["overhead_s"] = {name: {key: round(out[name][key] - out["offline"][key], 3)
                                for key in ("load_s", "resolve_s")}
                         for name in scenarios if name != "offline"}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--weights-dir", help="use this folder as the bundled weights "
                        "(default: diachestxr/weights)")
    parser.add_argument("--endpoint", action="append", help="unreachable Hub URL(s) to try")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bundled", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.bundled)
    print(json.dumps(measure(args.runs, args.weights_dir, args.endpoint), indent=2))


if __name__ == "__main__":
    main()
