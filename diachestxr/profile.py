"""Step timings, off unless DIACHESTXR_PROFILE=1: where a request's (or the start-up's) time
goes, one log line each, e.g.

    INFO diachestxr.profile: /diagnose 142.3 ms: read 9.1 · gate 6.0 · model 61.2 · maps 5.0 · ...

`benchmarks/app_latency.py --profile` runs the app with it on and prints the median of each
step. Off, a step costs one attribute check: nothing is timed or kept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger("diachestxr.profile")
ENABLED = os.environ.get("DIACHESTXR_PROFILE") == "1"
_local = threading.local()  # a request runs in one worker thread from start to answer


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Time everything inside as one request (or the start-up), logging its steps at the
    end. Nested, the inner block is a step of the outer one."""
    if not ENABLED:
        yield
        return
    outer = getattr(_local, "steps", None)
    if outer is not None:  # e.g. a remap inside an event: one line for both
        with step(name):
            yield
        return
    _local.steps = steps = []
    start = time.perf_counter()
    try:
        yield
    finally:
        total = (time.perf_counter() - start) * 1000
        _local.steps = None
        log.info("%s %.1f ms%s", name, total,
                 ": " + " · ".join(f"{n} {ms:.1f}" for n, ms in steps) if steps else "")


@contextmanager
def step(name: str) -> Iterator[None]:
    """One step of the request running in this thread (nothing outside a `timed` block)."""
    steps = getattr(_local, "steps", None) if ENABLED else None
    if steps is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        steps.append((name, (time.perf_counter() - start) * 1000))
