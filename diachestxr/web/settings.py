"""How the server serves: its queue, torch's threads and Gradio's cache, in one place (read
at import, from the environment where a deployer may change them). No Gradio, no torch here:
benchmarks/trivial_app.py takes the same queue without importing the app."""

from __future__ import annotations

import os

# On 2 cores, one model call per event at a time, each on one torch thread, serves the most:
# 8 clients on /screen got 10.4 answers/s against 9.4 with 4 calls of 2 threads (the old
# setting) and 9.4-10.1 with the others, and single calls were no slower (benchmarks/
# app_latency.py, docs/benchmarks.md). More cores: raise them with these variables.
QUEUE_CONCURRENCY = int(os.environ.get("DIACHESTXR_QUEUE_CONCURRENCY", "1"))
TORCH_THREADS = int(os.environ.get("DIACHESTXR_TORCH_THREADS", "1"))
QUEUE_MAX_SIZE = 64  # beyond this, new requests are told the queue is full instead of waiting
# Gradio's own copies of results (and any upload not deleted after its answer): files older
# than CACHE_TTL_S go, checked every CACHE_SWEEP_S; all of them when the server stops
CACHE_TTL_S, CACHE_SWEEP_S = 900, 300
