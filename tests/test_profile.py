"""The step log behind DIACHESTXR_PROFILE=1 and the benchmark that reads it."""

from __future__ import annotations

import logging

from diachestxr import profile


def test_steps_are_logged_once_per_request_and_nothing_when_off(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="diachestxr.profile")
    monkeypatch.setattr(profile, "ENABLED", False)
    with profile.timed("/screen"), profile.step("model"):
        pass
    assert not caplog.records
    monkeypatch.setattr(profile, "ENABLED", True)
    with profile.timed("/screen"):
        with profile.step("read"):
            pass
        with profile.timed("inner"):  # nested: a step of the outer request, not a line
            pass
    with profile.step("outside"):  # no request running: nothing kept
        pass
    with profile.timed("launch"):
        pass
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("/screen ") and ": read " in lines[0] and " · inner " in lines[0]
    assert lines[1].startswith("launch ") and lines[1].endswith(" ms")


def test_the_latency_benchmark_reads_the_step_log():
    from benchmarks.app_latency import profile_table

    log = "\n".join([
        "INFO diachestxr.profile: /diagnose 100.0 ms: read 2.0 · model 50.0 · gallery 5.0",
        "INFO diachestxr.profile: /diagnose 120.0 ms: read 4.0 · model 70.0 · gallery 7.0",
        "INFO diachestxr.profile: /diagnose 110.0 ms: read 3.0 · model 60.0 · gallery 6.0",
        "INFO diachestxr.profile: warm-up 900.0 ms: model 10.0 · model 20.0",
        "INFO diachestxr.profile: launch 300.0 ms",
        "INFO httpx: HTTP Request: HEAD http://127.0.0.1:7860/",
    ])
    table = profile_table(log)
    assert table["/diagnose"] == {"n": 3, "total_ms": 110.0,
                                  "steps": {"read": 3.0, "model": 60.0, "gallery": 6.0}}
    assert table["warm-up"]["steps"] == {"model": 30.0}
    assert table["launch"] == {"n": 1, "total_ms": 300.0, "steps": {}}
